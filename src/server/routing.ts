// `model: "auto"`: a deterministic rule picks the small or the large model for each request from
// what the request asks for. The first rule that holds sends it to the large model, in this
// order: reasoning effort, tools, a prompt that does not fit the small model's context, a long
// prompt, a complexity score over the last user message; otherwise the small model takes it.
// When the chosen model's queue is full and the other's is not, the other takes it (fallback).
import { ConfigFileError } from './config-files.js';

export interface RoutingConfig {
  /** The model id that routes. */
  name: string;
  small: string;
  large: string;
  /** Reasoning efforts that go to the large model. */
  reasoningEffort: string[];
  /** Any function tools in the request go to the large model. */
  tools: boolean;
  /** Prompts of at least this many tokens go to the large model (null: off). */
  promptTokens: number | null;
  /** A complexity score of at least this goes to the large model (null: off). */
  complexity: number | null;
  /** Score: +1 per keyword present, +codeBlock when the text has a ``` block, +1 per wordsPerPoint words. */
  keywords: string[];
  codeBlock: number;
  wordsPerPoint: number;
  /** Take the other model when the chosen one's queue is full. */
  fallback: boolean;
}

export const DEFAULT_KEYWORDS = [
  'prove', 'proof', 'derive', 'theorem', 'lemma', 'algorithm', 'complexity', 'optimize', 'debug', 'refactor',
  'architecture', 'trade-off', 'step by step', 'rigorous', 'analyze',
];

/** The rule when no --routing file is given: the first two models as small and large. */
export function defaultRouting(small: string, large: string): RoutingConfig {
  return {
    name: 'auto',
    small,
    large,
    reasoningEffort: ['high'],
    tools: true,
    promptTokens: 4096,
    complexity: 3,
    keywords: DEFAULT_KEYWORDS,
    codeBlock: 2,
    wordsPerPoint: 150,
    fallback: true,
  };
}

/** What the rule looks at. */
export interface RouteFeatures {
  effort: string | null;
  tools: number;
  promptTokens: number;
  /** Prompt tokens plus the completion tokens asked for (at least 1). */
  neededContext: number;
  smallContext: number;
  lastUserText: string;
}

export type RouteReason = 'reasoning_effort' | 'tools' | 'context' | 'prompt_tokens' | 'complexity' | 'default';

export function complexityScore(text: string, c: Pick<RoutingConfig, 'keywords' | 'codeBlock' | 'wordsPerPoint'>): number {
  const lower = text.toLowerCase();
  const keywords = c.keywords.filter((k) => lower.includes(k.toLowerCase())).length;
  const code = text.includes('```') ? c.codeBlock : 0;
  const words = text.split(/\s+/).filter(Boolean).length;
  return keywords + code + Math.floor(words / c.wordsPerPoint);
}

export function route(c: RoutingConfig, f: RouteFeatures): { size: 'small' | 'large'; reason: RouteReason } {
  const large = (reason: RouteReason) => ({ size: 'large' as const, reason });
  if (f.effort !== null && c.reasoningEffort.includes(f.effort)) return large('reasoning_effort');
  if (c.tools && f.tools > 0) return large('tools');
  if (f.neededContext > f.smallContext) return large('context');
  if (c.promptTokens !== null && f.promptTokens >= c.promptTokens) return large('prompt_tokens');
  if (c.complexity !== null && complexityScore(f.lastUserText, c) >= c.complexity) return large('complexity');
  return { size: 'small', reason: 'default' };
}

const FIELDS: Record<string, (v: unknown) => boolean> = {
  name: (v) => typeof v === 'string' && /^[\w.:-]{1,64}$/.test(v),
  small: (v) => typeof v === 'string',
  large: (v) => typeof v === 'string',
  reasoning_effort: (v) => Array.isArray(v) && v.every((x) => ['minimal', 'low', 'medium', 'high'].includes(x as string)),
  tools: (v) => typeof v === 'boolean',
  prompt_tokens: (v) => v === null || (Number.isInteger(v) && (v as number) > 0),
  complexity: (v) => v === null || (typeof v === 'number' && v > 0),
  keywords: (v) => Array.isArray(v) && v.every((x) => typeof x === 'string' && x.trim() !== ''),
  code_block: (v) => typeof v === 'number' && v >= 0,
  words_per_point: (v) => Number.isInteger(v) && (v as number) > 0,
  fallback: (v) => typeof v === 'boolean',
};

const WANT: Record<string, string> = {
  name: 'a model id (letters, digits, _ . : -)',
  small: 'a served model name',
  large: 'a served model name',
  reasoning_effort: 'an array of "minimal", "low", "medium", "high"',
  tools: 'true or false',
  prompt_tokens: 'a positive whole number or null',
  complexity: 'a positive number or null',
  keywords: 'an array of non-empty strings',
  code_block: 'a number >= 0',
  words_per_point: 'a positive whole number',
  fallback: 'true or false',
};

/**
 * The --routing file: a JSON object with any of the keys of FIELDS (snake_case); the rest
 * default as defaultRouting(first model, second model) does.
 */
export function parseRoutingConfig(text: string, source: string, models: readonly string[]): RoutingConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigFileError(`${source}: not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigFileError(`${source}: expected a JSON object`);
  for (const [k, v] of Object.entries(raw)) {
    if (!(k in FIELDS)) throw new ConfigFileError(`${source}: unknown key "${k}" (known: ${Object.keys(FIELDS).join(', ')})`);
    if (!FIELDS[k]!(v)) throw new ConfigFileError(`${source}: "${k}" must be ${WANT[k]}`);
  }
  const r = raw as Record<string, unknown>;
  const base = defaultRouting(models[0]!, models[1]!);
  const c: RoutingConfig = {
    name: (r['name'] as string) ?? base.name,
    small: (r['small'] as string) ?? base.small,
    large: (r['large'] as string) ?? base.large,
    reasoningEffort: (r['reasoning_effort'] as string[]) ?? base.reasoningEffort,
    tools: (r['tools'] as boolean) ?? base.tools,
    promptTokens: r['prompt_tokens'] !== undefined ? (r['prompt_tokens'] as number | null) : base.promptTokens,
    complexity: r['complexity'] !== undefined ? (r['complexity'] as number | null) : base.complexity,
    keywords: (r['keywords'] as string[]) ?? base.keywords,
    codeBlock: (r['code_block'] as number) ?? base.codeBlock,
    wordsPerPoint: (r['words_per_point'] as number) ?? base.wordsPerPoint,
    fallback: (r['fallback'] as boolean) ?? base.fallback,
  };
  for (const k of ['small', 'large'] as const) {
    if (!models.includes(c[k])) throw new ConfigFileError(`${source}: "${k}" is "${c[k]}", not a served model (${models.join(', ')})`);
  }
  if (c.small === c.large) throw new ConfigFileError(`${source}: "small" and "large" are the same model`);
  if (models.includes(c.name)) throw new ConfigFileError(`${source}: "name" is "${c.name}", already a served model's name`);
  return c;
}
