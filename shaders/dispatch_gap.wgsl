// Dispatch-gap probe: one thread adds p.add to a word each dispatch. Successive dispatches read
// and write the same storage word, so Dawn puts a barrier between each two: a pass of N of them
// costs N dependent launches and almost no work (src/bench/dispatch-gap.ts).
struct Params {
  add: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> word: array<u32>;

@compute @workgroup_size(1)
fn main() {
  word[0] = word[0] + p.add;
}
