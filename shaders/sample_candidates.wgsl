// The sampler's first pass, spread over the vocabulary: a workgroup per (slice of SLICE logits,
// sampled row) finds the slice's largest logit m, its softmax mass s = sum exp((l - m) / T) over the
// allowed tokens, and its C largest logits with their ids (value descending, ids ascending on
// ties). sample.wgsl then works on these W·C candidates instead of the whole row (201,088 logits
// for gpt-oss), falling back to the whole row only when the kept set may reach past a slice's C.
// A Gumbel-max row (lib/sample_settings gumbel_draw) needs only the slice's largest key, which
// goes in its first candidate. Rows the unembedding already settled (ARGMAX: greedy unmasked rows
// and Gumbel-max rows) skip it.
// defines: WG (power of two), SLICE (a multiple of WG), C (<= WG); flag ARGMAX.
#include lib/step
#include lib/gumbel

struct Params {
  vocab: u32,
  mask_words: u32,
  slices: u32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> samples: array<SampleRow>;
@group(0) @binding(3) var<storage, read> logits: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
// per (row, slice): C x (value bits, id), then (m, s)
@group(0) @binding(5) var<storage, read_write> cand: array<vec2<u32>>;
@group(0) @binding(6) var<storage, read_write> stats: array<vec2<f32>>;

const REDUCE_N: u32 = 1u;
#include lib/reduce

#include lib/sample_row

const PER: u32 = SLICE / WG;

#if SUBGROUPS
var<workgroup> round_best: Pick;
#endif

// wg_argmax for the C rounds: with subgroups the first subgroup merges the subgroups' bests,
// instead of every thread looping over them (the rounds' main cost on CPU adapters). The same
// order (lib/order better), so the same pick.
@diagnostic(off, subgroup_uniformity)
fn round_argmax(v: f32, i: u32, lid: u32) -> Pick {
#if SUBGROUPS
  let m = subgroupMax(v);
  let mi = subgroupMin(select(NONE, i, v == m));
  if (sg_lane == 0u) {
    red_pick_v[lid / sg_size] = m;
    red_pick_i[lid / sg_size] = mi;
  }
  workgroupBarrier();
  if (lid < sg_size) {
    var bv = LOWEST;
    var bi = NONE;
    for (var s = lid; s < (WG + sg_size - 1u) / sg_size; s += sg_size) {
      if (better(red_pick_v[s], red_pick_i[s], bv, bi)) {
        bv = red_pick_v[s];
        bi = red_pick_i[s];
      }
    }
    let m2 = subgroupMax(bv);
    let mi2 = subgroupMin(select(NONE, bi, bv == m2));
    if (lid == 0u) {
      round_best = Pick(m2, mi2);
    }
  }
  return workgroupUniformLoad(&round_best);
#else
  return wg_argmax(v, i, lid, p.vocab);
#endif
}

@compute @workgroup_size(WG)
@diagnostic(off, subgroup_uniformity)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
#if SUBGROUPS
  @builtin(subgroup_invocation_id) sgl: u32,
  @builtin(subgroup_size) sgs: u32,
#endif
) {
#if SUBGROUPS
  sg_lane = sgl;
  sg_size = sgs;
#endif
  let r_idx = wid.y;
  if (r_idx >= step.samples) {
    return;
  }
  let rc = load_sample_row(r_idx, lid);
#if ARGMAX
  if (unembed_settles(rc, p.vocab)) {
    return;
  }
#endif
  let row = rc.row * p.vocab;
  let s0 = wid.x * SLICE;
  let base = (r_idx * p.slices + wid.x) * C;
  if (gumbel_draw(rc, p.vocab)) {
    let inv_t = 1.0 / rc.temperature;
    let stream = gumbel_stream(rc.seed, rc.counter);
    var bk = LOWEST;
    var bi = NONE;
    for (var j = 0u; j < PER; j++) {
      let i = s0 + lid + j * WG;
      if (i < p.vocab) {
        let k = gumbel_key(logits[row + i], inv_t, stream, i);
        if (better(k, i, bk, bi)) {
          bk = k;
          bi = i;
        }
      }
    }
    let win = wg_argmax(bk, bi, lid, p.vocab);
    if (lid == 0u) {
      cand[base] = vec2<u32>(bitcast<u32>(win.v), win.i);
    }
    return;
  }
  // this thread's values, sorted descending (ids ascending on ties): its head is v[h]
  var v: array<f32, PER>;
  var ix: array<u32, PER>;
  var mx = NEG;
  for (var j = 0u; j < PER; j++) {
    let i = s0 + lid + j * WG;
    var x = NEG;
    if (i < p.vocab) {
      x = lg(row, i);
    }
    // insertion: ids increase with j, so equal values keep the lower id first
    var k = j;
    while (k > 0u && x > v[k - 1u]) {
      v[k] = v[k - 1u];
      ix[k] = ix[k - 1u];
      k--;
    }
    v[k] = x;
    ix[k] = select(NONE, i, i < p.vocab);
    mx = max(mx, x);
  }
  // the slice's mass relative to its maximum
  let m = wg_argmax(mx, lid, lid, p.vocab).v;
  var z = 0.0;
  if (rc.temperature > 0.0) {
    let inv_t = 1.0 / rc.temperature;
    for (var j = 0u; j < PER; j++) {
      if (v[j] > NEG) {
        z += exp((v[j] - m) * inv_t);
      }
    }
  }
  // the tree on both paths, so the masses sample.wgsl draws by have the same bits on every adapter
  let mass = wg_tree_sum(z, lid, p.vocab);
  if (lid == 0u) {
    stats[r_idx * p.slices + wid.x] = vec2<f32>(m, mass);
  }
  // the C best: C rounds of a workgroup argmax over the threads' heads
  var h = 0u;
  for (var c = 0u; c < opaque(C, p.vocab); c++) {
    var hv = NEG;
    var hi = NONE;
    if (h < PER) {
      hv = v[min(h, PER - 1u)];
      hi = ix[min(h, PER - 1u)];
    }
    let win = round_argmax(hv, hi, lid);
    if (lid == 0u) {
      cand[base + c] = vec2<u32>(bitcast<u32>(win.v), win.i);
    }
    if (win.i != NONE && h < PER && ix[min(h, PER - 1u)] == win.i) {
      h++;
    }
  }
}
