// gpt-oss SwiGLU of one (gate, up) pair of mlp1 outputs (bias added):
//   min(gate, limit) · sigmoid(1.702 · min(gate, limit)) · (clamp(up, -limit, limit) + 1)
const SWIGLU_ALPHA: f32 = 1.702;

fn swiglu(gate_in: f32, up_in: f32, limit: f32) -> f32 {
  let gate = min(gate_in, limit);
  let up = clamp(up_in, -limit, limit);
  // sigmoid without overflow: z = exp(-|a|) <= 1.
  let z = exp(-SWIGLU_ALPHA * abs(gate));
  let sig = select(z / (1.0 + z), 1.0 / (1.0 + z), gate >= 0.0);
  return gate * sig * (up + 1.0);
}
