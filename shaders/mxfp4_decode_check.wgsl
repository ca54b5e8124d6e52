// Test kernel: decodes MXFP4 blocks to f32 through the same lib functions the MoE matmuls use
// (mxfp4_word, then mxfp4_scale on each value as if it were a block's partial sum).
// One thread per u32 of block bytes (8 values). defines: WG.
#include lib/mxfp4

struct Params {
  blocks: u32, // number of 32-value blocks
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = gid.x + gid.y * nwg.x * WG; // word index
  let b = q / 4u;
  if (b >= p.blocks) {
    return;
  }
  let wv = blocks[b];
  let words = array<u32, 4>(wv.x, wv.y, wv.z, wv.w);
  let v = mxfp4_word(words[q % 4u]);
  let s = mxfp4_scale_byte(scales[b / 4u], b);
  out[2u * q] = vec4<f32>(mxfp4_scale(v.lo.x, s), mxfp4_scale(v.lo.y, s), mxfp4_scale(v.lo.z, s), mxfp4_scale(v.lo.w, s));
  out[2u * q + 1u] = vec4<f32>(mxfp4_scale(v.hi.x, s), mxfp4_scale(v.hi.y, s), mxfp4_scale(v.hi.z, s), mxfp4_scale(v.hi.w, s));
}
