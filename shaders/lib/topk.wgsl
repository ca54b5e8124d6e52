// Router top-k then softmax over the k winners only (gpt-oss routing) for one token, by a whole
// workgroup (or with TOPK_SG by each subgroup on its own, see router_topk): experts in descending logit order, ties broken toward the lower expert index
// (torch.topk / Metal topk.metal). Thread l holds experts l, l + WG, ... (EPT of them); k rounds of
// a workgroup argmax. Needs consts WG (a power of two), EPT (experts per thread, <= 32,
// E <= WG*EPT), KMAX (k <= KMAX), a `logits` f32 storage array, and with SUBGROUPS the private
// sg_lane / sg_size of lib/reduce or lib/team_sum, set by the entry point.
const NONE: u32 = 0xFFFFFFFFu;
// Placeholder value of an empty candidate (WGSL has no infinity literal); with index NONE it loses
// every comparison against a finite logit.
const LOWEST: f32 = -0x1.fffffep+127f; // -FLT_MAX

#if SUBGROUPS
var<workgroup> part_v: array<f32, (WG + SG_MIN - 1u) / SG_MIN>;
var<workgroup> part_i: array<u32, (WG + SG_MIN - 1u) / SG_MIN>;
#else
var<workgroup> part_v: array<f32, WG>;
var<workgroup> part_i: array<u32, WG>;
#endif

// (va, ia) ranks before (vb, ib): larger logit, then lower index. NONE (index) loses to any expert
// of equal value, and it carries LOWEST, so it loses to every finite logit.
fn better(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  return va > vb || (va == vb && ia < ib);
}

struct Pick {
  v: f32,
  i: u32,
}

// Workgroup-wide best (value, index) over one candidate per thread; all threads get the result.
@diagnostic(off, subgroup_uniformity)
fn wg_argmax(v: f32, i: u32, lid: u32) -> Pick {
#if SUBGROUPS
  let m = subgroupMax(v);
  let mi = subgroupMin(select(NONE, i, v == m));
  if (sg_lane == 0u) {
    part_v[lid / sg_size] = m;
    part_i[lid / sg_size] = mi;
  }
  workgroupBarrier();
  let nsg = (WG + sg_size - 1u) / sg_size;
  var best = Pick(part_v[0], part_i[0]);
  for (var s = 1u; s < nsg; s++) {
    if (better(part_v[s], part_i[s], best.v, best.i)) {
      best = Pick(part_v[s], part_i[s]);
    }
  }
  workgroupBarrier();
  return best;
#else
  part_v[lid] = v;
  part_i[lid] = i;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s && better(part_v[lid + s], part_i[lid + s], part_v[lid], part_i[lid])) {
      part_v[lid] = part_v[lid + s];
      part_i[lid] = part_i[lid + s];
    }
    workgroupBarrier();
  }
  let best = Pick(part_v[0], part_i[0]);
  workgroupBarrier();
  return best;
#endif
}


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
    let best = wg_argmax(bv, bi, lid);
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
