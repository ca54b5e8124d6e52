// Attention with sinks, GQA and sliding windows over the paged KV cache (oracle README 5):
//   o[t, h] = sum_j w_j v_j,  w = softmax([q·k_j / sqrt(D) for visible j] ++ [sink_h]) without the sink.
// One workgroup per (work item, kv head g): the item's BQ tokens × the G query heads of g are the
// workgroup's ROWS rows, LANES threads each. Keys stream in tiles of TK: the whole workgroup loads
// a K and a V tile (TK consecutive positions of one page, coalesced) into workgroup memory once, and
// every row scores against it, so each key is read once per item for all its tokens and heads
// (flash attention; a decode item is one token × G heads). Online softmax in f32 with m initialised
// to the sink and l = 1 (OpenAI's Metal sdpa) in the item that carries the sink; a split item
// writes (o, m, l) partials that attention_combine merges.
// defines: D (head dim, multiple of 4·LANES), G, BQ, LANES, TK (divides PAGE), PAGE; flag KV_F32.
#include lib/step
#include lib/kv_pages
#include lib/attention_plan

const ROWS: u32 = BQ * G;
const WG: u32 = ROWS * LANES;
const DV: u32 = D / 4u;          // vec4s per head row
const LV: u32 = DV / LANES;      // output vec4s per lane
const KPL: u32 = TK / LANES;     // keys per lane per tile

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<storage, read> plan: array<u32>;
@group(0) @binding(2) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> table: array<u32>;
@group(0) @binding(4) var<storage, read> kpool: array<u32>;
@group(0) @binding(5) var<storage, read> vpool: array<u32>;
@group(0) @binding(6) var<storage, read> sinks: array<f32>;
@group(0) @binding(7) var<storage, read_write> attn: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> part_o: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> part_ml: array<vec2<f32>>;

var<workgroup> kt: array<vec4<f32>, TK * DV>;
var<workgroup> vt: array<vec4<f32>, TK * DV>;
var<workgroup> probs: array<f32, ROWS * TK>;
var<workgroup> tile_max: array<f32, ROWS * LANES>;
// The work item (and the section's count), read once and made workgroup-uniform: the key loop
// holds barriers, so its bounds must be uniform.
var<workgroup> wg_item: array<u32, 9>;

// vec4 v (4 consecutive dims) of a K or V row starting at word w0.
fn load4(is_k: bool, w0: u32, v: u32) -> vec4<f32> {
#if KV_F32
  let w = w0 + 4u * v;
  if (is_k) {
    return bitcast<vec4<f32>>(vec4<u32>(kpool[w], kpool[w + 1u], kpool[w + 2u], kpool[w + 3u]));
  }
  return bitcast<vec4<f32>>(vec4<u32>(vpool[w], vpool[w + 1u], vpool[w + 2u], vpool[w + 3u]));
#else
  let w = w0 + 2u * v;
  if (is_k) {
    return vec4<f32>(unpack2x16float(kpool[w]), unpack2x16float(kpool[w + 1u]));
  }
  return vec4<f32>(unpack2x16float(vpool[w]), unpack2x16float(vpool[w + 1u]));
#endif
}

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let idx = wid.x + wid.y * nwg.x;
  if (lid == 0u) {
    let count = plan[p.count_idx];
    wg_item[8] = count;
    if (idx < count) {
      for (var i = 0u; i < 8u; i++) {
        wg_item[i] = plan[p.section + idx * 8u + i];
      }
    }
  }
  let it = workgroupUniformLoad(&wg_item);
  if (idx >= it[8]) {
    return;
  }
  let g = wid.z;
  let tok0 = it[0];
  let ntok = it[1];
  let seq = it[2];
  let pos0 = it[3];
  let key0 = it[4];
  let key1 = it[5];
  let part = it[6];
  let flags = it[7];

  let row = lid / LANES;
  let lane = lid % LANES;
  let tl = row / G;
  let h = g * G + row % G;
  let live = tl < ntok;
  let t = tok0 + min(tl, ntok - 1u);
  let pos = pos0 + min(tl, ntok - 1u);
  var first = key0;
  if (p.sliding != 0u && pos + 1u > p.window) {
    first = max(first, pos + 1u - p.window);
  }
  let last = min(pos + 1u, key1);  // visible keys of this row: [first, last)

  let stride = (p.nq + 2u * p.nkv) * DV;
  var q: array<vec4<f32>, DV>;
  for (var e = 0u; e < DV; e++) {
    q[e] = qkv[t * stride + h * DV + e] * p.scale;
  }
  var m = NEG_BIG;
  var l = 0.0;
  if ((flags & 1u) != 0u) {
    m = sinks[h];
    l = 1.0;
  }
  var o: array<vec4<f32>, LV>;
  for (var e = 0u; e < LV; e++) {
    o[e] = vec4<f32>(0.0);
  }
  let kpl = opaque(KPL, p.nq);
  let tk = opaque(TK, p.nq);

  for (var j0 = (key0 / TK) * TK; j0 < key1; j0 += TK) {
    // K and V tiles: TK consecutive positions of one page, TK * D contiguous values each
    let w0 = kv_word(table[seq * p.max_blocks + j0 / PAGE], g, p.nkv, j0);
    for (var v = lid; v < TK * DV; v += WG) {
      kt[v] = load4(true, w0, v);
      vt[v] = load4(false, w0, v);
    }
    workgroupBarrier();
    // scores of this lane's keys, straight into probs (the key loops bounded through opaque())
    var mx = NEG_BIG;
    for (var k = 0u; k < kpl; k++) {
      let kk = lane + k * LANES;
      let j = j0 + kk;
      var s = NEG_BIG;
      if (live && j >= first && j < last) {
        var acc = vec4<f32>(0.0);
        for (var e = 0u; e < DV; e++) {
          acc += q[e] * kt[kk * DV + e];
        }
        s = acc.x + acc.y + acc.z + acc.w;
        mx = max(mx, s);
      }
      probs[row * TK + kk] = s;
    }
    tile_max[row * LANES + lane] = mx;
    workgroupBarrier();
    for (var x = 0u; x < LANES; x++) {
      mx = max(mx, tile_max[row * LANES + x]);
    }
    let m_new = max(m, mx);
    let alpha = exp(m - m_new);
    m = m_new;
    for (var k = 0u; k < kpl; k++) {
      let i = row * TK + lane + k * LANES;
      let s = probs[i];
      probs[i] = select(0.0, exp(s - m_new), s > NEG_BIG);
    }
    workgroupBarrier();
    l *= alpha;
    for (var e = 0u; e < LV; e++) {
      o[e] *= alpha;
    }
    for (var i = 0u; i < tk; i++) {
      let w = probs[row * TK + i];
      l += w;
      // masked keys (w = 0) may sit on stale or unwritten slots: never let 0 * NaN through
      for (var e = 0u; e < LV; e++) {
        o[e] += select(vec4<f32>(0.0), w * vt[i * DV + lane * LV + e], w != 0.0);
      }
    }
    // the next tile overwrites kt, vt, tile_max and probs
    workgroupBarrier();
  }

  if (!live) {
    return;
  }
  if (part == NO_PART) {
    let inv = 1.0 / l;
    let ob = (t * p.nq + h) * DV + lane * LV;
    for (var e = 0u; e < LV; e++) {
      attn[ob + e] = o[e] * inv;
    }
  } else {
    let pi = part * p.nq + h;
    for (var e = 0u; e < LV; e++) {
      part_o[pi * DV + lane * LV + e] = o[e];
    }
    if (lane == 0u) {
      part_ml[pi] = vec2<f32>(m, l);
    }
  }
}
