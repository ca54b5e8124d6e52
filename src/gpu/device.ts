// Device acquisition: Dawn through the `webgpu` npm addon (Node, and Deno via npm:webgpu), or
// `navigator.gpu` where the runtime has one and the addon cannot load.

export interface GpuFeatures {
  subgroups: boolean;
  shaderF16: boolean;
  timestampQuery: boolean;
  atomicVec2uMinMax: boolean;
}

export interface Gpu {
  device: GPUDevice;
  adapter: GPUAdapter;
  features: GpuFeatures;
  /** Smallest subgroup size the adapter may use (kernels size scratch arrays with it). */
  subgroupMinSize: number;
  subgroupMaxSize: number;
  info: { vendor: string; architecture: string; device: string; description: string };
  backend: 'dawn-node' | 'navigator';
  /** Dawn toggles this device was created with (empty for navigator.gpu). */
  toggles: string[];
}

export interface AcquireOptions {
  /** Keep Dawn's bounds checks and Vulkan robustness (tests); off for production speed. */
  robust?: boolean;
  /** Pretend the adapter lacks subgroups, to exercise the portable reduction path. */
  disableSubgroups?: boolean;
  /** Extra Dawn toggles, e.g. from GPT_OSS_WEBGPU_TOGGLES. */
  extraToggles?: string[];
}

// The object returned by create() owns the Dawn instance; if it is garbage-collected while a
// device lives, Dawn's event loop uses freed memory (kernels.md 3.4). Pin it for the process.
const pinned: unknown[] = [];

type GpuEntry = { requestAdapter(o?: GPURequestAdapterOptions): Promise<GPUAdapter | null> };

async function loadDawn(toggles: string[]): Promise<GpuEntry | null> {
  try {
    const mod = (await import('webgpu')) as unknown as {
      create: (flags: string[]) => GpuEntry;
      globals: Record<string, unknown>;
    };
    // GPUBufferUsage, GPUMapMode, ... are globals in browsers; dawn.node exports them.
    for (const [k, v] of Object.entries(mod.globals)) {
      if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    }
    const gpu = mod.create(toggles);
    pinned.push(gpu);
    return gpu;
  } catch {
    return null;
  }
}

export function dawnToggles(opts: AcquireOptions): string[] {
  const enable = [
    'allow_unsafe_apis',
    'vulkan_enable_f16_on_nvidia',
    'use_vulkan_memory_model',
    'disable_polyfills_on_integer_div_and_mod',
  ];
  // skip_validation is left off: it saves little (kernels.md 5.1) and turns a bad shader into a crash.
  if (!opts.robust) enable.push('disable_robustness');
  const flags = [`enable-dawn-features=${enable.join(',')}`, 'disable-dawn-features=timestamp_quantization'];
  return [...flags, ...(opts.extraToggles ?? [])];
}

export async function acquireGpu(opts: AcquireOptions = {}): Promise<Gpu> {
  const envToggles = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env
    ?.GPT_OSS_WEBGPU_TOGGLES;
  const toggles = dawnToggles({
    ...opts,
    extraToggles: [...(opts.extraToggles ?? []), ...(envToggles ? envToggles.split(' ').filter(Boolean) : [])],
  });
  let entry = await loadDawn(toggles);
  let backend: Gpu['backend'] = 'dawn-node';
  if (!entry) {
    const nav = (globalThis as { navigator?: { gpu?: GpuEntry } }).navigator;
    if (!nav?.gpu) {
      throw new Error(
        'WebGPU is not available: the `webgpu` package (Dawn) could not be loaded and this runtime has no navigator.gpu. ' +
          'Run `npm run setup` (installs a Vulkan driver on Debian/Ubuntu) or install your GPU vendor driver.',
      );
    }
    entry = nav.gpu;
    pinned.push(entry);
    backend = 'navigator';
  }
  const adapter = await entry.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new Error(
      'No WebGPU adapter found. Install a Vulkan driver for your GPU, or Mesa lavapipe for CPU-only machines ' +
        '(`npm run setup` does this on Debian/Ubuntu as root).',
    );
  }
  const has = (f: string) => adapter.features.has(f);
  const want = ['subgroups', 'shader-f16', 'timestamp-query', 'atomic-vec2u-min-max'].filter(has);
  // Ask for every limit the adapter offers: big models need large bindings and buffers.
  const requiredLimits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') requiredLimits[key] = v;
  }
  const device = await adapter.requestDevice({
    requiredFeatures: want as GPUFeatureName[],
    requiredLimits,
  });
  device.addEventListener?.('uncapturederror', (ev) => {
    console.error(`WebGPU error: ${(ev as GPUUncapturedErrorEvent).error.message}`);
  });
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const sgInfo = info as unknown as { subgroupMinSize?: number; subgroupMaxSize?: number };
  const gpu: Gpu = {
    device,
    adapter,
    features: {
      subgroups: has('subgroups') && !opts.disableSubgroups,
      shaderF16: has('shader-f16'),
      timestampQuery: has('timestamp-query'),
      atomicVec2uMinMax: has('atomic-vec2u-min-max'),
    },
    subgroupMinSize: sgInfo.subgroupMinSize ?? 4,
    subgroupMaxSize: sgInfo.subgroupMaxSize ?? 128,
    info: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
    },
    backend,
    toggles: backend === 'dawn-node' ? toggles : [],
  };
  pinned.push(gpu);
  return gpu;
}
