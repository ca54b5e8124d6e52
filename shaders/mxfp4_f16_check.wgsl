// Test kernel: decodes MXFP4 blocks through lib/mxfp4_f16 (the subgroup-matrix GEMMs' f16 decode
// with the scale folded in) and writes the f16 bit patterns, two to a u32 (element 2i low), for
// the host to compare with the f32 decode. Bits, not f32(f16): a compiler may fold the widening
// of a narrowing away and hide an inexact f16. One thread per block. defines: WG; needs shader-f16.
#include lib/mxfp4_f16

struct Params {
  blocks: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec2<u32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = gid.x + gid.y * nwg.x * WG;
  if (b >= p.blocks) {
    return;
  }
  let v = mxfp4_block_f16(blocks[b], mxfp4_scale_byte(scales[b / 4u], b));
  for (var q = 0u; q < 8u; q++) {
    out[8u * b + q] = vec2<u32>(bitcast<u32>(v[q].xy), bitcast<u32>(v[q].zw));
  }
}
