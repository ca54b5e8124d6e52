// The interface of the dense bf16 matmuls (matmul_bf16, matmul_tiled):
//   y[t][n0 + n] = sum_k x[t][k] W[n][k] (+ bias[n]) (+ y[t][n0 + n] with ACCUMULATE: residual add in place)
// W is bf16 row-major [N][K] (pairs packed in u32), possibly rows [n0, n0 + N) of a matrix of ny rows.
// flags: BIAS, ACCUMULATE, OUT_ROWS (x holds the step's logits rows instead of all its tokens).
#include lib/step

struct Params {
  k: u32,   // input size
  n: u32,   // output rows (of this weight buffer)
  n0: u32,  // column of y where they go (a shard of a larger matrix: the unembedding)
  ny: u32,  // y's row length
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> w: array<vec4<u32>>;
#if BIAS
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
#else
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
#endif

// Rows of x this step: its logits rows (OUT_ROWS) or its tokens.
fn dense_rows() -> u32 {
#if OUT_ROWS
  return step.rows;
#else
  return step.tokens;
#endif
}

// Writes output (row t of x, row n of W): the dot product, plus bias and y as the flags say.
fn dense_out(t: u32, n: u32, dot: f32) {
  let o = t * p.ny + p.n0 + n;
  var v = dot;
#if BIAS
  v += bias[n];
#endif
#if ACCUMULATE
  v += y[o];
#endif
  y[o] = v;
}
