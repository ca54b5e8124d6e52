// x[t] = bf16 embedding row of token t's id, widened to f32. One workgroup per token. The id is a
// literal or, for a decode token, the id the sampler last wrote for the token's sequence slot.
// The table may be one shard of the embedding (rows [first, first + count)): tokens whose id is
// elsewhere are left to another shard's dispatch.
// defines: WG, H.
#include lib/bf16
#include lib/step

// this table's rows of the embedding
struct Shard {
  first: u32,
  count: u32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> toks: array<TokInfo>;
@group(0) @binding(2) var<storage, read> last_ids: array<u32>;
@group(0) @binding(3) var<storage, read> table: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<uniform> shard: Shard;
#if ARGMAX
// the unembedding's greedy picks of this step start from nothing (zero loses to every value)
@group(0) @binding(6) var<storage, read_write> argmax: array<vec2<u32>>;
#endif

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = wid.x + wid.y * nwg.x;
#if ARGMAX
  if (t == 0u) {
    for (var r = lid; r < step.rows; r += WG) {
      argmax[r] = vec2<u32>(0u);
    }
  }
#endif
  if (t >= step.tokens) {
    return;
  }
  var id = toks[t].id;
  if ((id & SAMPLED_ID) != 0u) {
    id = last_ids[id & ~SAMPLED_ID];
  }
  if (id < shard.first || id >= shard.first + shard.count) {
    return;
  }
  let row = (id - shard.first) * (H / 2u);
  for (var i = lid; i < H / 2u; i += WG) {
    let w = table[row + i];
    x[t * H + 2u * i] = bf16_lo(w);
    x[t * H + 2u * i + 1u] = bf16_hi(w);
  }
}
