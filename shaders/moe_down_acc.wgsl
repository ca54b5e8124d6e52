// MoE mlp2 + weighted combine + residual add, in place:
//   x[t][r] += sum_s w_s·(W2[e_s][r]·h[t][s] + b2[e_s][r])      for r in [0, H)
// W2 is MXFP4 [E][H][I/32] blocks (16 B) + scale bytes. One workgroup owns ROWS output rows of one
// token for all k slots (no float atomics). Each row gets SPLIT teams of TEAM lanes; team j of a row
// takes slots j, j+SPLIT, ... so decode (T = 1, few rows) still fills the machine.
// Grid: x/y = row group linearised, z = token.
// defines: WG, TEAM, SPLIT (powers of two, TEAM*SPLIT | WG).
#include lib/step
#include lib/mxfp4
#include lib/team_sum

struct Params {
  h: u32, // hidden size H
  i: u32, // intermediate size I (multiple of 32)
  k: u32, // experts per token
  e: u32, // experts (ids are clamped to e-1)
  e0: u32, // the weight buffers hold experts [e0, e0 + ec) (one shard): only their slots are added
  ec: u32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> hin: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> routing: array<u32>;
@group(0) @binding(4) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> scales: array<u32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read_write> x: array<f32>;

const ROWS: u32 = NTEAMS / SPLIT;

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
  let r0 = (wid.x + wid.y * nwg.x) * ROWS;
  let t = wid.z;
  if (t >= step.tokens || r0 >= p.h) {
    return;
  }
  let kb = p.i / 32u;
  let team = lid / TEAM;
  let lane = lid % TEAM;
  let r = r0 + team / SPLIT;
  var acc = 0.0;
  if (r < p.h) {
    for (var s = team % SPLIT; s < p.k; s += SPLIT) {
      let ts = t * p.k + s;
      let eg = min(routing[2u * ts], p.e - 1u);
      if (eg < p.e0 || eg >= p.e0 + p.ec) {
        continue;
      }
      let e = eg - p.e0;
      let w = bitcast<f32>(routing[2u * ts + 1u]);
      let rb = (e * p.h + r) * kb;
      let hb = ts * (p.i / 4u);
      var part = 0.0;
      for (var c = lane; c < kb; c += TEAM) {
        let b = rb + c;
        let v = hb + 8u * c;
        let d = mxfp4_block_dot(blocks[b], hin[v], hin[v + 1u], hin[v + 2u], hin[v + 3u],
                                hin[v + 4u], hin[v + 5u], hin[v + 6u], hin[v + 7u]);
        part += mxfp4_scale(d, mxfp4_scale_byte(scales[b / 4u], b));
      }
      acc += w * part;
    }
  }
  team_sum(acc, lid);
  if (lid < ROWS) {
    let rr = r0 + lid;
    if (rr < p.h) {
      var y = 0.0;
      for (var j = 0u; j < SPLIT; j++) {
        y += team_result[lid * SPLIT + j];
      }
      for (var s = 0u; s < p.k; s++) {
        let ts = t * p.k + s;
        let eg = min(routing[2u * ts], p.e - 1u);
        if (eg >= p.e0 && eg < p.e0 + p.ec) {
          y += bitcast<f32>(routing[2u * ts + 1u]) * bias[(eg - p.e0) * p.h + rr];
        }
      }
      x[t * p.h + rr] += y;
    }
  }
}
