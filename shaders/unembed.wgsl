// The decode path's head in one dispatch per unembedding shard: the final RMSNorm of the step's
// logits rows (recomputed by every workgroup), the bf16 unembedding matvec -> logits, and with
// ARGMAX the greedy pick: each workgroup's best (value, lowest index) per row goes into an atomic
// max over packed (orderable value, ~index) pairs (atomic-vec2u-min-max), so greedy decoding needs
// no pass over the logits after this. A workgroup owns NTEAMS * RPT vocabulary rows (RPT per team
// of TEAM lanes) for up to RT logits rows; x is loaded once per row for all of them.
// defines: TEAM, RPT, RT, H; flags: SUBGROUPS, ARGMAX. Grid: x = row group (linearised with y), z = logits-row group.
#include lib/step
#include lib/bf16
#include lib/order

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
      logits[(r0 + rr) * p.ny + p.n0 + n] = outs[local * RT + rr];
    }
  }
#if ARGMAX
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
