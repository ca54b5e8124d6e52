import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { openCheckpoint } from '../../src/model/checkpoint.js';
import {
  FP4_VALUES, bf16ToF32, bf16ToF32Array, dequantMxfp4, f32ToBf16, f32ToBf16Array,
} from '../../src/model/mxfp4.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';
import { manifest } from '../helpers/oracle.js';
import { ORACLE } from './fixtures.js';

/** Bit patterns, so −0 vs +0 and every last bit count. */
function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

describe('MXFP4 dequantization', () => {
  test('hand-made block: low nibble first, scale 2^(s−127), all 16 codes', () => {
    const blocks = new Uint8Array(16);
    for (let j = 0; j < 16; j++) blocks[j] = (j & 0x0f) | (((15 - j) & 0x0f) << 4);
    const scales = new Uint8Array([128]); // ×2
    const w = dequantMxfp4(blocks, scales, 1, 32);
    for (let j = 0; j < 16; j++) {
      expect(Object.is(w[2 * j], FP4_VALUES[j]! * 2)).toBe(true);
      expect(Object.is(w[2 * j + 1], FP4_VALUES[15 - j]! * 2)).toBe(true);
    }
    expect(Object.is(w[16], -0)).toBe(true); // nibble 8 is −0
    // Scale extremes behave like torch.ldexp in f32: 2^-127 is subnormal-exact, 255 means 2^128.
    const lo = dequantMxfp4(new Uint8Array(16).fill(0x11), new Uint8Array([0]), 1, 32);
    expect(lo[0]).toBe(0.5 * 2 ** -127);
    const hi = dequantMxfp4(new Uint8Array(16).fill(0x71), new Uint8Array([255]), 1, 32);
    expect(hi[0]).toBe(2 ** 127); // 0.5 · 2^128 is still finite in f32
    expect(hi[1]).toBe(Infinity);
  });

  test('rejects inconsistent sizes', () => {
    expect(() => dequantMxfp4(new Uint8Array(16), new Uint8Array(1), 1, 16)).toThrow(/multiple of 32/);
    expect(() => dequantMxfp4(new Uint8Array(15), new Uint8Array(1), 1, 32)).toThrow(/blocks/);
    expect(() => dequantMxfp4(new Uint8Array(16), new Uint8Array(2), 1, 32)).toThrow(/scales/);
  });

  test.each(['hf', 'original'] as const)('equals the official dequantization of tiny-e128k4 layer 0 (%s layout)', async (layout) => {
    const model = 'tiny-e128k4';
    const check = manifest(model)['mxfp4_check'] as { layer: number; expert: number };
    expect(check.layer).toBe(0);
    const e = check.expert;
    const ref = await SafetensorsFile.open(join(ORACLE, model, 'reference.safetensors'));
    const ckpt = await openCheckpoint(join(ORACLE, model, layout));
    try {
      const { hiddenSize: H, intermediateSize: I, numExperts: E } = ckpt.config;
      for (const [which, rows, cols] of [['mlp1', 2 * I, H], ['mlp2', H, I]] as const) {
        const blocksT = ckpt.tensor(`layers.0.${which}.blocks`);
        const scalesT = ckpt.tensor(`layers.0.${which}.scales`);
        const bPer = blocksT.byteLength / E;
        const sPer = scalesT.byteLength / E;
        const blocks = await ckpt.readBytes(blocksT, { begin: e * bPer, end: (e + 1) * bPer });
        const scales = await ckpt.readBytes(scalesT, { begin: e * sPer, end: (e + 1) * sPer });
        const got = dequantMxfp4(blocks, scales, rows, cols);

        const refT = ref.tensor(`mxfp4.layer0.expert${e}.${which}_weight`);
        expect(refT.shape).toEqual([rows, cols]);
        const want = new Float32Array((await ref.readTensorBytes(refT)).buffer);
        expect(got.length).toBe(want.length);
        let mismatches = 0;
        const gb = bits(got);
        const wb = bits(want);
        for (let i = 0; i < gb.length; i++) if (gb[i] !== wb[i]) mismatches++;
        expect(mismatches, `${which}: elements differing bitwise from the reference`).toBe(0);
        // The check is meaningful: a decoder with swapped nibbles does not pass it.
        const swapped = dequantMxfp4(blocks.map((b) => ((b & 15) << 4) | (b >> 4)), scales, rows, cols);
        expect(Array.from(swapped).some((v, i) => v !== want[i])).toBe(true);
      }
      // The whole-tensor decode of all experts contains expert e's rows at the expected place.
      const all = dequantMxfp4(await ckpt.readBytes('layers.0.mlp2.blocks'), await ckpt.readBytes('layers.0.mlp2.scales'), E * H, I);
      const want2 = new Float32Array((await ref.readTensorBytes(`mxfp4.layer0.expert${e}.mlp2_weight`)).buffer);
      expect(Array.from(all.subarray(e * H * I, (e + 1) * H * I))).toEqual(Array.from(want2));
    } finally {
      await ckpt.close();
      await ref.close();
    }
  });
});

describe('bf16 helpers', () => {
  test('bf16 → f32 is a 16-bit shift; f32 → bf16 rounds to nearest even', () => {
    expect(bf16ToF32(0x3f80)).toBe(1);
    expect(bf16ToF32(0xbf80)).toBe(-1);
    expect(Object.is(bf16ToF32(0x8000), -0)).toBe(true);
    expect(bf16ToF32(0x7f80)).toBe(Infinity);
    expect(Number.isNaN(bf16ToF32(0x7fc1))).toBe(true);
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie → even (up)
    expect(f32ToBf16(1 + 2 ** -8 + 2 ** -12)).toBe(0x3f81);
    expect(Number.isNaN(bf16ToF32(f32ToBf16(NaN)))).toBe(true);
    expect(f32ToBf16(3.5e38)).toBe(0x7f80); // overflow → inf
  });

  test('arrays: u16 input, u8 input at even and odd offsets', () => {
    const vals = [1, -2.5, 0.15625, -0, 3e-39, 65280];
    const u16 = f32ToBf16Array(vals);
    const f = bf16ToF32Array(u16);
    expect(Array.from(f)).toEqual(vals.map((v) => bf16ToF32(f32ToBf16(v))));
    const bytes = new Uint8Array(u16.buffer);
    expect(Array.from(bf16ToF32Array(bytes))).toEqual(Array.from(f));
    const odd = new Uint8Array(bytes.byteLength + 1);
    odd.set(bytes, 1);
    expect(Array.from(bf16ToF32Array(odd.subarray(1)))).toEqual(Array.from(f));
    expect(() => bf16ToF32Array(new Uint8Array(3))).toThrow(/odd byte length/);
  });
});
