// OpenAI request parameters this server cannot honour answer a 400 that says why, instead of being
// silently ignored; and the small normalisations the three generation routes share.
import { invalidRequest, unsupported } from './errors.js';
import { checkToolSchema } from './request-checks.js';

const NO_LOGITS = 'the engine samples on the GPU and reads back only the sampled token id, so per-token log probabilities are not available';

export interface CommonParams {
  n?: number | null;
  min_p?: number | null;
  repetition_penalty?: number | null;
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
  if (b.min_p !== undefined && b.min_p !== null && b.min_p !== 0) throw unsupported('min_p', `min_p=${b.min_p}: min-p sampling is not implemented by the sampler yet; send 0 or leave it out`);
  if (b.repetition_penalty !== undefined && b.repetition_penalty !== null && b.repetition_penalty !== 1) {
    throw unsupported('repetition_penalty', `repetition_penalty=${b.repetition_penalty}: repetition penalties are not implemented by the sampler yet; send 1 or leave it out`);
  }
}

/**
 * Responses built-in tools that need a browser, a sandbox or a remote service this server does
 * not run (vLLM drops them the same way when it has no tool server). Codex sends web_search.
 */
export const BUILTIN_TOOL_TYPES: ReadonlySet<string> = new Set([
  'web_search',
  'web_search_preview',
  'web_search_preview_2025_03_11',
  'web_search_2025_08_26',
  'file_search',
  'code_interpreter',
  'computer_use',
  'computer_use_preview',
  'mcp',
  'image_generation',
  'local_shell',
]);

/** The tools without the built-in ones (each type named through `dropped`). */
export function dropBuiltinTools<T extends { type: string }>(tools: readonly T[], dropped: (type: string) => void): T[] {
  return tools.filter((t) => {
    if (!BUILTIN_TOOL_TYPES.has(t.type)) return true;
    dropped(t.type);
    return false;
  });
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
    if (typeof type === 'string' && BUILTIN_TOOL_TYPES.has(type)) {
      throw unsupported('tool_choice', `{"type": ${JSON.stringify(type)}} forces a built-in tool, which this server does not run; only function tools can be forced`);
    }
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
