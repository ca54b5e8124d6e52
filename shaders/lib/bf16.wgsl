// bf16 pairs packed in u32 (checkpoint byte order): element 2i is the low half. Exact unpacking.
fn bf16_lo(w: u32) -> f32 {
  return bitcast<f32>(w << 16u);
}
fn bf16_hi(w: u32) -> f32 {
  return bitcast<f32>(w & 0xffff0000u);
}
// Dot product of 8 bf16 weights with 8 f32 activations.
fn dot8(w: vec4<u32>, a: vec4<f32>, b: vec4<f32>) -> f32 {
  let wa = vec4<f32>(bf16_lo(w.x), bf16_hi(w.x), bf16_lo(w.y), bf16_hi(w.y));
  let wb = vec4<f32>(bf16_lo(w.z), bf16_hi(w.z), bf16_lo(w.w), bf16_hi(w.w));
  return dot(wa, a) + dot(wb, b);
}
