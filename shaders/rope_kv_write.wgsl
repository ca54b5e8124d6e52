// RoPE (YaRN, half-split pairs j and j + d/2) on the step's q and k heads, and the write of k and v
// into the paged KV cache (lib/rope_kv). qkv is f32 [T][(nq + 2 nkv) d]: q heads, then k heads,
// then v heads. Each token has its own position and sequence (TokInfo), so one dispatch serves
// tokens of many sequences. One invocation per (token, head, quad i): dims 2i, 2i+1 and their
// rotation partners 2i+d/2, 2i+1+d/2, so each packed f16 pair is written by one invocation.
// q heads are rotated in place; k heads are rotated and stored; v heads are stored.
// defines: WG, D, PAGE; flag KV_F32.
#include lib/step
#include lib/rope_kv

struct Params {
  nq: u32,
  nkv: u32,
  max_blocks: u32,  // page-table row length
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> toks: array<TokInfo>;
@group(0) @binding(3) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(4) var<storage, read> rope: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> table: array<u32>;
@group(0) @binding(6) var<storage, read_write> kpool: array<u32>;
@group(0) @binding(7) var<storage, read_write> vpool: array<u32>;

const QUADS: u32 = D / 4u;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let heads = p.nq + 2u * p.nkv;
  let per_token = heads * QUADS;
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= step.tokens * per_token) {
    return;
  }
  let t = i / per_token;
  let head = (i % per_token) / QUADS;
  let j = 2u * (i % QUADS);  // dims j, j + 1 and j + HALF, j + 1 + HALF
  let tok = toks[t];
  let src = (t * heads + head) * D + j;
  let a1 = qkv[src];
  let a2 = qkv[src + 1u];
  let b1 = qkv[src + HALF];
  let b2 = qkv[src + HALF + 1u];
  rope_kv_store(t, tok, head, j, a1, a2, b1, b2);
}
