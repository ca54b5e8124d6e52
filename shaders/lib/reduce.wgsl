// Workgroup reductions under one contract: every invocation of the 1D workgroup calls them in
// uniform control flow and gets the result (wg_sum as a uniform value, so it may bound loops that
// hold barriers). Without SUBGROUPS each is a tree in workgroup memory; with SUBGROUPS
// subgroupAdd / subgroupMax reduce each subgroup first (lib/subgroup; the entry point sets sg_lane
// and sg_size), except wg_tree_sum, the tree on both paths.
// Needs consts WG (a power of two) and REDUCE_N (values per wg_sum_n call; 1 where unused).
// `nonzero` arguments: a uniform the host never sets to 0, which keeps the trees loops (opaque()).
#include lib/subgroup
#include lib/order
#include lib/step

#if SUBGROUPS
var<workgroup> red_partial: array<f32, ((WG + SG_MIN - 1u) / SG_MIN) * REDUCE_N>;
var<workgroup> red_pick_v: array<f32, (WG + SG_MIN - 1u) / SG_MIN>;
var<workgroup> red_pick_i: array<u32, (WG + SG_MIN - 1u) / SG_MIN>;
#else
var<workgroup> red_partial: array<f32, WG * REDUCE_N>;
var<workgroup> red_pick_v: array<f32, WG>;
var<workgroup> red_pick_i: array<u32, WG>;
#endif
var<workgroup> red_result: array<f32, REDUCE_N>;
var<workgroup> red_tree: array<f32, WG>;

// REDUCE_N sums at once (the RMS norms of a few rows); afterwards every thread reads them in
// red_result.
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

// The sum of one value per thread, as a uniform value (it may bound loops that hold barriers).
// Exact for integer counts below 2^24.
@diagnostic(off, subgroup_uniformity)
fn wg_sum(v: f32, lid: u32, nonzero: u32) -> f32 {
#if SUBGROUPS
  let part = subgroupAdd(v);
  workgroupBarrier();
  if (sg_lane == 0u) {
    red_tree[lid / sg_size] = part;
  }
  workgroupBarrier();
  if (lid == 0u) {
    var t = 0.0;
    for (var i = 0u; i < (WG + sg_size - 1u) / sg_size; i++) {
      t += red_tree[i];
    }
    red_tree[WG - 1u] = t;
  }
  return workgroupUniformLoad(&red_tree[WG - 1u]);
#else
  return wg_tree_sum(v, lid, nonzero);
#endif
}

// wg_sum by the tree on both paths: the same bits with and without subgroups.
fn wg_tree_sum(v: f32, lid: u32, nonzero: u32) -> f32 {
  workgroupBarrier();
  red_tree[lid] = v;
  workgroupBarrier();
  for (var s = opaque(WG / 2u, nonzero); s > 0u; s >>= 1u) {
    if (lid < s) {
      red_tree[lid] += red_tree[lid + s];
    }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&red_tree[0]);
}

struct Pick {
  v: f32,
  i: u32,
}

// The best (value, index) over one candidate per thread by lib/order's better(); index NONE for an
// empty candidate.
@diagnostic(off, subgroup_uniformity)
fn wg_argmax(v: f32, i: u32, lid: u32, nonzero: u32) -> Pick {
#if SUBGROUPS
  let m = subgroupMax(v);
  let mi = subgroupMin(select(NONE, i, v == m));
  if (sg_lane == 0u) {
    red_pick_v[lid / sg_size] = m;
    red_pick_i[lid / sg_size] = mi;
  }
  workgroupBarrier();
  let nsg = (WG + sg_size - 1u) / sg_size;
  var best = Pick(red_pick_v[0], red_pick_i[0]);
  for (var s = 1u; s < nsg; s++) {
    if (better(red_pick_v[s], red_pick_i[s], best.v, best.i)) {
      best = Pick(red_pick_v[s], red_pick_i[s]);
    }
  }
  workgroupBarrier();
  return best;
#else
  red_pick_v[lid] = v;
  red_pick_i[lid] = i;
  workgroupBarrier();
  for (var s = opaque(WG / 2u, nonzero); s > 0u; s >>= 1u) {
    if (lid < s && better(red_pick_v[lid + s], red_pick_i[lid + s], red_pick_v[lid], red_pick_i[lid])) {
      red_pick_v[lid] = red_pick_v[lid + s];
      red_pick_i[lid] = red_pick_i[lid + s];
    }
    workgroupBarrier();
  }
  let best = Pick(red_pick_v[0], red_pick_i[0]);
  workgroupBarrier();
  return best;
#endif
}

// Prefix sums of one value per thread (Hillis-Steele): the sum of the threads before this one
// (start), through it (end), and of all (total).
struct Scan {
  start: f32,
  end: f32,
  total: f32,
}

fn wg_scan(v: f32, lid: u32, nonzero: u32) -> Scan {
  workgroupBarrier();
  red_tree[lid] = v;
  workgroupBarrier();
  for (var s = 1u; s < opaque(WG, nonzero); s <<= 1u) {
    let add = select(0.0, red_tree[lid - s], lid >= s);
    workgroupBarrier();
    red_tree[lid] += add;
    workgroupBarrier();
  }
  return Scan(select(0.0, red_tree[max(lid, 1u) - 1u], lid > 0u), red_tree[lid], red_tree[WG - 1u]);
}
