// Shared by attention.wgsl and attention_combine.wgsl: the parameters, the row blocks and the
// split plan (attention.ts mirrors attention_splits in TypeScript). Needs `step: Step`, `p: AttnParams`
// and the consts ROWS (rows per block) and TILE (keys per tile).
//
// Rows: for kv head g, row r = t * G + hh is (token t, query head h = g * G + hh), G = nq / nkv.
// Block b of kv head g holds rows [b * ROWS, (b + 1) * ROWS) ∩ [0, T * G): one workgroup's rows,
// all reading kv head g. Its key range is the union of its rows' visible keys.
// Splits: S splits per block (S = 1 on sliding layers and for large T); split s takes keys
// [lo + s * C, lo + (s + 1) * C) of the block's range [lo, hi), C a multiple of TILE.
struct AttnParams {
  nq: u32,
  nkv: u32,
  cap: u32,         // cache slots per kv head; key j lives in slot j % cap
  sliding: u32,     // 1: a query at position p sees keys p - window < j <= p
  window: u32,
  stride: u32,      // floats per qkv row: (nq + 2 nkv) * D
  target_wgs: u32,  // workgroups the split plan aims for
  max_splits: u32,  // 1 on sliding layers
  scale: f32,       // 1 / sqrt(D)
}

const NEG_BIG: f32 = -3.0e38;

fn att_group() -> u32 {
  return p.nq / p.nkv;
}

// Row blocks per kv head.
fn att_blocks(tokens: u32) -> u32 {
  return (tokens * att_group() + ROWS - 1u) / ROWS;
}

// Splits per block for a forward of `tokens` tokens.
fn att_splits(tokens: u32) -> u32 {
  let wgs = p.nkv * att_blocks(tokens);
  return clamp((p.target_wgs + wgs - 1u) / wgs, 1u, p.max_splits);
}

// First key visible from the query at absolute position pos.
fn att_first_key(pos: u32) -> u32 {
  if (p.sliding != 0u && pos + 1u > p.window) {
    return pos + 1u - p.window;
  }
  return 0u;
}

// Keys [x, y) that block b needs.
fn att_block_keys(b: u32, tokens: u32) -> vec2<u32> {
  let g = att_group();
  let r0 = b * ROWS;
  let r1 = min(r0 + ROWS, tokens * g) - 1u;
  return vec2<u32>(att_first_key(step.pos0 + r0 / g), step.pos0 + r1 / g + 1u);
}

// Keys per split: the range divided into `splits` pieces, rounded up to whole tiles.
fn att_split_len(n: u32, splits: u32) -> u32 {
  let c = (n + splits - 1u) / splits;
  return ((c + TILE - 1u) / TILE) * TILE;
}
