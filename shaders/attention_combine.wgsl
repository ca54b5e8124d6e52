// Merges a split decode token's partials (flash-decoding): for head h over its nparts splits,
//   M = max_s m_s,  L = sum_s l_s e^(m_s - M),  o = sum_s o_s e^(m_s - M) / L.
// The split that carried the sink started with m = sink and l = 1, so nothing else is added here.
// One workgroup per (combine entry, group of heads): a thread per output vec4.
// defines: D.
#include lib/attention_plan

const DV: u32 = D / 4u;
const WG: u32 = 64u;
const HPW: u32 = WG / DV;  // heads per workgroup

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<storage, read> plan: array<u32>;
@group(0) @binding(2) var<storage, read> part_o: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> part_ml: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> attn: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let idx = wid.x + wid.y * nwg.x;
  let h = wid.z * HPW + lid / DV;
  let e = lid % DV;
  if (idx >= plan[p.count_idx] || h >= p.nq) {
    return;
  }
  let cb = p.section + idx * 4u;
  let tok = plan[cb];
  let part0 = plan[cb + 1u];
  let n = plan[cb + 2u];
  var M = NEG_BIG;
  for (var s = 0u; s < n; s++) {
    M = max(M, part_ml[(part0 + s) * p.nq + h].x);
  }
  var L = 0.0;
  var o = vec4<f32>(0.0);
  for (var s = 0u; s < n; s++) {
    let pi = (part0 + s) * p.nq + h;
    let ml = part_ml[pi];
    let w = exp(ml.x - M);
    L += ml.y * w;
    o += part_o[pi * DV + e] * w;
  }
  attn[(tok * p.nq + h) * DV + e] = o / L;
}
