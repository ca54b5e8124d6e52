// A sampled row's settings and its logits as the samplers see them (sample.wgsl). Needs the bindings `samples`, `logits` and `mask`, and `p.mask_words`.
#include lib/order
#include lib/sample_settings

// This row's settings, read once and made workgroup-uniform (the samplers' loops hold barriers).
var<workgroup> wg_row: SampleRow;
// The same settings for lg() (private variables are never uniform, so control flow uses a local).
var<private> sr: SampleRow;

// Sample row r_idx's settings, as a uniform value; also sets sr.
fn load_sample_row(r_idx: u32, lid: u32) -> SampleRow {
  if (lid == 0u) {
    wg_row = samples[r_idx];
  }
  let rc = workgroupUniformLoad(&wg_row);
  sr = rc;
  return rc;
}

// The value of a masked-out token: below every logit, above LOWEST.
const NEG = -3.4e38;

// The logit of token i in row `row` (its first element), or NEG when the mask rules it out.
fn lg(row: u32, i: u32) -> f32 {
  let v = logits[row + i];
  if (sr.masked != 0u && ((mask[sr.slot * p.mask_words + (i >> 5u)] >> (i & 31u)) & 1u) == 0u) {
    return NEG;
  }
  return v;
}
