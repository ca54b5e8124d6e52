// The sampler's threshold search (sample.wgsl): the top-k and top-p cuts as the largest key whose
// kept count or mass still reaches what the row asks, over the element sources sample.wgsl defines
// (elems, elem) with its SPLITS.

// Over the elements at or above threshold key lo: their count (by_count), or their mass.
fn kept_sum(src: u32, lo: u32, by_count: bool, m: f32, inv_t: f32, lid: u32) -> f32 {
  var s = 0.0;
  for (var j = lid; j < elems(src); j += WG) {
    let v = elem(src, j);
    if (key(v) >= lo) {
      if (by_count) {
        s += 1.0;
      } else {
        s += exp((v - m) * inv_t);
      }
    }
  }
  return wg_sum(s, lid, p.vocab);
}

// The largest threshold key in [lo, hi] whose kept count (by_count) or mass is at least `need`;
// lo when none is. Each pass splits the range at SPLITS boundaries lo + j w and sums the elements
// between consecutive ones, so a pass over the elements cuts the range SPLITS-fold: 11 passes for
// 32-bit keys, where bisection takes 32.
fn search(src: u32, lo0: u32, hi0: u32, need: f32, by_count: bool, m: f32, inv_t: f32, lid: u32) -> u32 {
  var lo = lo0;
  var hi = hi0;
  while (lo < hi) {
    // SPLITS w > hi - lo: the boundaries reach past hi
    let w = (hi - lo) / SPLITS + 1u;
    var bins: array<f32, SPLITS>;
    for (var b = 0u; b < SPLITS; b++) {
      bins[b] = 0.0;
    }
    for (var j = lid; j < elems(src); j += WG) {
      let v = elem(src, j);
      let k = key(v);
      if (k >= lo) {
        // bin b holds keys in [lo + b w, lo + (b + 1) w); the last also those above
        let b = min((k - lo) / w, SPLITS - 1u);
        bins[b] += select(exp((v - m) * inv_t), 1.0, by_count);
      }
    }
    wg_sum_n(&bins, lid);
    if (lid == 0u) {
      // the kept sum at boundary b is that of bins b and above: the highest boundary within hi
      // holding `need` (else the first) bounds the answer from below, the next one from above
      var kept = 0.0;
      var pick = 0u;
      for (var bb = SPLITS; bb > 0u; bb--) {
        let b = bb - 1u;
        kept += red_result[b];
        if (b * w <= hi - lo && kept >= need) {
          pick = b;
          break;
        }
      }
      let base = lo + pick * w;
      wg_range = vec2<u32>(base, min(hi, base + (w - 1u)));
    }
    let r = workgroupUniformLoad(&wg_range);
    lo = r.x;
    hi = r.y;
  }
  return lo;
}
