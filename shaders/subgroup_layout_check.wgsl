// Start-up check of what lib/reduce.wgsl assumes: in a 1D workgroup, subgroup i holds invocations
// [i*sg_size, (i+1)*sg_size) in order. Writes 1 per invocation where that holds.
@group(0) @binding(0) var<storage, read_write> ok: array<u32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(subgroup_invocation_id) sgl: u32,
  @builtin(subgroup_size) sgs: u32,
) {
  let first = subgroupBroadcastFirst(lid / sgs);
  let good = sgl == lid % sgs && first == lid / sgs;
  ok[wid.x * WG + lid] = select(0u, 1u, good);
}
