// This invocation's subgroup lane and the subgroup size, declared once for every reduction library
// (wg_reduce, team_reduce, topk), so a kernel may include several. The entry point sets them from
// its builtins under #if SUBGROUPS; without subgroups they stay 0 and 1. The libraries take
// subgroup i to hold invocations [i*sg_size, (i+1)*sg_size) of the 1D workgroup, with
// sg_lane = local index % sg_size: the engine checks that at start-up (subgroup_layout_check.wgsl)
// and uses the portable path where it fails.
var<private> sg_lane: u32 = 0u;
var<private> sg_size: u32 = 1u;
