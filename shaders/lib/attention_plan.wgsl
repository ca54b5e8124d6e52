// The attention plan the host writes each step for one layer type (sliding or full): a header of
// counts, then work items for the decode kernel (one token each, possibly split over key ranges),
// work items for the prefill kernel (blocks of up to BQ consecutive tokens of one sequence) and
// the combine entries of split decode tokens. Word offsets of each section come in the params.
//   header:  [0] decode items, [1] prefill items, [2] combine entries
//   item:    tok0, ntok, seq, pos0, key0, key1, part, flags   (8 words)
//            keys [key0, key1) of the sequence's cache; part: partial slot for a split item, or
//            NO_PART when the item writes the final output; flags bit 0: the item carries the sink
//   combine: tok, part0, nparts, _                              (4 words)
struct AttnParams {
  nq: u32,
  nkv: u32,
  sliding: u32,     // 1: a query at position p sees keys p - window < j <= p
  window: u32,
  max_blocks: u32,  // page-table row length
  section: u32,     // word offset of this dispatch's section (items or combine entries)
  count_idx: u32,   // header word holding the section's count
  scale: f32,       // 1 / sqrt(D)
}

const NO_PART: u32 = 0xFFFFFFFFu;
const NEG_BIG: f32 = -3.0e38;
