// Router top-k then softmax over the k winners only (gpt-oss routing) for one token, by a whole
// workgroup (or with TOPK_SG by each subgroup on its own, see router_topk): experts in descending logit order, ties broken toward the lower expert index
// (torch.topk / Metal topk.metal). Thread l holds experts l, l + WG, ... (EPT of them); k rounds of
// a workgroup argmax (lib/reduce). Needs consts WG (a power of two), EPT (experts per thread, <= 32,
// E <= WG*EPT), KMAX (k <= KMAX), REDUCE_N, a `logits` f32 storage array, and with SUBGROUPS
// lib/subgroup's sg_lane / sg_size set by the entry point. Empty candidates are (LOWEST, NONE).
#include lib/reduce

struct TopK {
  ids: array<u32, KMAX>,
  w: array<f32, KMAX>,
}

#if TOPK_SG
const TOPK_PER: u32 = EPS;
#else
const TOPK_PER: u32 = EPT;
#endif

// The top-k experts of logits[base .. base + E) and their softmax weights; every thread gets them.
// With TOPK_SG (subgroups, EPS = ceil(E / smallest subgroup) <= 32) every subgroup does it on its
// own, lane l holding experts l, l + sg_size, ...: no workgroup memory and no barrier, so a kernel
// that needs its token's experts first (mlp1 in decode) does not pay 2k barriers per workgroup.
@diagnostic(off, subgroup_uniformity)
fn router_topk(base: u32, E: u32, K: u32, lid: u32) -> TopK {
#if TOPK_SG
  let lane = sg_lane;
  let stride = sg_size;
#else
  let lane = lid;
  let stride = WG;
#endif
  var v: array<f32, TOPK_PER>;
  var live = 0u; // bit j: expert lane + j*stride exists and is not yet picked
  for (var j = 0u; j < TOPK_PER; j++) {
    let ex = lane + j * stride;
    v[j] = LOWEST;
    if (ex < E) {
      v[j] = logits[base + ex];
      live |= 1u << j;
    }
  }
  var sel_v: array<f32, KMAX>;
  var out: TopK;
  for (var r = 0u; r < K; r++) {
    var bv = LOWEST;
    var bi = NONE;
    for (var j = 0u; j < TOPK_PER; j++) {
      // j ascending = index ascending, so the strict > keeps the lower index on ties.
      if ((live & (1u << j)) != 0u && (bi == NONE || v[j] > bv)) {
        bv = v[j];
        bi = lane + j * stride;
      }
    }
#if TOPK_SG
    // the largest logit, then the lowest index holding it
    let m = subgroupMax(bv);
    let best = Pick(m, subgroupMin(select(NONE, bi, bv == m)));
#else
    let best = wg_argmax(bv, bi, lid, E);
#endif
    sel_v[r] = best.v;
    out.ids[r] = best.i;
    if (best.i != NONE && best.i % stride == lane) {
      live &= ~(1u << (best.i / stride));
    }
  }
  // softmax over the k winners; sel_v[0] is the largest
  var sum = 0.0;
  for (var r = 0u; r < K; r++) {
    sum += exp(sel_v[r] - sel_v[0]);
  }
  for (var r = 0u; r < K; r++) {
    out.w[r] = exp(sel_v[r] - sel_v[0]) / sum;
  }
  return out;
}
