// The attention input's last stage, shared by rope_kv_write (prefill) and qkv_rope (decode): YaRN
// RoPE on q and k heads (half-split pairs j and j + D/2; the rope table holds (conc·cos, conc·sin)
// per (position, j), computed in float64) and the write of k and v into the paged KV cache
// (lib/kv_pages). q heads go to qkv, f32 [T][(nq + 2 nkv) D]: q heads, then k heads, then v heads.
// Needs consts D, PAGE; `p.nq`, `p.nkv`, `p.max_blocks`; bindings rope, table, qkv (read_write),
// kpool and vpool (read_write).
#include lib/step
#include lib/kv_pages

const HALF: u32 = D / 2u;

// Stores dims (dim, dim + 1) of a K (is_k) or V head row whose first word is `w0` (dim even).
fn kv_store(is_k: bool, w0: u32, dim: u32, a: f32, b: f32) {
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

// Head `head` of token t (tok its TokInfo), dims j, j + 1 (a1, a2) and their rotation partners
// j + HALF, j + 1 + HALF (b1, b2), j even: q heads rotated into qkv, k heads rotated and stored,
// v heads stored. One caller per packed f16 pair, so no two threads write one word.
fn rope_kv_store(t: u32, tok: TokInfo, head: u32, j: u32, a1: f32, a2: f32, b1: f32, b2: f32) {
  if (head >= p.nq + p.nkv) {
    let g = head - p.nq - p.nkv;
    let w = kv_word(table[tok.seq * p.max_blocks + tok.pos / PAGE], g, p.nkv, tok.pos);
    kv_store(false, w, j, a1, a2);
    kv_store(false, w, j + HALF, b1, b2);
    return;
  }
  let c1 = rope[tok.pos * HALF + j];
  let c2 = rope[tok.pos * HALF + j + 1u];
  let y1 = vec2<f32>(a1 * c1.x - b1 * c1.y, a2 * c2.x - b2 * c2.y);  // dims j, j + 1
  let y2 = vec2<f32>(b1 * c1.x + a1 * c1.y, b2 * c2.x + a2 * c2.y);  // dims j + HALF, j + 1 + HALF
  if (head < p.nq) {
    let o = (t * (p.nq + 2u * p.nkv) + head) * D + j;
    qkv[o] = y1.x;
    qkv[o + 1u] = y1.y;
    qkv[o + HALF] = y2.x;
    qkv[o + HALF + 1u] = y2.y;
  } else {
    let g = head - p.nq;
    let w = kv_word(table[tok.seq * p.max_blocks + tok.pos / PAGE], g, p.nkv, tok.pos);
    kv_store(true, w, j, y1.x, y1.y);
    kv_store(true, w, j + HALF, y2.x, y2.y);
  }
}
