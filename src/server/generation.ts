// One turn on the engine for one request: sampling settings from the request, the context check,
// the wait in the admission queue, and the per-token bookkeeping (metrics, usage, cancellation).
// The routes decide what the tokens mean. A generation the engine rejects (a failed step) fails
// only its request: a 500 through the error handler, or an error event that ends its stream.
import { randomInt } from 'node:crypto';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { GenerateResult, LogitsProcessing, SamplingOptions, TokenLogprob } from '../engine/engine.js';
import { HARMONY_STOP_TOKEN_IDS, HarmonyRequestError } from '../harmony/index.js';
import type { RequestLimits, ServerContext } from './context.js';
import { ApiError, contextExceeded, invalidRequest, queueFull, shuttingDown, type ErrorBody } from './errors.js';
import type { ServingEngine } from './model-host.js';
import type { ServedModel } from './models.js';
import type { TimedConstraint } from './constraints.js';
import { QueueClosedError, QueueFullError } from './admission-queue.js';
import { SseStream, streamFailed } from './sse.js';

export interface SamplingFields {
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  seed?: number | null;
}

/** OpenAI defaults: temperature 1, top_p 1. No seed: a fresh one per request. */
export function samplingOptions(b: SamplingFields): Required<SamplingOptions> {
  const topK = b.top_k ?? 0;
  return {
    temperature: b.temperature ?? 1,
    topP: b.top_p ?? 1,
    topK: topK < 0 ? 0 : topK,
    // The sampler takes a u32 seed; a 64-bit seed keeps its low 32 bits.
    seed: b.seed !== undefined && b.seed !== null ? Number(BigInt.asUintN(32, BigInt(Math.trunc(b.seed)))) : randomInt(0, 2 ** 32 - 1),
  };
}

/** The most choices (`n`) one request may ask for. */
export const MAX_CHOICES = 16;

/** The request's `n`: 1 when absent; above MAX_CHOICES a 400 naming n and its value. */
export function choiceCount(n: number | null | undefined): number {
  if (n === undefined || n === null) return 1;
  if (n > MAX_CHOICES) throw invalidRequest(`n=${n}: this server generates at most ${MAX_CHOICES} choices per request`, 'n');
  return n;
}

/**
 * The sampling settings of each of n choices, each its own seed stream: with the request's seed,
 * choice i draws with seed + i (mod 2^32), so choice i is what the same request with n=1 and that
 * seed answers; without one, each choice gets a fresh random seed.
 */
/**
 * Usage of a request's n choices: the prompt counted once (as OpenAI bills n > 1), completion
 * tokens summed, and the prompt tokens whose prefill the prefix cache saved (the first choice's).
 */
export function choicesUsage(promptTokens: number, results: ReadonlyArray<{ tokens: readonly number[]; cachedTokens: number }>) {
  const completion = results.reduce((a, r) => a + r.tokens.length, 0);
  return { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion, prompt_tokens_details: { cached_tokens: results[0]!.cachedTokens } };
}

export function choiceSampling(b: SamplingFields, n: number): Required<SamplingOptions>[] {
  const base = samplingOptions(b);
  const seeded = b.seed !== undefined && b.seed !== null;
  return Array.from({ length: n }, (_, i) => (i === 0 ? base : { ...base, seed: seeded ? (base.seed + i) >>> 0 : randomInt(0, 2 ** 32 - 1) }));
}

/**
 * Tokens the completion may use: what the request asked for, or the server's default cap (never
 * more than the context left). A prompt over the server's prompt limit, or a prompt plus
 * completion that do not fit, is the client's error, named with the numbers.
 */
export function completionBudget(
  limits: RequestLimits,
  requested: number | null | undefined,
  promptTokens: number,
  context: number,
  params: { prompt: string; maxTokens: string },
): number {
  if (limits.maxPromptTokens !== null && promptTokens > limits.maxPromptTokens) {
    throw new ApiError(
      400,
      `This server accepts prompts of at most ${limits.maxPromptTokens} tokens, and your prompt has ${promptTokens} tokens. Shorten the prompt.`,
      'invalid_request_error',
      params.prompt,
      'context_length_exceeded',
    );
  }
  if (requested === undefined || requested === null) {
    if (promptTokens >= context) {
      throw new ApiError(
        400,
        `This model's maximum context length is ${context} tokens, and your prompt has ${promptTokens} tokens, ` +
          'which leaves no room for the completion. Shorten the prompt.',
        'invalid_request_error',
        params.prompt,
        'context_length_exceeded',
      );
    }
    return Math.min(limits.maxTokensDefault, context - promptTokens);
  }
  if (promptTokens + requested > context) throw contextExceeded(promptTokens, requested, context, params.maxTokens);
  return requested;
}

/** Stop tokens: harmony's <|return|> and <|call|>, plus the model's own eos ids. */
export function stopTokens(engine: ServingEngine): number[] {
  return [...new Set([...HARMONY_STOP_TOKEN_IDS, ...engine.config.eosTokenIds])];
}

/**
 * An AbortSignal that fires when the client goes away before its response is complete: a queued
 * request then leaves the queue, a running one stops within one decode step.
 */
export function clientGone(ctx: ServerContext, reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  const res = reply.raw;
  // The server shutting down cancels the same way. (Not AbortSignal.any: on Node 20 it can keep
  // every request's signal alive for as long as the long-lived shutdown signal lives.)
  const onShutdown = () => ac.abort(ctx.shutdownSignal.reason);
  ctx.shutdownSignal.addEventListener('abort', onShutdown, { once: true });
  res.once('close', () => {
    ctx.shutdownSignal.removeEventListener('abort', onShutdown);
    if (!res.writableFinished) ac.abort(new DOMException('the client closed the connection', 'AbortError'));
  });
  return ac.signal;
}

/** Throws the 429 (or 503 when closing) that runTurn would, before a stream's 200 goes out. */
function admitOrReject(model: ServedModel): void {
  if (model.queue.hasRoom()) return;
  throw model.queue.isClosed ? shuttingDown() : queueFull(model.queue.retryAfterSeconds());
}

/**
 * A non-streaming request whose client left: nothing can be sent, so the reply is taken over
 * and counted as 499 (nginx's "client closed request"). On shutdown it is a 503 instead.
 */
function abandon(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): void {
  ctx.metrics.finished.inc({ reason: 'abort' });
  // Still connected: the server is closing, and the client hears so.
  if (!reply.raw.destroyed && ctx.shutdownSignal.aborted) throw shuttingDown();
  ctx.metrics.requests.inc({ route: request.routeOptions.url ?? 'unmatched', method: request.method, status: '499' });
  request.sseCounted = true;
  request.log.info('client closed the connection; generation cancelled');
  reply.hijack();
  if (!reply.raw.destroyed) reply.raw.destroy();
}

export interface Turn {
  /** The model whose queue and engine run the turn (engine: its loaded engine). */
  model: ServedModel;
  engine: ServingEngine;
  promptIds: readonly number[];
  maxTokens: number;
  sampling: Required<SamplingOptions>;
  /** Logit bias, penalties, min-p. */
  processing?: LogitsProcessing;
  /** Top logprobs per token (0..20): each token's logprobs reach onToken. */
  logprobs?: number;
  /** Top logprobs per prompt token (echo): they reach onPromptLogprobs before the first token. */
  promptLogprobs?: number;
  onPromptLogprobs?: (lps: readonly (TokenLogprob | null)[]) => void;
  signal: AbortSignal;
  /** Structured output: the token mask the engine applies at every step. */
  constraint?: TimedConstraint;
  /** The request's ignore_eos: run to maxTokens past the end tokens (not with a constraint, which ends where its grammar ends). */
  ignoreEos?: boolean;
  /** The engine is ours; prefill is about to start. */
  onStart?: () => void;
  /** Each sampled token (with its logprobs when asked for); return false to end the generation (a stop string matched). */
  onToken: (id: number, logprob?: TokenLogprob) => boolean | void;
  /**
   * Which of the request's n choices this is (default 0). A further one (> 0) belongs to a request
   * already admitted, so it waits in the queue past its limit, and its prompt is not counted in
   * the usage again (a request's prompt counts once, as OpenAI bills n > 1).
   */
  choice?: number;
}

/** Engine finish reasons, plus what the routes report. */
export type TurnEnd = GenerateResult['finishReason'];

/**
 * Waits for the model's engine (FIFO), then generates. Throws 429 when the queue is full, the
 * signal's reason when the client left while waiting, and whatever the engine throws. Every turn
 * that reaches the engine is counted in the usage of the request's API key and the model.
 */
export async function runTurn(ctx: ServerContext, request: FastifyRequest, turn: Turn): Promise<GenerateResult> {
  const log = request.log;
  const { model } = turn;
  const further = (turn.choice ?? 0) > 0;
  const queuedAt = performance.now();
  let result: GenerateResult;
  try {
    result = await model.queue.run(turn.signal, async () => {
      const { metrics } = ctx;
      metrics.queueTime.observe((performance.now() - queuedAt) / 1000);
      metrics.promptTokens.inc({}, turn.promptIds.length);
      turn.onStart?.();
      const t0 = performance.now();
      let last = 0;
      let count = 0;
      let cached = 0;
      try {
        const r = await turn.engine.generate(turn.promptIds, {
          maxTokens: turn.maxTokens,
          ...turn.sampling,
          ...turn.processing,
          ...(turn.logprobs !== undefined ? { logprobs: turn.logprobs } : {}),
          ...(turn.promptLogprobs !== undefined ? { promptLogprobs: turn.promptLogprobs, onPromptLogprobs: turn.onPromptLogprobs } : {}),
          stopTokens: turn.ignoreEos && !turn.constraint ? [] : stopTokens(turn.engine),
          signal: turn.signal,
          ...(turn.constraint ? { constraint: turn.constraint } : {}),
          onToken: (id, lp) => {
            const now = performance.now();
            if (count === 0) metrics.timeToFirstToken.observe((now - t0) / 1000);
            else metrics.interTokenLatency.observe((now - last) / 1000);
            last = now;
            count++;
            metrics.generationTokens.inc();
            if (turn.signal.aborted) return false;
            return turn.onToken(id, lp);
          },
        });
        cached = r.cachedTokens;
        const mask = turn.constraint ? { maskMs: Math.round(turn.constraint.maskMs * 10) / 10, masks: turn.constraint.masks } : {};
        ctx.lastGeneration = { finishReason: r.finishReason, tokens: r.tokens.length, maxTokens: turn.maxTokens, prefillMs: r.prefillMs, decodeMs: r.decodeMs, ...mask };
        const choice = turn.choice !== undefined ? { choice: turn.choice } : {};
        log.info(
          { promptTokens: r.promptTokens, cachedTokens: r.cachedTokens, tokens: r.tokens.length, finish: r.finishReason, prefillMs: Math.round(r.prefillMs), decodeMs: Math.round(r.decodeMs), ...choice, ...mask },
          'generation finished',
        );
        return r;
      } catch (e) {
        metrics.finished.inc({ reason: 'error' });
        throw e;
      } finally {
        // What the engine did, finished or not: the prompt and every sampled token (as `usage` says).
        const prompt = further ? { promptTokens: 0, cachedTokens: 0 } : { promptTokens: turn.promptIds.length, cachedTokens: cached };
        ctx.usage.record(request.gptOssKey, model.name, { ...prompt, completionTokens: count });
      }
    }, { admitted: further });
  } catch (e) {
    if (e instanceof QueueFullError) throw queueFull(model.queue.retryAfterSeconds());
    if (e instanceof QueueClosedError) throw shuttingDown();
    throw e;
  }
  return result;
}

/**
 * The n choices of one request, each its own engine sequence. Choice 0 starts first; the others
 * once its first token came: its prefill is done then and the engine has put its prompt's whole
 * pages in the prefix cache, so they prefill only what is past the last whole page. One choice
 * failing stops the others and its error is thrown; `done` hears each choice that ended normally,
 * as it ends.
 */
export async function runChoices(
  ctx: ServerContext,
  request: FastifyRequest,
  turns: readonly Turn[],
  done?: (index: number, result: GenerateResult) => void | Promise<void>,
): Promise<GenerateResult[]> {
  const [first, ...rest] = turns as [Turn, ...Turn[]];
  if (rest.length === 0) {
    const r = await runTurn(ctx, request, first);
    if (!first.signal.aborted) await done?.(0, r);
    return [r];
  }
  // every choice stops when the client leaves, and when one of them fails
  const stop = new AbortController();
  const outer = first.signal;
  const onOuter = () => stop.abort(outer.reason);
  if (outer.aborted) onOuter();
  else outer.addEventListener('abort', onOuter, { once: true });
  let failure: { error: unknown } | null = null;
  let prefilled!: () => void;
  const firstToken = new Promise<void>((resolve) => (prefilled = resolve));
  const run = async (t: Turn, index: number): Promise<GenerateResult> => {
    try {
      const r = await runTurn(ctx, request, { ...t, choice: index, signal: stop.signal });
      if (!stop.signal.aborted) await done?.(index, r);
      return r;
    } catch (e) {
      if (!failure && !stop.signal.aborted) {
        failure = { error: e };
        stop.abort(e);
      }
      throw e;
    }
  };
  const head = run({ ...first, onToken: (id, lp) => (prefilled(), first.onToken(id, lp)) }, 0).finally(prefilled);
  const all = [head, ...rest.map(async (t, i) => (await firstToken, run(t, i + 1)))];
  const settled = await Promise.allSettled(all);
  outer.removeEventListener('abort', onOuter);
  if (failure) throw (failure as { error: unknown }).error;
  return settled.map((x) => {
    if (x.status === 'rejected') throw x.reason;
    return x.value;
  });
}

/**
 * A non-streaming request's turn: the result, or null when the client left meanwhile (the reply
 * is then taken over and nothing more is sent; on shutdown this throws the 503 instead).
 */
export async function completeTurn(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, turn: Turn): Promise<GenerateResult | null> {
  return (await completeChoices(ctx, request, reply, [turn]))?.[0] ?? null;
}

/** completeTurn for the n choices of a request (runChoices): their results, in order. */
export async function completeChoices(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, turns: readonly Turn[]): Promise<GenerateResult[] | null> {
  const signal = turns[0]!.signal;
  const results = await runChoices(ctx, request, turns).catch((e: unknown) => {
    if (signal.aborted) return null;
    throw e;
  });
  if (results && !signal.aborted) return results;
  abandon(ctx, request, reply);
  return null;
}

/** What a streaming route writes for one choice: events as its tokens come. */
export interface ChoiceWriter {
  /** The engine is ours; prefill is about to start. */
  onStart?: () => void;
  /** Each sampled token (and its logprobs); return false to end the generation (a stop string matched). */
  onToken: (id: number, logprob?: TokenLogprob) => boolean | void;
  /** After this choice's normal end, while others may still run: its closing events. */
  done?: (result: GenerateResult) => void;
}

/** What a streaming route writes: events as tokens come, then its closing events. */
export interface StreamWriter extends ChoiceWriter {
  /** After a normal end: the final events (the stream is ended after them; awaited). */
  finish: (result: GenerateResult) => void | Promise<void>;
  /** Writes an OpenAI error body as the API's error event (default: a `data:` line). */
  error?: (body: ErrorBody) => void;
}

/** The writers of a stream of n choices, and its closing events once all have ended. */
export interface ChoicesWriter {
  choices: ChoiceWriter[];
  finish: (results: GenerateResult[]) => void | Promise<void>;
  error?: (body: ErrorBody) => void;
}

type StreamedTurn = Omit<Turn, 'onStart' | 'onToken'>;

/**
 * A streaming request's turn. Admission (429 / 503) is decided before the 200 goes out; then the
 * SSE stream opens, `open(sse)` writes its first events and returns the writer, and the turn
 * runs. A client that left, an engine failure or a shutdown ends the stream with an error event
 * where the client can still read it. `doneMarker`: end with `data: [DONE]` (Chat, Completions).
 */
export function streamTurn(
  ctx: ServerContext,
  request: FastifyRequest,
  reply: FastifyReply,
  turn: StreamedTurn,
  doneMarker: boolean,
  open: (sse: SseStream) => StreamWriter,
): Promise<FastifyReply> {
  return streamChoices(ctx, request, reply, [turn], doneMarker, (sse) => {
    const w = open(sse);
    return { choices: [w], finish: ([r]) => w.finish(r!), ...(w.error ? { error: w.error } : {}) };
  });
}

/** streamTurn for the n choices of a request (runChoices); `[DONE]` once, after all. */
export async function streamChoices(
  ctx: ServerContext,
  request: FastifyRequest,
  reply: FastifyReply,
  turns: readonly StreamedTurn[],
  doneMarker: boolean,
  open: (sse: SseStream) => ChoicesWriter,
): Promise<FastifyReply> {
  const signal = turns[0]!.signal;
  admitOrReject(turns[0]!.model);
  const sse = new SseStream(ctx, request, reply);
  const w = open(sse);
  const fail = (e: unknown) => streamFailed(ctx, request, sse, signal, e, w.error ?? ((b) => sse.data(b)), doneMarker);
  try {
    const full = turns.map((t, i) => {
      const c = w.choices[i]!;
      return { ...t, ...(c.onStart ? { onStart: c.onStart } : {}), onToken: c.onToken };
    });
    const results = await runChoices(ctx, request, full, (i, r) => w.choices[i]!.done?.(r));
    if (signal.aborted) {
      fail(null);
    } else {
      await w.finish(results);
      sse.end(doneMarker);
    }
  } catch (e) {
    fail(e);
  }
  return reply;
}

/** The finish reason the APIs report for an engine result. */
export function apiFinishReason(r: GenerateResult, o: { stoppedByString: boolean; toolCalls: number; endedWithCall: boolean }): 'stop' | 'length' | 'tool_calls' {
  if (o.toolCalls > 0 && (o.endedWithCall || r.finishReason === 'stop')) return 'tool_calls';
  if (o.stoppedByString || r.finishReason === 'stop') return 'stop';
  return 'length';
}

/**
 * Runs a prompt renderer. Its HarmonyRequestErrors become 400s (via toApiError); anything else it
 * throws was still caused by this request's content, so it is a 400 too, logged for a look.
 */
export function renderOrReject<T>(log: FastifyBaseLogger, render: () => T): T {
  try {
    return render();
  } catch (e) {
    if (e instanceof HarmonyRequestError || e instanceof ApiError) throw e;
    log.warn({ err: e }, 'the prompt renderer failed on this request');
    throw new ApiError(400, `The request could not be rendered into a prompt: ${(e as Error).message}`, 'invalid_request_error', null, 'render_failed');
  }
}
