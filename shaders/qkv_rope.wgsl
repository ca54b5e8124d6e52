// The decode path's attention input in one dispatch: RMSNorm(x) (recomputed by every workgroup),
// the bf16 QKV projection + bias, YaRN RoPE on q and k, and the write of k and v into the paged KV
// cache (lib/rope_kv). A workgroup owns one head (D rows of W, so each RoPE pair j, j + D/2 is in
// it) for TT tokens: NTEAMS teams of TEAM lanes, each team RPT rows; a lane loads 8 values of the
// normalised x once per token and uses them for all its team's rows. q heads go to `qkv` (rotated,
// where attention reads them), k and v heads straight to the cache.
// defines: TEAM, TT, D, PAGE, H; flags: SUBGROUPS, KV_F32. Grid: x = head, z = token group.
#include lib/step
#include lib/bf16
#include lib/rope_kv

const NTEAMS: u32 = 8u;
const WG: u32 = NTEAMS * TEAM;
const RPT: u32 = D / NTEAMS;  // rows per team
const TR_N: u32 = RPT * TT;
const REDUCE_N: u32 = TT;
#include lib/rms
#include lib/team_reduce

struct Params {
  nq: u32,
  nkv: u32,
  max_blocks: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> toks: array<TokInfo>;
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> scale: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read> rope: array<vec2<f32>>;
@group(0) @binding(8) var<storage, read> table: array<u32>;
@group(0) @binding(9) var<storage, read_write> kpool: array<u32>;
@group(0) @binding(10) var<storage, read_write> vpool: array<u32>;
@group(0) @binding(11) var<storage, read_write> qkv: array<f32>;

var<workgroup> sums: array<f32, D * TT>;

@compute @workgroup_size(WG)
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
  let head = wid.x;
  let t0 = wid.z * TT;
  if (t0 >= step.tokens) {
    return;
  }
  let nt = min(TT, step.tokens - t0);
  // RMSNorm factors of the workgroup's tokens
  let inv = rms_inv_from(t0, nt, lid, p.eps);

  let team = lid / TEAM;
  let lane = lid % TEAM;
  let row0 = head * D + team;  // rows row0 + i * NTEAMS, i < RPT
  var acc: array<f32, TR_N>;
  for (var i = 0u; i < TR_N; i++) {
    acc[i] = 0.0;
  }
  for (var c = lane; c < H / 8u; c += TEAM) {
    let s0 = scale[2u * c];
    let s1 = scale[2u * c + 1u];
    var xa: array<vec4<f32>, TT>;
    var xb: array<vec4<f32>, TT>;
    for (var tt = 0u; tt < TT; tt++) {
      let t = t0 + min(tt, nt - 1u);
      xa[tt] = x[t * (H / 4u) + 2u * c] * s0 * inv[tt];
      xb[tt] = x[t * (H / 4u) + 2u * c + 1u] * s1 * inv[tt];
    }
    for (var i = 0u; i < RPT; i++) {
      let wv = w[(row0 + i * NTEAMS) * (H / 8u) + c];
      for (var tt = 0u; tt < TT; tt++) {
        acc[i * TT + tt] += dot8(wv, xa[tt], xb[tt]);
      }
    }
  }
  team_reduce(&acc, lid);
  if (lane == 0u) {
    for (var i = 0u; i < RPT; i++) {
      let r = team + i * NTEAMS;
      for (var tt = 0u; tt < TT; tt++) {
        sums[r * TT + tt] = acc[i * TT + tt] + bias[head * D + r];
      }
    }
  }
  workgroupBarrier();

  // epilogue: a thread per (token, quad q): dims 2q, 2q + 1 and their partners 2q + HALF, 2q + 1 + HALF
  for (var e = lid; e < TT * (D / 4u); e += WG) {
    let tt = e / (D / 4u);
    if (tt >= nt) {
      continue;
    }
    let j = 2u * (e % (D / 4u));
    let a1 = sums[j * TT + tt];
    let a2 = sums[(j + 1u) * TT + tt];
    let b1 = sums[(j + HALF) * TT + tt];
    let b2 = sums[(j + HALF + 1u) * TT + tt];
    rope_kv_store(t0 + tt, toks[t0 + tt], head, j, a1, a2, b1, b2);
  }
}
