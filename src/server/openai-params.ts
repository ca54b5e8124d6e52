// OpenAI request parameters this server cannot honour answer a 400 that says why, instead of being
// silently ignored (logits processing and logprobs: ./logprobs.ts; n: ./generation.ts); and the
// small normalisations the three generation routes share.
import { invalidRequest, unsupported } from './errors.js';
import { checkToolSchema } from './request-checks.js';

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
