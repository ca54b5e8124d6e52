// Router top-k then softmax over the k winners only (gpt-oss routing), one workgroup per token.
// logits f32 [T][E] -> routing u32 [T][k][2] = (expert id, bitcast<u32>(weight)), experts in
// descending logit order, ties broken toward the lower expert index (torch.topk / Metal topk.metal).
// Thread l holds experts l, l + WG, ... (EPT of them); k rounds of a workgroup argmax.
// defines: WG (a power of two), EPT (experts per thread, <= 32, E <= WG*EPT), KMAX (k <= KMAX).
#include lib/step

struct Params {
  e: u32, // experts
  k: u32, // experts per token
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read_write> routing: array<u32>;

const NONE: u32 = 0xFFFFFFFFu;
// Placeholder value of an empty candidate (WGSL has no infinity literal); with index NONE it loses
// every comparison against a finite logit.
const LOWEST: f32 = -0x1.fffffep+127f; // -FLT_MAX

#if SUBGROUPS
var<private> sg_lane: u32 = 0u;
var<private> sg_size: u32 = 1u;
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
  let t = wid.x + wid.y * nwg.x;
  if (t >= step.tokens) {
    return;
  }
  let E = p.e;
  let K = min(p.k, KMAX);
  var v: array<f32, EPT>;
  var live = 0u; // bit j: expert lid + j*WG exists and is not yet picked
  for (var j = 0u; j < EPT; j++) {
    let ex = lid + j * WG;
    v[j] = LOWEST;
    if (ex < E) {
      v[j] = logits[t * E + ex];
      live |= 1u << j;
    }
  }
  var sel_v: array<f32, KMAX>;
  var sel_i: array<u32, KMAX>;
  for (var r = 0u; r < K; r++) {
    var bv = LOWEST;
    var bi = NONE;
    for (var j = 0u; j < EPT; j++) {
      // j ascending = index ascending, so the strict > keeps the lower index on ties.
      if ((live & (1u << j)) != 0u && (bi == NONE || v[j] > bv)) {
        bv = v[j];
        bi = lid + j * WG;
      }
    }
    let best = wg_argmax(bv, bi, lid);
    sel_v[r] = best.v;
    sel_i[r] = best.i;
    if (best.i != NONE && best.i % WG == lid) {
      live &= ~(1u << (best.i / WG));
    }
  }
  // Softmax over the k winners; sel_v[0] is the largest.
  var sum = 0.0;
  for (var r = 0u; r < K; r++) {
    sum += exp(sel_v[r] - sel_v[0]);
  }
  if (lid < K) {
    let w = exp(sel_v[lid] - sel_v[0]) / sum;
    let o = (t * p.k + lid) * 2u;
    routing[o] = sel_i[lid];
    routing[o + 1u] = bitcast<u32>(w);
  }
}
