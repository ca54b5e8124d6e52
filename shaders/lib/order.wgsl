// Orders of values and (value, index) candidates shared by the argmaxes, the top-k and the sampler.

// An empty candidate's index; it carries LOWEST (WGSL has no infinity literal).
const NONE: u32 = 0xFFFFFFFFu;
const LOWEST: f32 = -0x1.fffffep+127f; // -FLT_MAX

// Monotone map f32 -> u32: a < b  <=>  key(a) < key(b) (for non-NaN values).
fn key(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// (va, ia) ranks before (vb, ib): larger value, then lower index. An empty candidate (index NONE)
// ranks after every real one.
fn better(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  return ia != NONE && (ib == NONE || va > vb || (va == vb && ia < ib));
}
