// x[t] = bf16 embedding row of tokens[t], widened to f32. One workgroup per token.
// defines: WG, H.
#include lib/bf16
#include lib/step

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= step.tokens) {
    return;
  }
  let row = tokens[t] * (H / 2u);
  for (var i = lid; i < H / 2u; i += WG) {
    let w = table[row + i];
    x[t * H + 2u * i] = bf16_lo(w);
    x[t * H + 2u * i + 1u] = bf16_hi(w);
  }
}
