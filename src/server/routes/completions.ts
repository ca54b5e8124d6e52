// POST /v1/completions: the prompt is taken as harmony text (special-token strings are format
// tokens here) or as token ids, with no chat template; the completion is the decoded tokens,
// special tokens written out, minus the stop token that ended it (as OpenAI leaves out its stop
// sequence).
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { renderRawPrompt } from '../../harmony/index.js';
import { invalidRequest, unsupported } from '../errors.js';
import { clientGone, completeTurn, completionBudget, renderOrReject, samplingOptions, stopTokens, streamTurn } from '../generation.js';
import { ignoreUnknownParams } from '../ignored-params.js';
import { rejectUnsupported, stopList } from '../openai-params.js';
import { StopStringMatcher } from '../stop-strings.js';
import { CompletionLogprobs, logitsProcessing } from '../logprobs.js';
import { maskVocabSize } from '../constraints.js';
import { completionsRequestSchema, type CompletionsRequestBody } from './completions-schema.js';
import { errorResponses, textCompletion } from './response-schemas.js';

export const completionsRoutes: FastifyPluginAsync = async (app) => {
  const ctx = app.gptOss;
  const schema = { body: completionsRequestSchema, response: { 200: textCompletion, ...errorResponses } };
  const preValidation = ignoreUnknownParams(completionsRequestSchema, ctx.params);
  app.post<{ Body: CompletionsRequestBody }>('/v1/completions', { schema, preValidation }, async (request, reply) => {
    const body = request.body;
    ctx.models.check(body.model);
    rejectUnsupported(body);
    if (body.best_of !== undefined && body.best_of !== null && body.best_of !== 1) throw unsupported('best_of', 'only best_of=1 is supported');
    if (body.suffix) throw unsupported('suffix', 'insertion (suffix) is not supported by gpt-oss');
    if (body.stream_options && !body.stream) throw invalidRequest('stream_options is only allowed when stream is true', 'stream_options');
    if (body.echo && body.logprobs !== undefined && body.logprobs !== null) throw unsupported('echo', 'echo with logprobs (the prompt tokens\' logprobs) is not supported; send echo or logprobs, not both');
    const { model: served, engine, tokenizer, prompt } = ctx.models.choose<ReturnType<typeof renderRawPrompt>>(
      reply,
      { model: body.model, effort: null, tools: 0, maxTokens: body.max_tokens, lastUserText: (p) => p.text },
      (tokenizer) => renderOrReject(request.log, () => renderRawPrompt(body.prompt, { tokenizer })),
    );
    const promptIds = prompt.tokenIds;
    const maxTokens = completionBudget(ctx.limits, body.max_tokens, promptIds.length, engine.contextLength, { prompt: 'prompt', maxTokens: 'max_tokens' });
    const sampling = samplingOptions(body);
    const processing = logitsProcessing(body, maskVocabSize(engine, tokenizer));
    const logprobs = body.logprobs ?? undefined;
    const lps = new CompletionLogprobs(tokenizer);
    const stops = new Set(stopTokens(engine));
    const decoder = tokenizer.createStreamDecoder();
    const matcher = new StopStringMatcher(stopList(body.stop));
    let text = body.echo ? prompt.text : '';
    const id = `cmpl-${randomUUID().replaceAll('-', '')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = served.name;
    const signal = clientGone(ctx, reply);
    /** Text this token adds; the stop token that ends generation adds none. */
    const next = (t: number): string => (stops.has(t) ? '' : matcher.push(decoder.push(t)));
    const finalText = (): string => (matcher.stopped ? '' : matcher.push(decoder.flush()) + matcher.flush());
    const finishOf = (r: { finishReason: string }) => (matcher.stopped || r.finishReason === 'stop' ? 'stop' : 'length');
    const usage = (result: { tokens: readonly number[]; cachedTokens: number }) => ({
      prompt_tokens: promptIds.length,
      completion_tokens: result.tokens.length,
      total_tokens: promptIds.length + result.tokens.length,
      // prompt tokens whose prefill the prefix cache saved
      prompt_tokens_details: { cached_tokens: result.cachedTokens },
    });

    const turn = { model: served, engine, promptIds, maxTokens, sampling, processing, logprobs, signal, ignoreEos: body.ignore_eos === true };
    // every token's logprobs, at the offset in the text where its characters start (a stop token adds none)
    let offset = text.length;
    const step = (t: number, lp: Parameters<typeof lps.push>[1] | undefined): string => {
      const delta = next(t);
      if (lp) lps.push(t, lp, offset);
      offset += delta.length;
      return delta;
    };

    if (!body.stream) {
      const result = await completeTurn(ctx, request, reply, {
        ...turn,
        onToken: (t, lp) => {
          text += step(t, lp);
          return !matcher.stopped;
        },
      });
      if (!result) return reply;
      text += finalText();
      const finish = finishOf(result);
      ctx.metrics.finished.inc({ reason: finish });
      return {
        id,
        object: 'text_completion',
        created,
        model,
        choices: [{ index: 0, text, logprobs: logprobs === undefined ? null : lps.slice(), finish_reason: finish }],
        usage: usage(result),
      };
    }

    const includeUsage = body.stream_options?.include_usage === true;
    let sent = 0;
    const chunkLogprobs = () => {
      if (logprobs === undefined) return null;
      const out = lps.slice(sent);
      sent = lps.length;
      return out;
    };
    const chunk = (delta: string, finish: string | null = null) => ({
      id,
      object: 'text_completion',
      created,
      model,
      choices: [{ index: 0, text: delta, logprobs: chunkLogprobs(), finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });
    return streamTurn(ctx, request, reply, turn, true, (sse) => ({
      onStart: () => {
        if (text !== '') sse.data(chunk(text));
      },
      onToken: (t, lp) => {
        const delta = step(t, lp);
        if (delta !== '') sse.data(chunk(delta));
        return !matcher.stopped;
      },
      finish: (result) => {
        const rest = finalText();
        if (rest !== '') sse.data(chunk(rest));
        const finish = finishOf(result);
        ctx.metrics.finished.inc({ reason: finish });
        sse.data(chunk('', finish));
        if (includeUsage) sse.data({ id, object: 'text_completion', created, model, choices: [], usage: usage(result) });
      },
    }));
  });
};
