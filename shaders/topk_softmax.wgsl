// Router top-k then softmax over the k winners only (gpt-oss routing), one workgroup per token.
// logits f32 [T][E] -> routing u32 [T][k][2] = (expert id, bitcast<u32>(weight)) (lib/topk).
// defines: WG (a power of two), EPT (experts per thread, <= 32, E <= WG*EPT), KMAX (k <= KMAX).
#include lib/step

struct Params {
  e: u32, // experts
  k: u32, // experts per token
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read_write> routing: array<u32>;

const REDUCE_N: u32 = 1u;
#include lib/topk

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
#if SUBGROUPS
  @builtin(subgroup_invocation_id) sgl: u32,
  @builtin(subgroup_size) sgs: u32,
#endif
) {
#if SUBGROUPS
  sg_lane = sgl;
  sg_size = sgs;
#endif
  let t = wid.x + wid.y * nwg.x;
  if (t >= step.tokens) {
    return;
  }
  let K = min(p.k, KMAX);
  let top = router_topk(t * p.e, p.e, K, lid);
  if (lid < K) {
    let o = (t * p.k + lid) * 2u;
    routing[o] = top.ids[lid];
    routing[o + 1u] = bitcast<u32>(top.w[lid]);
  }
}
