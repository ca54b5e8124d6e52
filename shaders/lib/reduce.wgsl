// Workgroup reductions of REDUCE_N values per thread. Needs consts WG (threads per workgroup, a
// power of two) and REDUCE_N. With SUBGROUPS, subgroup i is taken to hold invocations
// [i*sg_size, (i+1)*sg_size) of the 1D workgroup; the engine checks that at start-up
// (subgroup_layout_check.wgsl) and falls back to the portable path otherwise.
var<private> sg_lane: u32 = 0u;
var<private> sg_size: u32 = 1u;
#if SUBGROUPS
var<workgroup> red_partial: array<f32, ((WG + SG_MIN - 1u) / SG_MIN) * REDUCE_N>;
#else
var<workgroup> red_partial: array<f32, WG * REDUCE_N>;
#endif
var<workgroup> red_result: array<f32, REDUCE_N>;

// After the call every thread can read the sums in red_result.
fn wg_sum_n(v: ptr<function, array<f32, REDUCE_N>>, lid: u32) {
#if SUBGROUPS
  let nsg = (WG + sg_size - 1u) / sg_size;
  let sg = lid / sg_size;
  for (var r = 0u; r < REDUCE_N; r++) {
    let s = subgroupAdd((*v)[r]);
    if (sg_lane == 0u) {
      red_partial[sg * REDUCE_N + r] = s;
    }
  }
  workgroupBarrier();
  for (var r = lid; r < REDUCE_N; r += WG) {
    var t = 0.0;
    for (var i = 0u; i < nsg; i++) {
      t += red_partial[i * REDUCE_N + r];
    }
    red_result[r] = t;
  }
  workgroupBarrier();
#else
  for (var r = 0u; r < REDUCE_N; r++) {
    red_partial[lid * REDUCE_N + r] = (*v)[r];
  }
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      for (var r = 0u; r < REDUCE_N; r++) {
        red_partial[lid * REDUCE_N + r] += red_partial[(lid + s) * REDUCE_N + r];
      }
    }
    workgroupBarrier();
  }
  for (var r = lid; r < REDUCE_N; r += WG) {
    red_result[r] = red_partial[r];
  }
  workgroupBarrier();
#endif
}
