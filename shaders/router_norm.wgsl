// The decode path's router in one dispatch: RMSNorm(x) (recomputed by every workgroup), the bf16
// router matvec + bias -> logits [T][E], and the normalised x itself (xn, each workgroup writing a
// slice) for the experts' mlp1, which picks the top-k from these logits. A workgroup owns NTEAMS
// experts (one per team of TEAM lanes) for TT tokens; x is loaded once per token for all of them.
// defines: TEAM, TT, H; flag SUBGROUPS. Grid: x = expert group, z = token group.
#include lib/step
#include lib/bf16

const NTEAMS: u32 = 8u;
const WG: u32 = NTEAMS * TEAM;
const TR_N: u32 = TT;
const REDUCE_N: u32 = TT;
#include lib/rms
#include lib/team_reduce

struct Params {
  e: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> scale: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> logits: array<f32>;
@group(0) @binding(7) var<storage, read_write> xn: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
#if SUBGROUPS
  @builtin(subgroup_invocation_id) sgl: u32,
  @builtin(subgroup_size) sgs: u32,
#endif
) {
#if SUBGROUPS
  sg_lane = sgl;
  sg_size = sgs;
#endif
  let t0 = wid.z * TT;
  if (t0 >= step.tokens) {
    return;
  }
  let nt = min(TT, step.tokens - t0);
  let inv = rms_inv_from(t0, nt, lid, p.eps);
  // this workgroup's slice of xn
  let per = (H / 4u + nwg.x - 1u) / nwg.x;
  for (var i = wid.x * per + lid; i < min((wid.x + 1u) * per, H / 4u); i += WG) {
    for (var tt = 0u; tt < nt; tt++) {
      xn[(t0 + tt) * (H / 4u) + i] = x[(t0 + tt) * (H / 4u) + i] * scale[i] * inv[tt];
    }
  }

  let team = lid / TEAM;
  let lane = lid % TEAM;
  let e = wid.x * NTEAMS + team;
  var acc: array<f32, TR_N>;
  for (var tt = 0u; tt < TT; tt++) {
    acc[tt] = 0.0;
  }
  if (e < p.e) {
    for (var c = lane; c < H / 8u; c += TEAM) {
      let wv = w[e * (H / 8u) + c];
      let s0 = scale[2u * c];
      let s1 = scale[2u * c + 1u];
      for (var tt = 0u; tt < TT; tt++) {
        let t = t0 + min(tt, nt - 1u);
        acc[tt] += dot8(wv, x[t * (H / 4u) + 2u * c] * s0, x[t * (H / 4u) + 2u * c + 1u] * s1) * inv[tt];
      }
    }
  }
  team_reduce(&acc, lid);
  if (lane == 0u && e < p.e) {
    for (var tt = 0u; tt < nt; tt++) {
      logits[(t0 + tt) * p.e + e] = acc[tt] + bias[e];
    }
  }
}
