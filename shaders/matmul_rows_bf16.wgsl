// y[t][n] = sum_k x[t][k] * W[n][k] (+ bias[n]) (+ y[t][n] when ACCUMULATE) for the RT rows of a
// token tile (RT = 2, 4, 8, 16 or 32): each lane loads a 16-byte vector of bf16 weights once and
// applies it to all the tile's rows, so a step of up to RT rows reads W once. Rows past the step's
// count are skipped (no arithmetic for them). The same bindings and Params as matmul_bf16, so
// either serves a dispatch slot. The accumulators are separate scalars (RT is a constant, so the
// unused ones compile away): an array indexed in the hot loop lives in memory on lavapipe.
// A team of TEAM lanes strides over K for one output row (within the smallest subgroup with
// SUBGROUPS: a butterfly; else partial sums in workgroup memory, WG * RT floats).
// defines: WG, TEAM, RT; flags: BIAS, ACCUMULATE, OUT_ROWS. Grid: x/y = row group linearised, z = token tile.
#include lib/bf16
#include lib/step

struct Params {
  k: u32,   // input size, a multiple of 8
  n: u32,   // output rows (of this weight buffer)
  n0: u32,  // column of y where they go (a shard of a larger matrix)
  ny: u32,  // y's row length
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> w: array<vec4<u32>>;
#if BIAS
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
#else
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
#endif

const NTEAMS: u32 = WG / TEAM;
var<workgroup> red: array<f32, NTEAMS * RT>;
#if !SUBGROUPS
var<workgroup> part: array<f32, WG * RT>;
#endif

@compute @workgroup_size(WG)
@diagnostic(off, subgroup_uniformity)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
#if OUT_ROWS
  let tokens = step.rows;
#else
  let tokens = step.tokens;
#endif
  let n_base = (wid.x + wid.y * nwg.x) * NTEAMS;
  let t0 = wid.z * RT;
  if (n_base >= p.n || t0 >= tokens) {
    return;
  }
  let nt = min(RT, tokens - t0);
  let kv = p.k / 8u;     // 16-byte weight vectors per row
  let kv4 = p.k / 4u;    // vec4s per activation row
  let team = lid / TEAM;
  let lane = lid % TEAM;
  let n = n_base + team;
  var a0 = 0.0;
  var a1 = 0.0;
  var a2 = 0.0;
  var a3 = 0.0;
  var a4 = 0.0;
  var a5 = 0.0;
  var a6 = 0.0;
  var a7 = 0.0;
  var a8 = 0.0;
  var a9 = 0.0;
  var a10 = 0.0;
  var a11 = 0.0;
  var a12 = 0.0;
  var a13 = 0.0;
  var a14 = 0.0;
  var a15 = 0.0;
  var a16 = 0.0;
  var a17 = 0.0;
  var a18 = 0.0;
  var a19 = 0.0;
  var a20 = 0.0;
  var a21 = 0.0;
  var a22 = 0.0;
  var a23 = 0.0;
  var a24 = 0.0;
  var a25 = 0.0;
  var a26 = 0.0;
  var a27 = 0.0;
  var a28 = 0.0;
  var a29 = 0.0;
  var a30 = 0.0;
  var a31 = 0.0;
  if (n < p.n) {
    for (var c = lane; c < kv; c += TEAM) {
      let wv = w[n * kv + c];
      if (RT > 0u && nt > 0u) { let xi = (t0 + 0u) * kv4 + 2u * c; a0 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 1u && nt > 1u) { let xi = (t0 + 1u) * kv4 + 2u * c; a1 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 2u && nt > 2u) { let xi = (t0 + 2u) * kv4 + 2u * c; a2 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 3u && nt > 3u) { let xi = (t0 + 3u) * kv4 + 2u * c; a3 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 4u && nt > 4u) { let xi = (t0 + 4u) * kv4 + 2u * c; a4 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 5u && nt > 5u) { let xi = (t0 + 5u) * kv4 + 2u * c; a5 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 6u && nt > 6u) { let xi = (t0 + 6u) * kv4 + 2u * c; a6 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 7u && nt > 7u) { let xi = (t0 + 7u) * kv4 + 2u * c; a7 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 8u && nt > 8u) { let xi = (t0 + 8u) * kv4 + 2u * c; a8 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 9u && nt > 9u) { let xi = (t0 + 9u) * kv4 + 2u * c; a9 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 10u && nt > 10u) { let xi = (t0 + 10u) * kv4 + 2u * c; a10 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 11u && nt > 11u) { let xi = (t0 + 11u) * kv4 + 2u * c; a11 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 12u && nt > 12u) { let xi = (t0 + 12u) * kv4 + 2u * c; a12 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 13u && nt > 13u) { let xi = (t0 + 13u) * kv4 + 2u * c; a13 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 14u && nt > 14u) { let xi = (t0 + 14u) * kv4 + 2u * c; a14 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 15u && nt > 15u) { let xi = (t0 + 15u) * kv4 + 2u * c; a15 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 16u && nt > 16u) { let xi = (t0 + 16u) * kv4 + 2u * c; a16 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 17u && nt > 17u) { let xi = (t0 + 17u) * kv4 + 2u * c; a17 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 18u && nt > 18u) { let xi = (t0 + 18u) * kv4 + 2u * c; a18 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 19u && nt > 19u) { let xi = (t0 + 19u) * kv4 + 2u * c; a19 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 20u && nt > 20u) { let xi = (t0 + 20u) * kv4 + 2u * c; a20 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 21u && nt > 21u) { let xi = (t0 + 21u) * kv4 + 2u * c; a21 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 22u && nt > 22u) { let xi = (t0 + 22u) * kv4 + 2u * c; a22 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 23u && nt > 23u) { let xi = (t0 + 23u) * kv4 + 2u * c; a23 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 24u && nt > 24u) { let xi = (t0 + 24u) * kv4 + 2u * c; a24 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 25u && nt > 25u) { let xi = (t0 + 25u) * kv4 + 2u * c; a25 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 26u && nt > 26u) { let xi = (t0 + 26u) * kv4 + 2u * c; a26 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 27u && nt > 27u) { let xi = (t0 + 27u) * kv4 + 2u * c; a27 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 28u && nt > 28u) { let xi = (t0 + 28u) * kv4 + 2u * c; a28 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 29u && nt > 29u) { let xi = (t0 + 29u) * kv4 + 2u * c; a29 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 30u && nt > 30u) { let xi = (t0 + 30u) * kv4 + 2u * c; a30 += dot8(wv, x[xi], x[xi + 1u]); }
      if (RT > 31u && nt > 31u) { let xi = (t0 + 31u) * kv4 + 2u * c; a31 += dot8(wv, x[xi], x[xi + 1u]); }
    }
  }
  let acc = array<f32, 32>(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31);
#if SUBGROUPS
  for (var t = 0u; t < RT; t++) {
    var v = acc[t];
    for (var o = 1u; o < TEAM; o <<= 1u) {
      v += subgroupShuffleXor(v, o);
    }
    if (lane == 0u) {
      red[team * RT + t] = v;
    }
  }
#else
  for (var t = 0u; t < RT; t++) {
    part[lid * RT + t] = acc[t];
  }
  workgroupBarrier();
  for (var i = lid; i < NTEAMS * RT; i += WG) {
    let rr = i / RT;
    let t = i % RT;
    var s = 0.0;
    for (var l = 0u; l < TEAM; l++) {
      s += part[(rr * TEAM + l) * RT + t];
    }
    red[i] = s;
  }
#endif
  workgroupBarrier();
  for (var i = lid; i < NTEAMS * nt; i += WG) {
    let rr = i / nt;
    let t = i % nt;
    let nn = n_base + rr;
    if (nn < p.n) {
      let o = (t0 + t) * p.ny + p.n0 + nn;
      var v = red[rr * RT + t];
#if BIAS
      v += bias[nn];
#endif
#if ACCUMULATE
      v += y[o];
#endif
      y[o] = v;
    }
  }
}
