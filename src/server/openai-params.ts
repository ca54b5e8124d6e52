// OpenAI request parameters this server cannot honour answer a 400 that says why, instead of being
// silently ignored; and the small normalisations the three generation routes share.
import { invalidRequest, unsupported } from './errors.js';
import { checkToolSchema } from './request-checks.js';

const NO_LOGITS = 'the engine samples on the GPU and reads back only the sampled token id, so per-token log probabilities are not available';

export interface CommonParams {
  n?: number | null;
  logprobs?: boolean | number | null;
  top_logprobs?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, unknown> | null;
}

export function rejectUnsupported(b: CommonParams): void {
  if (b.n !== undefined && b.n !== null && b.n !== 1) throw unsupported('n', 'only n=1 is supported: the engine generates one sequence per request');
  if (b.logprobs === true || (typeof b.logprobs === 'number' && b.logprobs > 0)) throw unsupported('logprobs', NO_LOGITS);
  if (b.top_logprobs !== undefined && b.top_logprobs !== null && b.top_logprobs > 0) throw unsupported('top_logprobs', NO_LOGITS);
  for (const p of ['presence_penalty', 'frequency_penalty'] as const) {
    if (b[p] !== undefined && b[p] !== null && b[p] !== 0) throw unsupported(p, 'penalties are not implemented by the sampler; send 0 or leave it out');
  }
  if (b.logit_bias && Object.keys(b.logit_bias).length > 0) throw unsupported('logit_bias', 'logit biases are not implemented by the sampler');
}

export function stopList(stop: string | string[] | null | undefined): string[] {
  if (stop === undefined || stop === null) return [];
  return typeof stop === 'string' ? [stop] : stop;
}

/**
 * `auto` and `none`; `required` and a named function are forced by constrained decoding
 * (constraints.ts checks that the named function exists). Other tool kinds cannot be forced.
 */
export function checkToolChoice(choice: unknown): void {
  if (choice === undefined || choice === null || choice === 'auto' || choice === 'none' || choice === 'required') return;
  if (typeof choice === 'object' && !Array.isArray(choice)) {
    const type = (choice as Record<string, unknown>)['type'];
    if (type === 'function') return;
    if (typeof type === 'string' && type !== '') {
      throw unsupported('tool_choice', `only function tools can be forced; {"type": ${JSON.stringify(type)}} is not supported`);
    }
  }
  throw invalidRequest('tool_choice must be "none", "auto", "required" or an object naming a function', 'tool_choice');
}

/** Checks each tool's parameters schema; returns the declared names (null when tools are off). */
export function functionNames(tools: Array<{ name: string; parameters?: unknown }>, toolChoice: unknown, paramOf: (i: number) => string): Set<string> | null {
  tools.forEach((t, i) => {
    if (t.parameters !== undefined && t.parameters !== null) checkToolSchema(t.parameters, paramOf(i));
  });
  if (tools.length === 0 || toolChoice === 'none') return null;
  return new Set(tools.map((t) => t.name));
}
