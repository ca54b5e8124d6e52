// After the sampler, per listed row that asks for logprobs: the sampled token's (or, for a prompt
// row, the next prompt token's) log probability
// under the raw logits (logits_process kept the raw value of every token it changed; min-p only
// lowered tokens that cannot have been drawn). One single-thread workgroup per listed row: there
// are few, and the grid then bounds them.
// defines: TOPN.
#include lib/step

struct Params {
  vocab: u32,
}

#include lib/logits_rows

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> proc_rows: array<ProcRow>;
@group(0) @binding(3) var<storage, read> entries: array<Entry>;
@group(0) @binding(4) var<storage, read> logits: array<f32>;
@group(0) @binding(5) var<storage, read> sampled: array<u32>;
@group(0) @binding(6) var<storage, read_write> lp: array<u32>;

@compute @workgroup_size(1)
fn main(@builtin(workgroup_id) wid: vec3<u32>) {
  let r = wid.x;
  let pr = proc_rows[r];
  if (pr.top == NO_LOGPROBS || (pr.given == NO_GIVEN && pr.sample >= step.samples)) {
    return;
  }
  let id = select(pr.given, sampled[min(pr.sample, arrayLength(&sampled) - 1u)], pr.given == NO_GIVEN);
  var raw = logits[pr.row * p.vocab + min(id, p.vocab - 1u)];
  for (var j = 0u; j < pr.n; j++) {
    let e = entries[pr.off + j];
    if (e.id == id) {
      raw = e.raw;
      break;
    }
  }
  let out = r * LP_WORDS;
  lp[out + 1u] = id;
  lp[out + 2u] = bitcast<u32>(raw - bitcast<f32>(lp[out]));
}
