// A 32-bit integer hash (lowbias32, Chris Wellons): counter-based random numbers for the sampler
// and for synthetic weights, so a (seed, index) pair always gives the same value.
fn hash(x: u32) -> u32 {
  var h = x;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}
