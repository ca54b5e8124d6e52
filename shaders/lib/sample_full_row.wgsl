// The sampler's whole-row source (sample.wgsl), for rows its candidates cannot decide: element i
// is token i's logit (lg), and the draw's segments are WG contiguous ranges of ids, one per thread.
// Needs what lib/sample_row needs, `p.vocab`, const WG.

fn full_row_base() -> u32 {
  return sr.row * p.vocab;
}

// Thread seg's ids [x, y).
fn full_segment(seg: u32) -> vec2<u32> {
  let per = (p.vocab + WG - 1u) / WG;
  let b0 = min(seg * per, p.vocab);
  return vec2<u32>(b0, min(b0 + per, p.vocab));
}

// The kept mass of segment seg at threshold lo, in id order.
fn full_seg_mass(seg: u32, lo: u32, m: f32, inv_t: f32) -> f32 {
  let b = full_segment(seg);
  var s = 0.0;
  for (var i = b.x; i < b.y; i++) {
    let v = lg(full_row_base(), i);
    if (key(v) >= lo) {
      s += exp((v - m) * inv_t);
    }
  }
  return s;
}

// The first kept id of segment seg after `after` (NONE: from its start), with its value's bits;
// NONE when there is none.
fn full_seg_next(seg: u32, lo: u32, after: u32) -> vec2<u32> {
  let b = full_segment(seg);
  for (var i = select(after + 1u, b.x, after == NONE); i < b.y; i++) {
    let v = lg(full_row_base(), i);
    if (key(v) >= lo) {
      return vec2<u32>(i, bitcast<u32>(v));
    }
  }
  return vec2<u32>(NONE, 0u);
}
