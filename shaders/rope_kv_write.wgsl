// RoPE (YaRN, half-split pairs j and j + d/2) on the chunk's q and k heads, and the KV-cache write.
// qkv is f32 [T][(nq + 2 nkv) d]: q heads, then k heads, then v heads. One invocation per
// (token t, head, pair j): q heads are rotated in place; k heads are rotated and written to
// kcache; v heads are copied to vcache. Caches are f32 [nkv][cap][d]; position p goes to slot
// p % cap. The rope table holds (conc·cos, conc·sin) per (position, j), computed in float64.
// defines: WG.
#include lib/step

struct Params {
  nq: u32,
  nkv: u32,
  d: u32,    // head dim, even
  cap: u32,  // cache slots per kv head
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> rope: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> kcache: array<f32>;
@group(0) @binding(5) var<storage, read_write> vcache: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let half = p.d / 2u;
  let heads = p.nq + 2u * p.nkv;
  let per_token = heads * half;
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= step.tokens * per_token) {
    return;
  }
  let t = i / per_token;
  let head = (i % per_token) / half;
  let j = i % half;
  let pos = step.pos0 + t;
  let src = (t * heads + head) * p.d + j;
  let x1 = qkv[src];
  let x2 = qkv[src + half];
  if (head >= p.nq + p.nkv) {
    let dst = ((head - p.nq - p.nkv) * p.cap + pos % p.cap) * p.d + j;
    vcache[dst] = x1;
    vcache[dst + half] = x2;
    return;
  }
  let cs = rope[pos * half + j];
  let y1 = x1 * cs.x - x2 * cs.y;
  let y2 = x2 * cs.x + x1 * cs.y;
  if (head < p.nq) {
    qkv[src] = y1;
    qkv[src + half] = y2;
  } else {
    let dst = ((head - p.nq) * p.cap + pos % p.cap) * p.d + j;
    kcache[dst] = y1;
    kcache[dst + half] = y2;
  }
}
