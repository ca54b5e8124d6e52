// Sums TR_N values per invocation over each team of TEAM consecutive invocations (TEAM a power of
// two dividing WG); afterwards every lane of a team holds its team's sums. With SUBGROUPS the host
// keeps TEAM within the smallest subgroup, so a butterfly of subgroupShuffleXor does it without a
// barrier (teams never straddle subgroups: the start-up layout check). Without subgroups, a tree in
// workgroup memory per value. Needs consts WG, TEAM, TR_N. (lib/team_sum is the variant for teams
// wider than a subgroup whose sums other teams read.)
#if !SUBGROUPS
var<workgroup> tr_scratch: array<f32, WG>;
#endif

@diagnostic(off, subgroup_uniformity)
fn team_reduce(v: ptr<function, array<f32, TR_N>>, lid: u32) {
#if SUBGROUPS
  for (var i = 0u; i < TR_N; i++) {
    var x = (*v)[i];
    for (var o = 1u; o < TEAM; o <<= 1u) {
      x += subgroupShuffleXor(x, o);
    }
    (*v)[i] = x;
  }
#else
  let base = lid - lid % TEAM;
  for (var i = 0u; i < TR_N; i++) {
    tr_scratch[lid] = (*v)[i];
    workgroupBarrier();
    for (var s = TEAM / 2u; s > 0u; s >>= 1u) {
      if (lid % TEAM < s) {
        tr_scratch[lid] += tr_scratch[lid + s];
      }
      workgroupBarrier();
    }
    (*v)[i] = tr_scratch[base];
    workgroupBarrier();
  }
#endif
}
