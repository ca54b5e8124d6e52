// Structured output for the server: response_format / text.format and tool_choice "required" or a
// named function become a per-request TokenConstraint (src/constrain) that the engine applies as a
// token mask at every step. Reasoning stays free (at most `maxReasoningTokens` tokens), then the
// final message (or a commentary tool call) is forced to be JSON valid against the schema. The
// output is ordinary harmony, so the stream parser and SSE paths read it as any other.
import {
  createJsonSchemaConstraint,
  createToolCallConstraint,
  FIRST_SPECIAL_ID,
  JSON_OBJECT_SCHEMA,
  UnsupportedSchemaError,
  validateSupportedSchema,
  VocabIndex,
  type ConstraintBounds,
  type TokenConstraint,
  type TokenSource,
} from '../constrain/index.js';
import { ApiError, invalidRequest } from './errors.js';

export const DEFAULT_CONSTRAINED_REASONING_TOKENS = 1024;

export interface ConstraintSettings {
  /** Reasoning tokens allowed before the forced answer (0: none). */
  maxReasoningTokens: number;
  /** Bounds on the generated JSON (string lengths, items, whitespace…); src/constrain defaults otherwise. */
  bounds: Partial<ConstraintBounds>;
}

/** The option, else GPT_OSS_CONSTRAINED_REASONING_TOKENS, else 1024. */
export function constrainedReasoningTokens(option: number | undefined, env: NodeJS.ProcessEnv = process.env): number {
  if (option !== undefined) {
    if (!Number.isInteger(option) || option < 0) throw new Error(`constrainedReasoningTokens must be a non-negative integer, got ${option}`);
    return option;
  }
  const raw = env['GPT_OSS_CONSTRAINED_REASONING_TOKENS'];
  if (raw === undefined || raw.trim() === '') return DEFAULT_CONSTRAINED_REASONING_TOKENS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`GPT_OSS_CONSTRAINED_REASONING_TOKENS must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** The mask length for a model: its vocabulary (the logits), else the tokenizer's. */
export function maskVocabSize(engine: { config: { vocabSize?: number } }, tokenizer: TokenSource): number {
  return engine.config.vocabSize ?? tokenizer.vocabSize;
}

/** Builds the vocabulary index the constraints share (1-2 s, cached per tokenizer): done at model load. */
export function warmConstraintIndex(tokenizer: TokenSource, vocabSize: number): void {
  VocabIndex.for(tokenizer, { vocabSize, firstSpecial: FIRST_SPECIAL_ID });
}

/** A function tool as the routes see it, with the request path of its parameters (for errors). */
export interface ForcibleTool {
  name: string;
  parameters?: unknown;
  param: string;
}

/**
 * What a request forces, decided from its fields (after the prompt renderer has checked their
 * shape): a tool call (tool_choice "required" or named) or a JSON answer (response_format /
 * text.format json_schema or json_object), or nothing. A forced tool call wins over a format:
 * the turn's answer is then the call.
 */
export type ForcedOutput =
  | { kind: 'tool'; choice: 'required' | string; tools: ForcibleTool[] }
  | { kind: 'json'; schema: unknown; param: string }
  | null;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function schemaError(e: UnsupportedSchemaError, param: string, prefix = ''): ApiError {
  return invalidRequest(
    `${prefix}${e.message}. Structured output (response formats, forced tool calls) supports a subset of JSON Schema; remove or replace "${e.keyword}".`,
    param,
    'unsupported_schema',
  );
}

/** Throws the 400 naming the keyword when `schema` is outside the supported subset. */
function checkSchema(schema: unknown, param: string, bounds: Partial<ConstraintBounds>, prefix = ''): void {
  try {
    validateSupportedSchema(schema, bounds);
  } catch (e) {
    if (e instanceof UnsupportedSchemaError) throw schemaError(e, param, prefix);
    throw e;
  }
}

/**
 * Decides what the request forces and checks the schemas that would be forced (400 naming the
 * unsupported keyword). `format` is response_format (Chat: schema under `json_schema`) or
 * text.format (Responses: schema in the format itself).
 */
export function forcedOutput(
  o: {
    toolChoice: unknown;
    tools: ForcibleTool[];
    format: unknown;
    formatParam: string;
    nestedIn: string | null;
  },
  settings: ConstraintSettings,
): ForcedOutput {
  const choice = o.toolChoice;
  if (choice === 'required' || (isRecord(choice) && choice['type'] === 'function')) {
    if (o.tools.length === 0) throw invalidRequest('tool_choice forces a function call, but the request has no function tools.', 'tool_choice');
    let name: string | null = null;
    if (choice !== 'required') {
      const c = choice as Record<string, unknown>;
      const n = isRecord(c['function']) ? c['function']['name'] : c['name'];
      if (typeof n !== 'string' || !o.tools.some((t) => t.name === n)) {
        throw invalidRequest(`tool_choice names the function ${JSON.stringify(n)}, which is not among the tools.`, 'tool_choice');
      }
      name = n;
    }
    const forced = name === null ? o.tools : o.tools.filter((t) => t.name === name);
    for (const t of forced) if (t.parameters !== undefined && t.parameters !== null) checkSchema(t.parameters, t.param, settings.bounds, `tool ${t.name}: `);
    return { kind: 'tool', choice: name ?? 'required', tools: o.tools };
  }
  const f = o.format;
  if (!isRecord(f)) return null;
  if (f['type'] === 'json_object') return { kind: 'json', schema: JSON_OBJECT_SCHEMA, param: `${o.formatParam}.type` };
  if (f['type'] !== 'json_schema') return null;
  const spec = o.nestedIn === null ? f : f[o.nestedIn];
  const param = o.nestedIn === null ? `${o.formatParam}.schema` : `${o.formatParam}.${o.nestedIn}.schema`;
  const schema = isRecord(spec) && spec['schema'] !== undefined && spec['schema'] !== null ? spec['schema'] : {};
  checkSchema(schema, param, settings.bounds);
  return { kind: 'json', schema, param };
}

/** Mask time, for the logs and metrics: what constrained decoding costs on the CPU. */
export interface TimedConstraint extends TokenConstraint {
  /** Milliseconds spent computing masks and advancing the automaton. */
  readonly maskMs: number;
  /** Masks computed. */
  readonly masks: number;
}

function timed(inner: TokenConstraint): TimedConstraint {
  let maskMs = 0;
  let masks = 0;
  return {
    next() {
      const t0 = performance.now();
      const m = inner.next();
      maskMs += performance.now() - t0;
      if (m) masks++;
      return m;
    },
    accept(id: number) {
      const t0 = performance.now();
      try {
        inner.accept(id);
      } finally {
        maskMs += performance.now() - t0;
      }
    },
    get done() {
      return inner.done;
    },
    get maskMs() {
      return maskMs;
    },
    get masks() {
      return masks;
    },
  };
}

/**
 * The request's constraint, or undefined when it forces nothing. Reasoning gets at most half of
 * the request's token budget, so the forced answer still has room when max_tokens is small.
 */
export function buildConstraint(
  forced: ForcedOutput,
  tokenizer: TokenSource,
  vocabSize: number,
  settings: ConstraintSettings,
  maxTokens: number,
): TimedConstraint | undefined {
  if (!forced) return undefined;
  const maxReasoningTokens = Math.min(settings.maxReasoningTokens, Math.floor(maxTokens / 2));
  const opts = { ...settings.bounds, vocabSize, maxReasoningTokens };
  try {
    if (forced.kind === 'json') return timed(createJsonSchemaConstraint(forced.schema, tokenizer, opts));
    return timed(
      createToolCallConstraint(
        forced.tools.map((t) => ({ type: 'function' as const, name: t.name, parameters: t.parameters ?? undefined })),
        forced.choice,
        tokenizer,
        opts,
      ),
    );
  } catch (e) {
    // forcedOutput checked the schemas already; this is a backstop with a less precise param.
    if (e instanceof UnsupportedSchemaError) throw schemaError(e, forced.kind === 'json' ? forced.param : 'tools');
    throw e;
  }
}
