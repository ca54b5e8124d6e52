// The engine's public types: options, sampling and generation settings, results, the memory plan
// and the counters it keeps (src/server, src/bench and the CLI read these).
import type { Gpu } from '../gpu/device.js';
import type { KvDtype } from './kv-cache.js';
import type { SpeculatorOptions } from './speculative/speculator.js';
import type { UploadProgress } from './weights.js';

export interface EngineOptions {
  /** Positions one sequence may reach (prompt + generated). Default: the model's max_position_embeddings. */
  context?: number;
  /** Tokens per step (the prefill chunk when one sequence runs alone). Default 512. */
  maxBatchTokens?: number;
  /** Sequences running at once. Default 1 (a single-sequence engine); the server asks for more. */
  maxNumSeqs?: number;
  /** Bytes for the KV cache (default: two full contexts or 4096 positions per sequence, whichever is more; one context with a single sequence). */
  kvMemory?: number;
  /** Positions per KV page (a power of two, at least 16). Default 32. */
  pageSize?: number;
  /** KV cache storage. Default f16 (f32 accumulation). */
  kvDtype?: KvDtype;
  /** Share cached prompt blocks between sequences. Default true. */
  prefixCaching?: boolean;
  /** Plan and submit each step while the previous one runs (ids read back a step later). Default true. */
  runAhead?: boolean;
  /** Keep logits for every prompt row (for --logits-out and tests), not only the sampled ones. */
  allLogits?: boolean;
  /**
   * Largest binding of a shard of the embeddings and experts (default: the adapter's
   * maxStorageBufferBindingSize, above which they are always split). Tests set it low.
   */
  shardBytes?: number;
  /** Speculative decoding: a proposer and the most tokens it proposes per sequence and step. */
  speculative?: SpeculatorOptions;
  /** Dawn robustness (tests). */
  robust?: boolean;
  gpu?: Gpu;
  onPlan?: (plan: MemoryPlan) => void;
  onProgress?: UploadProgress;
  /**
   * Test seam: called at each phase of every step; a throw there acts as a failure of that phase
   * (test/engine/faults.test.ts injects faults with it). Leave unset outside tests.
   */
  faultHook?: (phase: StepPhase) => void;
  /** Where the step loop reports an error it absorbed (the step's sequences end with it). Default console.error. */
  log?: (message: string, error: unknown) => void;
}

/** The phases of a step, in order (vLLM's: schedule, prepare inputs, execute, update from output). */
export type StepPhase = 'schedule' | 'inputs' | 'submit' | 'readback';

export interface MemoryPlan {
  weights: number;
  kv: number;
  rope: number;
  activations: number;
  total: number;
  context: number;
  /** Tokens per step. */
  chunk: number;
  maxNumSeqs: number;
  kvPages: { pageSize: number; dtype: KvDtype; full: number; sliding: number; positions: number };
  /** A draft model's own plan (speculative decoding), counted in `total`. */
  draft?: MemoryPlan;
}

export interface SamplingOptions {
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
}

/**
 * Changes to a row's logits before the sampler draws from it (OpenAI's and vLLM's request
 * fields): bias on given ids, presence and frequency penalties on the tokens generated so far,
 * a repetition penalty on every token of the prompt and the output, min-p.
 */
export interface LogitsProcessing {
  /** Added to these ids' logits (OpenAI logit_bias, -100..100). */
  logitBias?: ReadonlyMap<number, number>;
  /** Subtracted once from the logit of every token generated so far (-2..2). */
  presencePenalty?: number;
  /** Subtracted per occurrence from the logits of the tokens generated so far (-2..2). */
  frequencyPenalty?: number;
  /** > 0; the logits of the prompt's and output's tokens are divided by it (positive) or multiplied (negative); 1: off. */
  repetitionPenalty?: number;
  /** Drops tokens whose probability (at the row's temperature) is below minP times the most likely token's; 0: off. */
  minP?: number;
}

/** A sampled token's log probability under the model's raw distribution, and the most likely tokens'. */
export interface TokenLogprob {
  logprob: number;
  top: { id: number; logprob: number }[];
}

export interface GenerateOptions extends SamplingOptions, LogitsProcessing {
  /** Log probabilities of each sampled token and of the `logprobs` most likely (0..20), reported to onToken. */
  logprobs?: number;
  /**
   * Log probabilities of each prompt token after the first (given the tokens before it) and of the
   * `promptLogprobs` most likely there (0..20), in GenerateResult.promptLogprobs. The prompt is
   * then computed in full (no prefix-cache hit).
   */
  promptLogprobs?: number;
  /** With promptLogprobs: called once the prompt's are known, before the first token reaches onToken. */
  onPromptLogprobs?: (lps: readonly (TokenLogprob | null)[]) => void;
  maxTokens: number;
  /** Token ids that end generation (included in the output). */
  stopTokens?: readonly number[];
  signal?: AbortSignal;
  /** Called with each sampled token (and its logprobs when asked for); return false to stop. */
  onToken?: (id: number, logprob?: TokenLogprob) => boolean | void;
  /** Receive the prefill logits of every prompt row ([prompt][vocab]); needs allLogits. */
  onPrefillLogits?: (logits: Float32Array) => void;
  /** Constrained decoding (src/constrain): which tokens the sampler may pick at each step. */
  constraint?: TokenMaskSource;
  /** false: this sequence never verifies proposals, on an engine with speculative decoding. */
  speculative?: boolean;
  /** Called once the sequence holds a slot and its prefill starts. */
  onStart?: () => void;
  /** Receives the logits row each token is sampled from (tests and debugging: one more readback per step). */
  onLogits?: (row: Float32Array) => void;
}

/**
 * Before each token: next() gives the allowed-token bitmask (u32 words, bit i of word i >> 5 =
 * token i, ceil(vocab / 32) words) or null for no constraint; after it: accept(id) with the sampled
 * id (it may throw to end generation). A masked step still costs one submit and one readback.
 */
export interface TokenMaskSource {
  next(): Uint32Array | null;
  accept(id: number): void;
}

export type FinishReason = 'stop' | 'length' | 'abort' | 'context';

export interface GenerateResult {
  tokens: number[];
  finishReason: FinishReason;
  promptTokens: number;
  /** Prompt tokens served from the prefix cache. */
  cachedTokens: number;
  /** With GenerateOptions.promptLogprobs: per prompt position, its token's logprob (null for the first). */
  promptLogprobs?: (TokenLogprob | null)[];
  /** Waiting for a slot (continuous batching queue). */
  queueMs: number;
  /** From admission to the first sampled token. */
  prefillMs: number;
  decodeMs: number;
}

export interface StepStats {
  dispatches: number;
  submits: number;
  readbacks: number;
  pipelinesCreated: number;
}

export interface EngineStats {
  /** Counters of the last step that only decoded. */
  decodeStep: StepStats;
  /** Totals of the last completed prefill (every step before its first token). */
  prefill: StepStats & { chunks: number };
  /** Counters of the last step. */
  lastStep: StepStats & { tokens: number; sequences: number };
  steps: number;
  /** Steps planned and submitted while the previous one still ran. */
  aheadSteps: number;
  preemptions: number;
  prefixCacheHitTokens: number;
  /** Speculative decoding's counters (null on an engine without it). */
  speculative: SpeculativeStats | null;
}

/** What speculative decoding proposed and kept, since start. */
export interface SpeculativeStats {
  /** The proposer: 'ngram' or 'draft'. */
  method: string;
  /** Proposed tokens verified. */
  proposed: number;
  /** Of those, accepted. */
  accepted: number;
  /** Decode entries that verified proposals. */
  verifications: number;
  /** Decode entries (of sequences past their prompt), verifying or not, and the tokens they yielded. */
  entries: number;
  yielded: number;
  /** Verifications by the number of proposals accepted (index 0..K). */
  acceptedHistogram: number[];
  /** Verifications whose accepted / proposed is at most each of SPEC_RATE_BUCKETS (cumulative), and the rates' sum. */
  rateBuckets: number[];
  rateSum: number;
}

/** Upper bounds of the acceptance-rate histogram (accepted / proposed per verification). */
export const SPEC_RATE_BUCKETS = [0, 0.25, 0.5, 0.75, 0.999, 1];

/**
 * What one step's kernels did, counted from the dispatches that ran (Dispatch.weightBytes and
 * macs) and the step's routing: weight bytes fetched and weight-product multiply-adds, in all and
 * per kernel, with what the minimum depends on (tokens, logits rows, experts used).
 */
export interface StepBytes {
  tokens: number;
  sequences: number;
  /** Logits rows (unembedded rows). */
  rows: number;
  total: number;
  byKernel: Record<string, number>;
  macs: number;
  macsByKernel: Record<string, number>;
  /** Distinct experts the step's tokens were routed to, summed over layers. */
  usedExperts: number;
}

/** The continuous-batching state: sequences, KV pages in use and free, prefix-cache hits, preemptions. */
export interface BatchingState {
  running: number;
  waiting: number;
  kvPagesUsed: number;
  kvPagesFree: number;
  /** Positions per KV page. */
  kvPageSize: number;
  prefixCacheHitTokens: number;
  preemptions: number;
  /** Speculative decoding's counters (absent or null without it). */
  speculative?: SpeculativeStats | null;
}

/** A submitted step's size. */
export interface StepSize {
  tokens: number;
  sequences: number;
}

export const zeroStats = (): StepStats => ({ dispatches: 0, submits: 0, readbacks: 0, pipelinesCreated: 0 });
