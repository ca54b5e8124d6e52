// The paged KV cache. Each layer has a K pool and a V pool of fixed-size pages; a page holds PAGE
// consecutive positions of one sequence for every kv head: pool[page][nkv][PAGE][D]. Values are f16
// pairs packed in u32 (pack2x16float: element 2i in the low half), or with KV_F32 one f32 (bits) per
// u32. A sequence's page table row maps its logical block (position / PAGE) to a page; sliding and
// full layers have separate tables (sliding layers drop pages that leave the window).
// Needs consts D, PAGE and the table/params bindings of the including kernel.
#if KV_F32
const KV_WORDS: u32 = D;        // u32 words per (position, kv head)
#else
const KV_WORDS: u32 = D / 2u;
#endif

// First u32 word of (position pos, kv head g) in a pool, given pos's page (its page-table entry).
fn kv_word(page: u32, g: u32, nkv: u32, pos: u32) -> u32 {
  return ((page * nkv + g) * PAGE + pos % PAGE) * KV_WORDS;
}
