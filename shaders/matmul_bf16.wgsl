// y[t][n] = sum_k x[t][k] * W[n][k] (+ bias[n]) (+ y[t][n] when ACCUMULATE: residual add in place).
// W is bf16 row-major [N][K], read 8 values (16 bytes) at a time. Each output row belongs to a team
// of TEAM lanes striding over K (so short rows still keep every lane busy); a workgroup holds
// WG/TEAM rows and computes them for TT tokens, so each weight load serves TT tokens.
// defines: WG, TEAM, TT; flags: BIAS, ACCUMULATE, OUT_ROWS (x holds the step's logits rows
// instead of all its tokens). Grid: x/y = row group linearised, z = token tile.
#include lib/team_sum
#include lib/bf16
#include lib/step

struct Params {
  k: u32,   // input size, a multiple of 8
  n: u32,   // output rows (of this weight buffer)
  n0: u32,  // column of y where they go (a shard of a larger matrix: the unembedding)
  ny: u32,  // y's row length
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> w: array<vec4<u32>>;
#if BIAS
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
#else
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
#endif

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
#if OUT_ROWS
  let tokens = step.rows;
#else
  let tokens = step.tokens;
#endif
  let n0 = (wid.x + wid.y * nwg.x) * NTEAMS;
  let t0 = wid.z * TT;
  if (n0 >= p.n || t0 >= tokens) {
    return;
  }
  let nt = min(TT, tokens - t0);
  let kv = p.k / 8u;     // 16-byte weight vectors per row
  let team = lid / TEAM;
  let lane = lid % TEAM;
  let n = n0 + team;
  var acc: array<f32, TT>;
  for (var i = 0u; i < TT; i++) {
    acc[i] = 0.0;
  }
  if (n < p.n) {
    for (var c = lane; c < kv; c += TEAM) {
      let wv = w[n * kv + c];
      for (var tt = 0u; tt < nt; tt++) {
        let xi = (t0 + tt) * (p.k / 4u) + 2u * c;
        acc[tt] += dot8(wv, x[xi], x[xi + 1u]);
      }
    }
  }
  for (var tt = 0u; tt < TT; tt++) {
    team_sum(acc[tt], lid);
    if (lane == 0u && n < p.n && tt < nt) {
      let o = (t0 + tt) * p.ny + p.n0 + n;
      var v = team_result[team];
#if BIAS
      v += bias[n];
#endif
#if ACCUMULATE
      v += y[o];
#endif
      y[o] = v;
    }
  }
}
