// YaRN RoPE tables against the oracle (tiny-e128k4 reference.safetensors: rope.inv_freq and
// rope.cos / rope.sin at positions 0 … 131071, computed in float64 by the official formula).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelConfig, type ModelConfig } from '../../src/model/config.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';
import { ropeConcentration, ropeInvFreq, ropeTable, yarnRampBounds } from '../../src/engine/rope.js';
import { ORACLE } from '../model/fixtures.js';

const MODEL = join(ORACLE, 'tiny-e128k4');

interface RopeManifest {
  concentration: number;
  ramp_low: number;
  ramp_high: number;
  official_f32_abs_err_at_listed_positions: number[];
  truncated_ramp_max_abs_diff_at_listed_positions: number;
}

let file: SafetensorsFile;
let manifest: RopeManifest;
let cfg: ModelConfig;
let positions: Int32Array;
let invFreq: Float32Array;
let cos: Float32Array;
let sin: Float32Array;

async function f32(name: string): Promise<Float32Array> {
  const t = file.tensor(name);
  expect(t.dtype).toBe('F32');
  const b = await file.readTensorBytes(t);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

beforeAll(async () => {
  file = await SafetensorsFile.open(join(MODEL, 'reference.safetensors'));
  manifest = JSON.parse(await readFile(join(MODEL, 'manifest.json'), 'utf8')).rope as RopeManifest;
  cfg = (await loadModelConfig(join(MODEL, 'hf'))).config;
  const p = await file.readTensorBytes('rope.positions');
  positions = new Int32Array(p.buffer, p.byteOffset, p.byteLength / 4);
  invFreq = await f32('rope.inv_freq');
  cos = await f32('rope.cos');
  sin = await f32('rope.sin');
});

afterAll(async () => {
  await file?.close();
});

/** Largest |ours - oracle| over the listed positions, and per-position checks against `tol(i)`. */
function compareTable(table: Float32Array, tol: (i: number) => number): number {
  const d2 = cfg.headDim / 2;
  let worst = 0;
  positions.forEach((pos, i) => {
    for (let j = 0; j < d2; j++) {
      const c = table[(pos * d2 + j) * 2]!;
      const s = table[(pos * d2 + j) * 2 + 1]!;
      const err = Math.max(Math.abs(c - cos[i * d2 + j]!), Math.abs(s - sin[i * d2 + j]!));
      worst = Math.max(worst, err);
      if (!(err <= tol(i))) throw new Error(`position ${pos}, j=${j}: error ${err} > ${tol(i)}`);
    }
  });
  return worst;
}

describe('YaRN RoPE (tiny-e128k4 oracle)', () => {
  it('reads the gpt-oss RoPE settings from both config dialects', async () => {
    expect(cfg.ropeTruncate).toBe(false);
    const original = (await loadModelConfig(join(MODEL, 'original'))).config;
    expect(Array.from(ropeInvFreq(original))).toEqual(Array.from(ropeInvFreq(cfg)));
  });

  it('ramp bounds and concentration match the reference', () => {
    const { low, high } = yarnRampBounds(cfg);
    expect(low).toBeCloseTo(manifest.ramp_low, 12);
    expect(high).toBeCloseTo(manifest.ramp_high, 12);
    expect(ropeConcentration(cfg)).toBeCloseTo(manifest.concentration, 15);
  });

  it('inv_freq matches rope.inv_freq', () => {
    const ours = ropeInvFreq(cfg);
    expect(ours.length).toBe(invFreq.length);
    for (let j = 0; j < ours.length; j++) {
      // float64 formula on both sides, stored as f32: equal up to the f32 rounding.
      expect(Math.abs(ours[j]! - invFreq[j]!) / invFreq[j]!, `j=${j}`).toBeLessThan(1e-7);
    }
  });

  it('cos/sin table matches rope.cos / rope.sin at positions 0 … 131071', () => {
    const table = ropeTable(cfg, 131072);
    expect(table.length).toBe(131072 * cfg.headDim);
    // README 9: 4× the official float32 error at that position, floor 1e-6 ...
    const readme = (i: number) => Math.max(1e-6, 4 * manifest.official_f32_abs_err_at_listed_positions[i]!);
    compareTable(table, readme);
    // ... and, being float64-derived, within 2 f32 ulps of values below 2 everywhere.
    expect(compareTable(table, () => 2.4e-7)).toBeLessThanOrEqual(2.4e-7);
  });

  it('the truncated (floor/ceil) ramp differs: bounds 8/18, frequencies 9…17, table off by ~2.5', () => {
    const t = { ...cfg, ropeTruncate: true };
    expect(yarnRampBounds(t)).toEqual({ low: 8, high: 18 });
    const exact = ropeInvFreq(cfg);
    const trunc = ropeInvFreq(t);
    const changed: number[] = [];
    for (let j = 0; j < exact.length; j++) if (Math.abs(trunc[j]! - exact[j]!) > 1e-12 * exact[j]!) changed.push(j);
    expect(changed).toEqual([9, 10, 11, 12, 13, 14, 15, 16, 17]);
    const worst = compareTable(ropeTable(t, 131072), () => Infinity);
    expect(worst).toBeCloseTo(manifest.truncated_ramp_max_abs_diff_at_listed_positions, 5);
  });

  it('without YaRN (factor 1): plain RoPE, no concentration', () => {
    const plain = { ...cfg, ropeScalingFactor: 1 };
    expect(ropeConcentration(plain)).toBe(1);
    const inv = ropeInvFreq(plain);
    for (let j = 0; j < inv.length; j++) expect(inv[j]).toBeCloseTo(Math.pow(cfg.ropeTheta, (-2 * j) / cfg.headDim), 15);
    const table = ropeTable(plain, 3);
    expect(table[(2 * 32 + 5) * 2]).toBeCloseTo(Math.cos(2 * inv[5]!), 7);
  });
});
