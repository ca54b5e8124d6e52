// Device acquisition: the flags Dawn's create() receives (the engine's toggles and the user's
// GPT_OSS_WEBGPU_TOGGLES together, since Dawn keeps only the last flag of a key) and the limits
// the device is created with.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { acquireGpu, mergeToggles, REQUESTED_LIMITS } from '../../src/gpu/device.js';

const created: string[][] = [];
vi.mock('webgpu', async (importOriginal) => {
  const dawn = await importOriginal<{ create: (flags: string[]) => unknown }>();
  return { ...dawn, create: (flags: string[]) => (created.push([...flags]), dawn.create(flags)) };
});

const saved = process.env['GPT_OSS_WEBGPU_TOGGLES'];
afterAll(() => {
  if (saved === undefined) delete process.env['GPT_OSS_WEBGPU_TOGGLES'];
  else process.env['GPT_OSS_WEBGPU_TOGGLES'] = saved;
});

/** The toggle names of one `key=a,b` flag among `flags`; fails unless exactly one has the key. */
function toggles(flags: string[], key: string): string[] {
  const found = flags.filter((f) => f.startsWith(`${key}=`));
  expect(found, `${key} flags in ${JSON.stringify(flags)}`).toHaveLength(1);
  return found[0]!.slice(key.length + 1).split(',');
}

describe('Dawn toggles', () => {
  it("GPT_OSS_WEBGPU_TOGGLES and the engine's toggles both reach create(), one flag per key", async () => {
    process.env['GPT_OSS_WEBGPU_TOGGLES'] = 'enable-dawn-features=dump_shaders disable-dawn-features=lazy_clear_resource_on_first_use';
    const gpu = await acquireGpu();
    expect(created).toHaveLength(1);
    const flags = created[0]!;
    expect(toggles(flags, 'enable-dawn-features')).toEqual(expect.arrayContaining(['allow_unsafe_apis', 'disable_robustness', 'vulkan_enable_f16_on_nvidia', 'dump_shaders']));
    expect(toggles(flags, 'disable-dawn-features')).toEqual(expect.arrayContaining(['timestamp_quantization', 'lazy_clear_resource_on_first_use']));
    expect(gpu.toggles).toEqual(flags);
    gpu.device.destroy();
  });

  it('merging: lists are unions, a later mention moves a toggle to its list, other keys keep the last value', () => {
    expect(
      mergeToggles(
        ['enable-dawn-features=a,b', 'disable-dawn-features=c', 'backend=vulkan'],
        ['disable-dawn-features=b', 'enable-dawn-features=d,a', 'backend=null', 'enable-dawn-features=c'],
      ),
    ).toEqual(['enable-dawn-features=d,a,c', 'disable-dawn-features=b', 'backend=null']);
    expect(mergeToggles(['enable-dawn-features=a'], ['disable-dawn-features=a'])).toEqual(['disable-dawn-features=a']);
  });
});

describe('limits', () => {
  it("requests the adapter's value for the limits the kernels use, WebGPU's defaults for the rest", async () => {
    const gpu = await acquireGpu();
    const adapter = gpu.adapter.limits as unknown as Record<string, number>;
    const device = gpu.device.limits as unknown as Record<string, number>;
    for (const key of REQUESTED_LIMITS) expect(device[key], key).toBe(adapter[key]);
    // Limits the engine does not use stay at the spec defaults (the adapter offers more).
    expect(device['maxDynamicUniformBuffersPerPipelineLayout']).toBe(8);
    expect(device['maxDynamicStorageBuffersPerPipelineLayout']).toBe(4);
    gpu.device.destroy();
  });
});
