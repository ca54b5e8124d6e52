// MXFP4 (OCP microscaling FP4, E2M1 values with E8M0 block scales) decoded in registers.
// Layout (checkpoint bytes, unchanged): a block is 16 bytes = one vec4<u32> = 32 values; byte j holds
// element 2j in its low nibble and 2j+1 in its high nibble; word q of the block (little-endian) holds
// elements 8q..8q+7. Scales are one byte per block, four to a u32 (little-endian).
//
// Decode (OpenAI's gpt_oss/metal bit trick, kernels.md 1.1/1.5): a few integer ops turn each nibble
// (s e1 e0 m) into the high byte of an fp16 with sign s, exponent e1e0 and mantissa msb m, i.e. the
// fp16 value FP4 * 2^-14 (code 1 = 0.5 becomes the fp16 subnormal 2^-15; code 8 becomes -0), and
// unpack2x16float (core WGSL, no shader-f16) widens two at a time, exactly. The 2^-14 and the block
// scale 2^(s-127) are applied together to a block's partial dot product by mxfp4_scale: powers of two
// commute with f32 rounding, so sum_j (FP4_j 2^-14 x_j) * 2^(s-113) equals sum_j (W_j x_j) exactly as
// if each weight FP4_j 2^(s-127) had been formed first (barring f32 over/underflow of the products).

// Eight values of one u32 of block bytes, times 2^-14, in element order: lo = 0..3, hi = 4..7.
struct Fp4x8 {
  lo: vec4<f32>,
  hi: vec4<f32>,
}

fn mxfp4_word(w: u32) -> Fp4x8 {
  // Per byte: low nibble (even element) and high nibble (odd element) -> fp16 high byte.
  let ev = (((w << 1u) & 0x1E1E1E1Eu) + 0x70707070u) & 0x8E8E8E8Eu;
  let od = (((w >> 3u) & 0x1E1E1E1Eu) + 0x70707070u) & 0x8E8E8E8Eu;
  let e04 = unpack2x16float((ev << 8u) & 0xFF00FF00u); // elements 0, 4
  let e26 = unpack2x16float(ev & 0xFF00FF00u);         // elements 2, 6
  let o15 = unpack2x16float((od << 8u) & 0xFF00FF00u); // elements 1, 5
  let o37 = unpack2x16float(od & 0xFF00FF00u);         // elements 3, 7
  return Fp4x8(vec4<f32>(e04.x, o15.x, e26.x, o37.x), vec4<f32>(e04.y, o15.y, e26.y, o37.y));
}

// Scale byte `s` of block `b` from the packed scale words.
fn mxfp4_scale_byte(scales_word: u32, b: u32) -> u32 {
  return (scales_word >> ((b & 3u) * 8u)) & 0xFFu;
}

// partial * 2^(s - 113): turns a sum of (FP4 * 2^-14) * x into sum of (FP4 * 2^(s-127)) * x.
// For s <= 240 the factor 2^(s-113) is one normal f32 built from bits. For s >= 241 it is >= 2^128,
// not an f32, so it is applied as 2^15 then 2^(s-128) (both exact); s = 255 is treated as 2^128
// like the CPU reference (src/model/mxfp4.ts). Results below the f32 normal range (only possible
// for s <= 1) may be flushed to zero by the device.
fn mxfp4_scale(partial: f32, s: u32) -> f32 {
  if (s <= 240u) {
    return partial * bitcast<f32>((s + 14u) << 23u);
  }
  return (partial * 32768.0) * bitcast<f32>((s - 1u) << 23u);
}

// Dot product of one 32-value block (before its scale) with 32 activations x[0..7] (vec4s).
fn mxfp4_block_dot(wv: vec4<u32>, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
                   x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>) -> f32 {
  let a = mxfp4_word(wv.x);
  let b = mxfp4_word(wv.y);
  let c = mxfp4_word(wv.z);
  let d = mxfp4_word(wv.w);
  return dot(a.lo, x0) + dot(a.hi, x1) + dot(b.lo, x2) + dot(b.hi, x3)
       + dot(c.lo, x4) + dot(c.hi, x5) + dot(d.lo, x6) + dot(d.hi, x7);
}

// The 32 values of one block (16 bytes, scale byte s), exact: FP4 · 2^(s - 127). The GEMMs decode
// a K slice into workgroup memory with it; out[0..7] are elements 4q..4q+3.
fn mxfp4_block(wv: vec4<u32>, s: u32) -> array<vec4<f32>, 8> {
  let words = array<u32, 4>(wv.x, wv.y, wv.z, wv.w);
  var out: array<vec4<f32>, 8>;
  // 2^(s-113) as one f32 when s <= 240, else applied as 2^15 · 2^(s-128) (see mxfp4_scale)
  let big = s > 240u;
  let f1 = select(bitcast<f32>((s + 14u) << 23u), 32768.0, big);
  let f2 = select(1.0, bitcast<f32>((s - 1u) << 23u), big);
  for (var q = 0u; q < 4u; q++) {
    let v = mxfp4_word(words[q]);
    out[2u * q] = (v.lo * f1) * f2;
    out[2u * q + 1u] = (v.hi * f1) * f2;
  }
  return out;
}
