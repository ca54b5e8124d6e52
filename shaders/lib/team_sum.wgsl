// Sums one f32 per thread over "teams" of TEAM consecutive invocations (TEAM a power of two that
// divides WG): the matvec kernels give each output row a team of lanes. Needs consts WG and TEAM.
// Works for any subgroup size: with SUBGROUPS a butterfly of subgroupShuffleXor over
// g = min(TEAM, subgroup size) lanes, then the TEAM/g partials of a team are added from workgroup
// memory; without, a shared-memory tree. With SUBGROUPS the entry point sets lib/subgroup's
// sg_size and sg_lane. Unlike team_reduce (lib/team_reduce) a team may span subgroups, and every
// thread reads every team's sum (team_result), at the price of two barriers per call.
#include lib/subgroup
const NTEAMS: u32 = WG / TEAM;
var<workgroup> team_partial: array<f32, WG>;
// After team_sum returns, every thread can read team_result[team] for every team.
var<workgroup> team_result: array<f32, NTEAMS>;

@diagnostic(off, subgroup_uniformity)
fn team_sum(value: f32, lid: u32) {
#if SUBGROUPS
  let g = min(TEAM, sg_size);
  var v = value;
  for (var o = 1u; o < g; o <<= 1u) {
    v += subgroupShuffleXor(v, o);
  }
  if ((lid & (g - 1u)) == 0u) {
    team_partial[lid / g] = v;
  }
  workgroupBarrier();
  let per = TEAM / g;
  for (var r = lid; r < NTEAMS; r += WG) {
    var t = 0.0;
    for (var i = 0u; i < per; i++) {
      t += team_partial[r * per + i];
    }
    team_result[r] = t;
  }
  workgroupBarrier();
#else
  team_partial[lid] = value;
  workgroupBarrier();
  for (var s = TEAM / 2u; s > 0u; s >>= 1u) {
    if ((lid & (TEAM - 1u)) < s) {
      team_partial[lid] += team_partial[lid + s];
    }
    workgroupBarrier();
  }
  for (var r = lid; r < NTEAMS; r += WG) {
    team_result[r] = team_partial[r * TEAM];
  }
  workgroupBarrier();
#endif
}
