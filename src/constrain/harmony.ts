// Harmony-level constrained decoding: the token masks that make gpt-oss answer in a given shape.
//
//  * createJsonSchemaConstraint (response_format json_schema / json_object): optional reasoning
//    `<|channel|>analysis<|message|>…<|end|><|start|>assistant` (free text, at most
//    maxReasoningTokens tokens, then `<|end|>` is forced), then
//    `<|channel|>final <|constrain|>json<|message|>{JSON valid against the schema}<|return|>`.
//  * createToolCallConstraint (tool_choice "required" or a named function): the same optional
//    reasoning, then `<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{arguments
//    valid against NAME's parameters}<|call|>`; for "required" the model picks NAME among the tools.
//
// The prompt must end with `<|start|>assistant` (render_for_completion). Each returned object is
// used by Engine.generate: next() gives the allowed-token bitmask for the next token (bit i of word
// i >> 5 = token i allowed; the array is reused by the following call) or null once the message is
// complete; accept(id) feeds the sampled token and throws if it was not allowed.
import { Automaton, type Frame } from './automaton.js';
import { compileSchema, DEFAULT_BOUNDS, litSet, UnsupportedSchemaError, type ConstraintBounds, type SNode } from './schema.js';
import { VocabIndex, type TokenSource } from './vocab.js';
import { HARMONY_TOKENS } from '../tokenizer/special-tokens.js';

export const HARMONY_IDS = HARMONY_TOKENS;

/** The first special-token id of o200k_harmony: ids below it are ordinary byte tokens. */
export const FIRST_SPECIAL_ID = HARMONY_TOKENS.startOfText;

export interface TokenConstraint {
  /** The mask for the next token (reused buffer), or null: no constraint (the message is complete). */
  next(): Uint32Array | null;
  /** Feeds the sampled token. Throws ConstraintViolation if the token was not allowed. */
  accept(id: number): void;
  /** True once the terminator (`<|return|>` or `<|call|>`) was accepted. */
  readonly done: boolean;
}

export class ConstraintViolation extends Error {
  override name = 'ConstraintViolation';
}

export interface HarmonyConstraintOptions extends Partial<ConstraintBounds> {
  /** Mask length in tokens: the model's vocabulary (default: the tokenizer's vocabSize). */
  vocabSize?: number;
  /**
   * Reasoning tokens allowed in the analysis message before `<|end|>` is forced. 0 skips the
   * analysis message altogether. Default 1024.
   */
  maxReasoningTokens?: number;
}

/** The schema behind response_format {type: "json_object"}: any JSON object. */
export const JSON_OBJECT_SCHEMA = { type: 'object' } as const;

type Seg =
  | { t: 'special'; id: number }
  | { t: 'free'; max: number; count: number }
  | { t: 'bytes'; states: Frame[]; terminator: number; then: (info: number) => Seg[] };

const utf8 = new TextEncoder();

class SegmentConstraint implements TokenConstraint {
  private readonly mask: Uint32Array;
  private freeMask: Uint32Array | null = null;
  private segs: Seg[];
  done = false;
  /** Trie nodes visited by the last next() (benchmarks). */
  lastVisited = 0;

  constructor(
    private readonly index: VocabIndex,
    private readonly aut: Automaton,
    segs: Seg[],
  ) {
    this.mask = new Uint32Array(index.words);
    this.segs = segs;
  }

  next(): Uint32Array | null {
    const seg = this.segs[0];
    if (!seg) return null;
    const m = this.mask;
    this.lastVisited = 0;
    switch (seg.t) {
      case 'special':
        m.fill(0);
        set(m, seg.id);
        return m;
      case 'free':
        if (seg.count >= seg.max) {
          m.fill(0);
          set(m, HARMONY_IDS.end);
          return m;
        }
        return this.reasoningMask();
      case 'bytes':
        m.fill(0);
        this.lastVisited = this.index.fill(this.aut, seg.states, m);
        if (this.aut.finish(seg.states)) set(m, seg.terminator);
        return m;
    }
  }

  accept(id: number): void {
    const seg = this.segs[0];
    if (!seg) return;
    switch (seg.t) {
      case 'special':
        if (id !== seg.id) throw new ConstraintViolation(`expected token ${seg.id}, got ${id}`);
        this.shift([]);
        return;
      case 'free':
        if (id === HARMONY_IDS.end) {
          this.shift([]);
          return;
        }
        if (seg.count >= seg.max || !this.isOrdinary(id)) throw new ConstraintViolation(`token ${id} is not allowed in reasoning here`);
        seg.count++;
        return;
      case 'bytes': {
        if (id === seg.terminator) {
          const doneFrame = this.aut.finish(seg.states);
          if (!doneFrame) throw new ConstraintViolation(`token ${id} ends an incomplete value`);
          this.shift(seg.then(doneFrame.a));
          return;
        }
        const bytes = this.isOrdinary(id) ? this.index.tokenBytesOf(id) : undefined;
        if (!bytes) throw new ConstraintViolation(`token ${id} is not allowed here`);
        let st = seg.states;
        for (const b of bytes) {
          st = this.aut.step(st, b);
          if (!st.length) throw new ConstraintViolation(`token ${id} breaks the constrained output`);
        }
        seg.states = st;
        return;
      }
    }
  }

  private shift(more: Seg[]): void {
    this.segs = [...more, ...this.segs.slice(1)];
    if (!this.segs.length) this.done = true;
  }

  private isOrdinary(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < FIRST_SPECIAL_ID && id < this.index.vocabSize;
  }

  private reasoningMask(): Uint32Array {
    if (!this.freeMask) {
      const f = new Uint32Array(this.index.words);
      for (const id of this.index.ordinaryIds) set(f, id);
      set(f, HARMONY_IDS.end);
      this.freeMask = f;
    }
    return this.freeMask;
  }
}

function set(m: Uint32Array, id: number): void {
  m[id >>> 5]! |= 1 << (id & 31);
}

interface Ctx {
  index: VocabIndex;
  aut: Automaton;
}

function context(tokenizer: TokenSource, opts: HarmonyConstraintOptions): Ctx {
  const bounds: ConstraintBounds = { ...DEFAULT_BOUNDS };
  for (const k of Object.keys(DEFAULT_BOUNDS) as (keyof ConstraintBounds)[]) if (opts[k] !== undefined) bounds[k] = opts[k]!;
  const index = VocabIndex.for(tokenizer, { vocabSize: opts.vocabSize ?? tokenizer.vocabSize, firstSpecial: FIRST_SPECIAL_ID });
  return { index, aut: new Automaton(bounds) };
}

function text(c: Ctx, candidates: string[], terminator: number, then: (info: number) => Seg[]): Seg {
  const set = litSet(candidates.map((s, i) => ({ bytes: utf8.encode(s), info: i })));
  return { t: 'bytes', states: c.aut.startText(set), terminator, then };
}

/**
 * `<|channel|>analysis<|message|>…<|end|><|start|>assistant<|channel|>` when reasoning is allowed,
 * else `<|channel|>`. A bytes segment consumes its terminator token.
 */
function reasoning(c: Ctx, max: number): Seg[] {
  if (max <= 0) return [{ t: 'special', id: HARMONY_IDS.channel }];
  return [
    { t: 'special', id: HARMONY_IDS.channel },
    text(c, ['analysis'], HARMONY_IDS.message, () => []),
    { t: 'free', max, count: 0 },
    { t: 'special', id: HARMONY_IDS.start },
    text(c, ['assistant'], HARMONY_IDS.channel, () => []),
  ];
}

/** `{header text} <|constrain|>json<|message|>{json}{terminator}`, right after `<|channel|>`. */
function constrainedMessage(c: Ctx, headers: string[], nodes: SNode[], terminator: number): Seg[] {
  return [
    text(c, headers, HARMONY_IDS.constrain, (i) => [
      text(c, ['json'], HARMONY_IDS.message, () => []),
      { t: 'bytes', states: c.aut.start(nodes[i]!), terminator, then: () => [] },
    ]),
  ];
}

/**
 * response_format json_schema (pass its `schema`) or json_object (pass JSON_OBJECT_SCHEMA). Throws
 * UnsupportedSchemaError naming the first keyword outside the supported subset.
 */
export function createJsonSchemaConstraint(schema: unknown, tokenizer: TokenSource, opts: HarmonyConstraintOptions = {}): TokenConstraint {
  const c = context(tokenizer, opts);
  const node = compileSchema(schema, c.aut.bounds);
  return new SegmentConstraint(c.index, c.aut, [
    ...reasoning(c, opts.maxReasoningTokens ?? 1024),
    ...constrainedMessage(c, ['final '], [node], HARMONY_IDS.return),
  ]);
}

/** A function tool, in the Chat Completions shape or the flat Responses shape. */
export type FunctionTool =
  | { type?: 'function'; function: { name: string; parameters?: unknown } }
  | { type?: 'function'; name: string; parameters?: unknown };

/** tool_choice: "required", or a named function in either API's shape, or just its name. */
export type ToolChoice = 'required' | string | { type?: 'function'; function: { name: string } } | { type?: 'function'; name: string };

function toolName(t: { function?: { name: string }; name?: string }): string {
  const n = t.function?.name ?? t.name;
  if (typeof n !== 'string' || !n) throw new Error('a function tool needs a name');
  return n;
}

/**
 * tool_choice "required" or a named function. Throws UnsupportedSchemaError (the keyword, with
 * the tool's name in the message) if a tool's parameters are outside the supported subset, and
 * Error if the named function is not among the tools.
 */
export function createToolCallConstraint(
  tools: readonly FunctionTool[],
  choice: ToolChoice,
  tokenizer: TokenSource,
  opts: HarmonyConstraintOptions = {},
): TokenConstraint {
  const c = context(tokenizer, opts);
  const all = tools.map((t) => ({ name: toolName(t), parameters: 'function' in t ? t.function.parameters : t.parameters }));
  let chosen = all;
  if (choice !== 'required') {
    const name = typeof choice === 'string' ? choice : toolName(choice);
    chosen = all.filter((t) => t.name === name);
    if (!chosen.length) throw new Error(`tool_choice names "${name}", which is not among the tools`);
  }
  if (!chosen.length) throw new Error('tool_choice "required" needs at least one function tool');
  const nodes = chosen.map((t) => {
    try {
      return compileSchema(t.parameters ?? { type: 'object', properties: {} }, c.aut.bounds);
    } catch (e) {
      if (e instanceof UnsupportedSchemaError) {
        const err = new UnsupportedSchemaError(e.keyword, e.path);
        err.message = `tool ${t.name}: ${e.message}`;
        throw err;
      }
      throw e;
    }
  });
  return new SegmentConstraint(c.index, c.aut, [
    ...reasoning(c, opts.maxReasoningTokens ?? 1024),
    ...constrainedMessage(
      c,
      chosen.map((t) => `commentary to=functions.${t.name} `),
      nodes,
      HARMONY_IDS.call,
    ),
  ]);
}

/**
 * A bare JSON constraint (no harmony framing): the value, then `terminator`. For benchmarks and
 * tests; `lastVisited` tells how many trie nodes the last mask walked.
 */
export function createJsonValueConstraint(
  schema: unknown,
  tokenizer: TokenSource,
  opts: HarmonyConstraintOptions & { terminator?: number } = {},
): TokenConstraint & { readonly lastVisited: number } {
  const c = context(tokenizer, opts);
  const node = compileSchema(schema, c.aut.bounds);
  const terminator = opts.terminator ?? HARMONY_IDS.return;
  return new SegmentConstraint(c.index, c.aut, [
    { t: 'bytes', states: c.aut.start(node), terminator, then: () => [] },
  ]);
}
