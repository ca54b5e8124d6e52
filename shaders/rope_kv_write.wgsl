// RoPE (YaRN, half-split pairs j and j + d/2) on the step's q and k heads, and the write of k and v
// into the paged KV cache (lib/kv_pages). qkv is f32 [T][(nq + 2 nkv) d]: q heads, then k heads,
// then v heads. Each token has its own position and sequence (TokInfo), so one dispatch serves
// tokens of many sequences. One invocation per (token, head, quad i): dims 2i, 2i+1 and their
// rotation partners 2i+d/2, 2i+1+d/2, so each packed f16 pair is written by one invocation.
// q heads are rotated in place; k heads are rotated and stored; v heads are stored. The rope table
// holds (conc·cos, conc·sin) per (position, j), computed in float64.
// defines: WG, D, PAGE; flag KV_F32.
#include lib/step
#include lib/kv_pages

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

const HALF: u32 = D / 2u;
const QUADS: u32 = D / 4u;

// Stores dims (dim, dim + 1) of a head row whose first word is `w0` (dim even).
fn store(is_k: bool, w0: u32, dim: u32, a: f32, b: f32) {
#if KV_F32
  let w = w0 + dim;
  if (is_k) {
    kpool[w] = bitcast<u32>(a);
    kpool[w + 1u] = bitcast<u32>(b);
  } else {
    vpool[w] = bitcast<u32>(a);
    vpool[w + 1u] = bitcast<u32>(b);
  }
#else
  let w = w0 + dim / 2u;
  if (is_k) {
    kpool[w] = pack2x16float(vec2<f32>(a, b));
  } else {
    vpool[w] = pack2x16float(vec2<f32>(a, b));
  }
#endif
}

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
  if (head >= p.nq + p.nkv) {
    let g = head - p.nq - p.nkv;
    let w = kv_word(table[tok.seq * p.max_blocks + tok.pos / PAGE], g, p.nkv, tok.pos);
    store(false, w, j, a1, a2);
    store(false, w, j + HALF, b1, b2);
    return;
  }
  let c1 = rope[tok.pos * HALF + j];
  let c2 = rope[tok.pos * HALF + j + 1u];
  let y1 = vec2<f32>(a1 * c1.x - b1 * c1.y, a2 * c2.x - b2 * c2.y);  // dims j, j + 1
  let y2 = vec2<f32>(b1 * c1.x + a1 * c1.y, b2 * c2.x + a2 * c2.y);  // dims j + HALF, j + 1 + HALF
  if (head < p.nq) {
    qkv[src] = y1.x;
    qkv[src + 1u] = y1.y;
    qkv[src + HALF] = y2.x;
    qkv[src + HALF + 1u] = y2.y;
  } else {
    let g = head - p.nq;
    let w = kv_word(table[tok.seq * p.max_blocks + tok.pos / PAGE], g, p.nkv, tok.pos);
    store(true, w, j, y1.x, y1.y);
    store(true, w, j + HALF, y2.x, y2.y);
  }
}
