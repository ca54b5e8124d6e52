// Merges attention's split partials (flash-decoding): for row (t, h) with splits s,
//   M = max_s m_s,  L = sum_s l_s e^(m_s - M),  o = sum_s o_s e^(m_s - M) / L.
// Split 0 carried the sink (m started at the sink with l = 1), so nothing else is added here.
// Only runs when the step uses more than one split (otherwise the host dispatches one workgroup that returns at once).
// A workgroup of 64 threads merges 64 / (D/4) rows, one vec4 of the output per thread.
// defines: D, ROWS, TILE (the same as attention's).
#include lib/step
#include lib/attention_plan

const DV: u32 = D / 4u;
const WG: u32 = 64u;
const RPW: u32 = WG / DV;  // rows per workgroup

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: AttnParams;
@group(0) @binding(2) var<storage, read> part_o: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> part_ml: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> attn: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let T = step.tokens;
  let S = att_splits(T);
  let ri = (wid.x + wid.y * nwg.x) * RPW + lid / DV;  // row index t * nq + h
  let e = lid % DV;
  if (S == 1u || ri >= T * p.nq) {
    return;
  }
  let t = ri / p.nq;
  let h = ri % p.nq;
  let G = att_group();
  let b = (t * G + h % G) / ROWS;
  let keys = att_block_keys(b, T);
  let n = keys.y - keys.x;
  let n_active = (n + att_split_len(n, S) - 1u) / att_split_len(n, S);
  var M = NEG_BIG;
  for (var s = 0u; s < n_active; s++) {
    M = max(M, part_ml[ri * S + s].x);
  }
  var L = 0.0;
  var o = vec4<f32>(0.0);
  for (var s = 0u; s < n_active; s++) {
    let ml = part_ml[ri * S + s];
    let w = exp(ml.x - M);
    L += ml.y * w;
    o += part_o[(ri * S + s) * DV + e] * w;
  }
  attn[ri * DV + e] = o / L;
}
