// Device acquisition: Dawn through the `webgpu` npm addon (Node, and Deno via npm:webgpu), or
// `navigator.gpu` where the runtime has one and the addon cannot load.

export interface GpuFeatures {
  subgroups: boolean;
  shaderF16: boolean;
  timestampQuery: boolean;
  atomicVec2uMinMax: boolean;
  /** chromium-experimental-subgroup-matrix (tensor cores), requested together with shader-f16. */
  subgroupMatrix: boolean;
}

/** One of the adapter's subgroup-matrix shapes: left M x K times right K x N into a result M x N. */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

export interface Gpu {
  device: GPUDevice;
  adapter: GPUAdapter;
  features: GpuFeatures;
  /** Smallest subgroup size the adapter may use (kernels size scratch arrays with it). */
  subgroupMinSize: number;
  subgroupMaxSize: number;
  info: { vendor: string; architecture: string; device: string; description: string };
  /** Every subgroup-matrix config the adapter lists (empty without the feature). */
  subgroupMatrixConfigs: SubgroupMatrixConfig[];
  /** The f16 x f16 -> f32 config the subgroup-matrix kernels use, or null when there is none. */
  sgmatF16: SubgroupMatrixConfig | null;
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
  return mergeToggles(flags, opts.extraToggles ?? []);
}

const TOGGLE_LISTS = ['enable-dawn-features', 'disable-dawn-features'];

/**
 * Dawn flags `key=value`, later ones over earlier ones. Dawn keeps only the last flag of a key,
 * so the toggle lists are merged instead: one enable and one disable list holding every named
 * toggle, where a later mention of a toggle moves it to its list. Other keys: the last value wins.
 */
export function mergeToggles(base: readonly string[], extra: readonly string[]): string[] {
  const lists = new Map<string, string[]>(TOGGLE_LISTS.map((k) => [k, []]));
  const others = new Map<string, string>();
  for (const flag of [...base, ...extra]) {
    const eq = flag.indexOf('=');
    const key = eq < 0 ? flag : flag.slice(0, eq);
    const list = lists.get(key);
    if (!list) {
      others.delete(key);
      others.set(key, flag);
      continue;
    }
    for (const name of flag.slice(eq + 1).split(',').filter(Boolean)) {
      for (const l of lists.values()) if (l.includes(name)) l.splice(l.indexOf(name), 1);
      list.push(name);
    }
  }
  return [...[...lists].filter(([, l]) => l.length > 0).map(([k, l]) => `${k}=${l.join(',')}`), ...others.values()];
}

/**
 * Limits requested at the adapter's value (large models need big bindings and buffers; kernels
 * size workgroups, grids and bind groups from these). Every other limit keeps WebGPU's default:
 * the device asks for no more than the engine may use. (Dawn's "maxDynamic...BuffersPerPipelineLayout
 * artificially reduced" lines are printed when it enumerates adapters whose driver reports more
 * than Dawn supports, e.g. lavapipe; no device request causes or avoids them.)
 */
export const REQUESTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxUniformBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBuffersPerShaderStage',
  'maxBindingsPerBindGroup',
  'maxBindGroups',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
] as const;

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
  // the tensor-core kernels take f16 operands, so the feature is only worth asking for with f16
  const configs = subgroupMatrixConfigsOf(adapter.info);
  const sgmatF16 = pickF16Config(configs);
  const subgroupMatrix = has(SUBGROUP_MATRIX_FEATURE) && has('shader-f16') && has('subgroups') && sgmatF16 !== null;
  if (subgroupMatrix) want.push(SUBGROUP_MATRIX_FEATURE);
  const requiredLimits: Record<string, number> = {};
  for (const key of REQUESTED_LIMITS) {
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
      subgroupMatrix,
    },
    subgroupMinSize: sgInfo.subgroupMinSize ?? 4,
    subgroupMaxSize: sgInfo.subgroupMaxSize ?? 128,
    info: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
    },
    subgroupMatrixConfigs: subgroupMatrix ? configs : [],
    sgmatF16: subgroupMatrix ? sgmatF16 : null,
    backend,
    toggles: backend === 'dawn-node' ? toggles : [],
  };
  pinned.push(gpu);
  return gpu;
}

export const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';

/** adapter.info.subgroupMatrixConfigs as plain objects (Dawn's are host objects; absent elsewhere). */
export function subgroupMatrixConfigsOf(info: GPUAdapterInfo | undefined): SubgroupMatrixConfig[] {
  const list = (info as unknown as { subgroupMatrixConfigs?: Iterable<Record<string, unknown>> } | undefined)?.subgroupMatrixConfigs;
  if (!list) return [];
  return [...list].map((c) => ({
    componentType: String(c.componentType),
    resultComponentType: String(c.resultComponentType),
    M: Number(c.M),
    N: Number(c.N),
    K: Number(c.K),
  }));
}

/**
 * The f16 x f16 -> f32 config for the GEMMs (f16 accumulation loses too much over K = 2880, and
 * caused NaNs in ggml-webgpu), the one with the largest M x N (fewest fragment ops per tile); the
 * kernels need M, N, K to divide their 32 x 32 warp tiles and 32-wide K slices.
 */
export function pickF16Config(configs: readonly SubgroupMatrixConfig[]): SubgroupMatrixConfig | null {
  const ok = configs.filter(
    (c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && 32 % c.M === 0 && 32 % c.N === 0 && 32 % c.K === 0,
  );
  ok.sort((a, b) => b.M * b.N - a.M * a.N || b.K - a.K);
  return ok[0] ?? null;
}
