// Attention with sinks, GQA and sliding windows over the KV cache (oracle README 5):
//   o[t, h] = sum_j w_j v_j,  w = softmax([q·k_j / sqrt(D) for visible j] ++ [sink_h]) without the sink.
// A workgroup owns one row block (lib/attention_plan: up to ROWS (token, query head) rows sharing
// kv head g) and one split of the block's keys, and streams those keys in tiles of TILE with LANES
// threads per row:
//   1. lane l scores keys l, l + LANES, ... of the tile for its row (q pre-scaled by 1/sqrt(D)),
//      masked by causality and the window;
//   2. the row's tile max (lanes meet in workgroup memory) updates the running max m; the lane
//      stores its keys' exp(s - m) in workgroup memory;
//   3. every lane rescales and accumulates the running sum l and its D / LANES output dims over
//      the tile's keys.
// Online softmax in f32 with m initialised to the sink and l = 1 (OpenAI's Metal sdpa); only
// split 0 carries the sink. With one split the output is final; otherwise (o, m, l) partials go
// to part_o / part_ml and attention_combine merges them.
// defines: D (head dim, a multiple of 4·LANES), ROWS, TILE (a multiple of LANES).
#include lib/step
#include lib/attention_plan

const LANES: u32 = 8u;
const WG: u32 = ROWS * LANES;
const DV: u32 = D / 4u;          // vec4s per head row
const LV: u32 = D / 4u / LANES;  // output vec4s per lane
const KPL: u32 = TILE / LANES;   // keys per lane per tile

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: AttnParams;
@group(0) @binding(2) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> kcache: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> vcache: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> sinks: array<f32>;
@group(0) @binding(6) var<storage, read_write> attn: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> part_o: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> part_ml: array<vec2<f32>>;

var<workgroup> tile_max: array<array<f32, LANES>, ROWS>;
var<workgroup> probs: array<array<f32, TILE>, ROWS>;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let T = step.tokens;
  let G = att_group();
  let nb = att_blocks(T);
  let item = wid.x + wid.y * nwg.x;
  if (item >= p.nkv * nb) {
    return;
  }
  let g = item / nb;
  let b = item % nb;
  let S = att_splits(T);
  let s = wid.z;
  let keys = att_block_keys(b, T);
  let C = att_split_len(keys.y - keys.x, S);
  let k0 = keys.x + s * C;
  if (s >= S || k0 >= keys.y) {
    return;  // an empty split (short range): attention_combine skips it too
  }
  let k1 = min(k0 + C, keys.y);

  let row = lid / LANES;
  let lane = lid % LANES;
  let r = b * ROWS + row;
  let live = r < T * G;
  let t = min(r / G, T - 1u);
  let h = g * G + r % G;
  let pos = step.pos0 + t;
  let first = att_first_key(pos);

  var q: array<vec4<f32>, DV>;
  let qb = (t * p.stride + h * D) / 4u;
  for (var e = 0u; e < DV; e++) {
    q[e] = select(vec4<f32>(0.0), qkv[qb + e] * p.scale, live);
  }
  var m = NEG_BIG;
  var l = 0.0;
  if (s == 0u && live) {
    m = sinks[h];
    l = 1.0;
  }
  var o: array<vec4<f32>, LV>;
  for (var e = 0u; e < LV; e++) {
    o[e] = vec4<f32>(0.0);
  }
  let kv0 = g * p.cap;

  for (var j0 = k0; j0 < k1; j0 += TILE) {
    let nt = min(TILE, k1 - j0);
    // 1. scores of this lane's keys
    var sc: array<f32, KPL>;
    var mx = NEG_BIG;
    for (var k = 0u; k < KPL; k++) {
      let i = lane + k * LANES;
      let j = j0 + i;
      var v = NEG_BIG;
      if (live && i < nt && j >= first && j <= pos) {
        let kb = (kv0 + j % p.cap) * DV;
        var acc = vec4<f32>(0.0);
        for (var e = 0u; e < DV; e++) {
          acc += q[e] * kcache[kb + e];
        }
        v = acc.x + acc.y + acc.z + acc.w;
        mx = max(mx, v);
      }
      sc[k] = v;
    }
    // 2. running max, probabilities
    tile_max[row][lane] = mx;
    workgroupBarrier();
    for (var x = 0u; x < LANES; x++) {
      mx = max(mx, tile_max[row][x]);
    }
    let m_new = max(m, mx);
    let alpha = exp(m - m_new);
    m = m_new;
    for (var k = 0u; k < KPL; k++) {
      probs[row][lane + k * LANES] = select(0.0, exp(sc[k] - m_new), sc[k] > NEG_BIG);
    }
    workgroupBarrier();
    // 3. accumulate l and this lane's output dims
    l *= alpha;
    for (var e = 0u; e < LV; e++) {
      o[e] *= alpha;
    }
    for (var i = 0u; i < nt; i++) {
      let w = probs[row][i];
      l += w;
      let vb = (kv0 + (j0 + i) % p.cap) * DV + lane * LV;
      for (var e = 0u; e < LV; e++) {
        o[e] += w * vcache[vb + e];
      }
    }
    // The next tile writes tile_max (last read before the barrier above) and, after its first
    // barrier, probs (read above): no third barrier needed.
  }

  if (!live) {
    return;
  }
  let ob = (t * p.nq + h) * DV + lane * LV;
  if (S == 1u) {
    let inv = 1.0 / l;
    for (var e = 0u; e < LV; e++) {
      attn[ob + e] = o[e] * inv;
    }
  } else {
    let pi = (t * p.nq + h) * S + s;
    for (var e = 0u; e < LV; e++) {
      part_o[pi * DV + lane * LV + e] = o[e];
    }
    if (lane == 0u) {
      part_ml[pi] = vec2<f32>(m, l);
    }
  }
}
