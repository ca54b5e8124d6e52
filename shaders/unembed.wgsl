// The decode path's head in one dispatch per unembedding shard: the final RMSNorm of the step's
// logits rows (recomputed by every workgroup), the bf16 unembedding matvec -> logits, and with
// ARGMAX the greedy pick: each workgroup's best (value, lowest index) per row goes into an atomic
// max over packed (orderable value, ~index) pairs (atomic-vec2u-min-max), so greedy decoding needs
// no pass over the logits after this. A logits row whose sample row asks for temperature
// sampling over the whole softmax (lib/sample_settings gumbel_draw) takes the same max over
// Gumbel-max keys instead (lib/gumbel: logit / temperature + noise of the row's seed, counter and
// token id), which is its draw; a top-p row too (lib/sample_settings gumbel_nucleus), whose draw
// it is when it falls in the nucleus. A workgroup owns NTEAMS * RPT vocabulary rows (RPT per team of
// TEAM lanes) for up to RT logits rows; x is loaded once per row for all of them.
// defines: TEAM, RPT, RT, H; flags: SUBGROUPS, ARGMAX. Grid: x = row group (linearised with y), z = logits-row group.
#include lib/step
#include lib/bf16
#include lib/order
#if ARGMAX
#include lib/sample_settings
#include lib/gumbel
#endif

const NTEAMS: u32 = 8u;
const WG: u32 = NTEAMS * TEAM;
const NROWS: u32 = NTEAMS * RPT;
const TR_N: u32 = RPT * RT;
const REDUCE_N: u32 = RT;
#include lib/rms
#include lib/team_reduce

struct Params {
  n: u32,   // vocabulary rows of this shard
  n0: u32,  // id of its first row
  ny: u32,  // vocabulary size (logits row length)
  eps: f32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> rows: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> scale: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read_write> logits: array<f32>;
#if ARGMAX
@group(0) @binding(7) var<storage, read_write> argmax: array<atomic<vec2<u32>>>;
// the step's sample rows: the settings of a Gumbel-max row's draw
@group(0) @binding(8) var<storage, read> samples: array<SampleRow>;
// per logits row of this workgroup: (stream, 1 / temperature bits) of its Gumbel-max draw, or
// (0, NONE) for a plain argmax
var<workgroup> draws: array<vec2<u32>, RT>;

// The sample row of logits row r, or NONE. The engine's decode steps put sample row r on logits
// row r; a step with other rows (prompt rows with logits) searches.
fn sample_of_row(r: u32) -> u32 {
  if (r < step.samples && samples[r].row == r) {
    return r;
  }
  for (var s = 0u; s < step.samples; s++) {
    if (samples[s].row == r) {
      return s;
    }
  }
  return NONE;
}

fn draw_of_row(r: u32) -> vec2<u32> {
  let s = sample_of_row(r);
  if (s != NONE) {
    let rc = samples[s];
    if (unembed_keys(rc, p.ny)) {
      return vec2<u32>(gumbel_stream(rc.seed, rc.counter), bitcast<u32>(1.0 / rc.temperature));
    }
  }
  return vec2<u32>(0u, NONE);
}
#endif
var<workgroup> outs: array<f32, NROWS * RT>;

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
  let n_base = (wid.x + wid.y * nwg.x) * NROWS;
  let r0 = wid.z * RT;
  if (n_base >= p.n || r0 >= step.rows) {
    return;
  }
  let nr = min(RT, step.rows - r0);
  var tok: array<u32, RT>;
  for (var rr = 0u; rr < RT; rr++) {
    tok[rr] = rows[r0 + min(rr, nr - 1u)];
  }
  let inv = rms_inv(tok, nr, lid, p.eps);

  let team = lid / TEAM;
  let lane = lid % TEAM;
  var acc: array<f32, TR_N>;
  for (var i = 0u; i < TR_N; i++) {
    acc[i] = 0.0;
  }
  for (var c = lane; c < H / 8u; c += TEAM) {
    let s0 = scale[2u * c];
    let s1 = scale[2u * c + 1u];
    var xa: array<vec4<f32>, RT>;
    var xb: array<vec4<f32>, RT>;
    for (var rr = 0u; rr < RT; rr++) {
      xa[rr] = x[tok[rr] * (H / 4u) + 2u * c] * s0 * inv[rr];
      xb[rr] = x[tok[rr] * (H / 4u) + 2u * c + 1u] * s1 * inv[rr];
    }
    for (var i = 0u; i < RPT; i++) {
      let n = n_base + team + i * NTEAMS;
      let wv = w[min(n, p.n - 1u) * (H / 8u) + c];
      for (var rr = 0u; rr < RT; rr++) {
        acc[i * RT + rr] += dot8(wv, xa[rr], xb[rr]);
      }
    }
  }
#if ARGMAX
  if (lid < nr) {
    draws[lid] = draw_of_row(r0 + lid);
  }
#endif
  team_reduce(&acc, lid);
  if (lane == 0u) {
    for (var i = 0u; i < RPT; i++) {
      let local = team + i * NTEAMS;
      for (var rr = 0u; rr < RT; rr++) {
        outs[local * RT + rr] = acc[i * RT + rr];
      }
    }
  }
  workgroupBarrier();
  for (var e = lid; e < NROWS * nr; e += WG) {
    let local = e / nr;
    let rr = e % nr;
    let n = n_base + local;
    if (n < p.n) {
      let v = outs[local * RT + rr];
      logits[(r0 + rr) * p.ny + p.n0 + n] = v;
#if ARGMAX
      let d = draws[rr];
      if (d.y != NONE) {
        outs[local * RT + rr] = gumbel_key(v, bitcast<f32>(d.y), d.x, p.n0 + n);
      }
#endif
    }
  }
#if ARGMAX
  workgroupBarrier();
  // per logits row: the best of this workgroup's rows (a thread per row scans them), one atomic
  if (lid < nr) {
    var bk = 0u;
    var bi = 0u;
    for (var local = 0u; local < NROWS; local++) {
      let n = n_base + local;
      if (n < p.n) {
        let k = key(outs[local * RT + lid]);
        if (k > bk) {
          bk = k;
          bi = n;
        }
      }
    }
    atomicStoreMax(&argmax[r0 + lid], vec2<u32>(~(p.n0 + bi), bk));
  }
#endif
}
