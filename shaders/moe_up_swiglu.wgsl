// MoE mlp1 + SwiGLU: for token t, slot s (expert e = routing id) and i in [0, I):
//   gate = W1[e][2i]·xn[t] + b1[e][2i], up = W1[e][2i+1]·xn[t] + b1[e][2i+1]
//   h[t][s][i] = swiglu(gate, up, limit)  (lib/swiglu)
// W1 is MXFP4 [E][2I][H/32] blocks (16 B) + scale bytes; rows keep the checkpoint's gate/up
// interleave so one workgroup's consecutive rows hold whole (gate, up) pairs.
// A team of TEAM lanes computes one row, each lane reading whole 16-byte blocks (lane-strided, so a
// team streams the row contiguously); WG/TEAM rows = WG/(2*TEAM) outputs per workgroup.
// Grid: x/y = (output group, slot) linearised, z = token. Expert ids come from `routing` on the GPU,
// or with TOPK (the decode path) from the router logits: every workgroup picks its token's top-k
// itself (lib/topk), and the first of each token writes `routing` for mlp2.
// defines: WG, TEAM (powers of two, TEAM | WG, WG/TEAM even); with TOPK also EPT, KMAX.
#include lib/step
#include lib/mxfp4
#include lib/team_sum
#include lib/swiglu

struct Params {
  h: u32,      // hidden size H (multiple of 32)
  i: u32,      // intermediate size I
  k: u32,      // experts per token
  e: u32,      // experts (ids are clamped to e-1, so a bad routing entry cannot read out of bounds)
  limit: f32,  // swiglu_limit
  e0: u32,     // the weight buffers hold experts [e0, e0 + ec) (one shard); others are left alone
  ec: u32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> xn: array<vec4<f32>>;
#if TOPK
@group(0) @binding(3) var<storage, read> logits: array<f32>;
@group(0) @binding(8) var<storage, read_write> routing: array<u32>;
#else
@group(0) @binding(3) var<storage, read> routing: array<u32>;
#endif
@group(0) @binding(4) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> scales: array<u32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read_write> h: array<f32>;

const OUTS: u32 = NTEAMS / 2u;
#if TOPK
const REDUCE_N: u32 = 1u;
#include lib/topk
#endif

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
  let ng = (p.i + OUTS - 1u) / OUTS;
  let g = wid.x + wid.y * nwg.x;
  let t = wid.z;
  let s = g / ng;
  let i0 = (g % ng) * OUTS;
  if (t >= step.tokens || s >= p.k) {
    return;
  }
  let ts = t * p.k + s;
#if TOPK
  let top = router_topk(t * p.e, p.e, min(p.k, KMAX), lid);
  if (g == 0u && lid < p.k) {
    routing[2u * (t * p.k + lid)] = top.ids[lid];
    routing[2u * (t * p.k + lid) + 1u] = bitcast<u32>(top.w[lid]);
  }
  let eg = min(top.ids[s], p.e - 1u);
#else
  let eg = min(routing[2u * ts], p.e - 1u);
#endif
  // (the routing value is not uniform, so a foreign expert skips the work but not the barriers)
  let mine = eg >= p.e0 && eg < p.e0 + p.ec;
  let e = select(0u, eg - p.e0, mine);
  let kb = p.h / 32u;
  let team = lid / TEAM;
  let lane = lid % TEAM;
  let row = 2u * i0 + team; // row of W1[e]; even = gate, odd = up
  var acc = 0.0;
  if (mine && row < 2u * p.i) {
    let rb = (e * 2u * p.i + row) * kb;
    let xb = t * (p.h / 4u);
    for (var c = lane; c < kb; c += TEAM) {
      let b = rb + c;
      let x = xb + 8u * c;
      let d = mxfp4_block_dot(blocks[b], xn[x], xn[x + 1u], xn[x + 2u], xn[x + 3u],
                              xn[x + 4u], xn[x + 5u], xn[x + 6u], xn[x + 7u]);
      acc += mxfp4_scale(d, mxfp4_scale_byte(scales[b / 4u], b));
    }
  }
  team_sum(acc, lid);
  if (mine && lid < OUTS) {
    let i = i0 + lid;
    if (i < p.i) {
      let bb = e * 2u * p.i + 2u * i;
      h[ts * p.i + i] = swiglu(team_result[2u * lid] + bias[bb], team_result[2u * lid + 1u] + bias[bb + 1u], p.limit);
    }
  }
}
