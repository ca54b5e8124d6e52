// The grouped MoE's last step: x[t] += sum_s w(t, s) · y[dst[t·k + s]], the slots in order, where
// y holds each (token, slot)'s expert output (bias included) at its expert-sorted row. One
// workgroup per token; no float atomics needed.
// defines: WG.
#include lib/step

struct Params {
  h: u32,  // hidden size
  k: u32,  // experts per token
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> routing: array<u32>;
@group(0) @binding(3) var<storage, read> dst: array<u32>;
@group(0) @binding(4) var<storage, read> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= step.tokens) {
    return;
  }
  for (var i = lid; i < p.h; i += WG) {
    var s = 0.0;
    for (var j = 0u; j < p.k; j++) {
      let a = t * p.k + j;
      s += bitcast<f32>(routing[2u * a + 1u]) * y[dst[a] * p.h + i];
    }
    x[t * p.h + i] += s;
  }
}
