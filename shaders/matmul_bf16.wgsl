// y = x W^T for steps of a few tokens (lib/dense_io: bias, residual add, shards). W is read 8
// values (16 bytes) at a time, K a multiple of 8. Each output row belongs to a team of TEAM lanes
// striding over K (so short rows still keep every lane busy); a workgroup holds WG/TEAM rows and
// computes them for TT tokens, so each weight load serves TT tokens.
// defines: WG, TEAM, TT; flags of lib/dense_io. Grid: x/y = row group linearised, z = token tile.
#include lib/team_sum
#include lib/bf16
#include lib/dense_io

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
  let tokens = dense_rows();
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
      dense_out(t0 + tt, n, team_result[team]);
    }
  }
}
