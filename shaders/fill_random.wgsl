// Fills a weight buffer with reproducible random data on the GPU (synthetic models: no file, no
// upload). Each u32 word is a pure function of (seed, word index).
// kind 0: bf16 pairs ~ N(mean, sigma) (sum of four uniforms); kind 1: uniform random bytes (MXFP4
// codes); kind 2: bytes in [lo, lo + span) (E8M0 scales); kind 3: f32 ~ N(mean, sigma).
#include lib/hash

struct Params {
  words: u32,
  seed: u32,
  kind: u32,
  lo: u32,
  span: u32,
  mean: f32,
  sigma: f32,
  first: u32,  // word offset of this buffer in the whole tensor (a shard of it)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

fn normal(h: u32) -> f32 {
  // Irwin-Hall with four 8-bit uniforms: mean 2, variance 4/12 (close enough to a Gaussian here)
  let s = f32(h & 0xffu) + f32((h >> 8u) & 0xffu) + f32((h >> 16u) & 0xffu) + f32(h >> 24u);
  return (s / 255.0 - 2.0) * 1.7320508;
}

fn bf16_bits(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.words) {
    return;
  }
  let h0 = hash(p.seed ^ hash(p.first + i));
  let h1 = hash(h0 ^ 0x9e3779b9u);
  switch p.kind {
    case 0u: {
      let a = bf16_bits(p.mean + p.sigma * normal(h0));
      let b = bf16_bits(p.mean + p.sigma * normal(h1));
      out[i] = a | (b << 16u);
    }
    case 1u: {
      out[i] = h0;
    }
    case 2u: {
      var w = 0u;
      for (var k = 0u; k < 4u; k++) {
        w |= (p.lo + ((h0 >> (8u * k)) & 0xffu) % p.span) << (8u * k);
      }
      out[i] = w;
    }
    default: {
      out[i] = bitcast<u32>(p.mean + p.sigma * normal(h0));
    }
  }
}
