// POST /v1/completions: the prompt is taken as harmony text (special-token strings are format
// tokens here) or as token ids, with no chat template; the completion is the decoded tokens,
// special tokens written out, minus the stop token that ended it (as OpenAI leaves out its stop
// sequence). With n > 1 each choice has its own decoder, stop strings and logprobs. echo with
// logprobs also gives the prompt's tokens their logprobs (the first token's null), computed once,
// by the first choice's prefill (then the others hit its prefix-cache pages).
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { renderRawPrompt } from '../../harmony/index.js';
import { invalidRequest, unsupported } from '../errors.js';
import { choiceCount, choiceSampling, choicesUsage, clientGone, completeChoices, completionBudget, renderOrReject, stopTokens, streamChoices, type Turn } from '../generation.js';
import { ignoreUnknownParams } from '../ignored-params.js';
import { stopList } from '../openai-params.js';
import { StopStringMatcher } from '../stop-strings.js';
import { CompletionLogprobs, logitsProcessing } from '../logprobs.js';
import type { GenerateResult, TokenLogprob } from '../../engine/engine.js';
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
    const n = choiceCount(body.n);
    if (body.best_of !== undefined && body.best_of !== null && body.best_of !== 1) throw unsupported('best_of', 'only best_of=1 is supported');
    if (body.suffix) throw unsupported('suffix', 'insertion (suffix) is not supported by gpt-oss');
    if (body.stream_options && !body.stream) throw invalidRequest('stream_options is only allowed when stream is true', 'stream_options');
    const { model: served, engine, tokenizer, prompt } = ctx.models.choose<ReturnType<typeof renderRawPrompt>>(
      reply,
      { model: body.model, effort: null, tools: 0, maxTokens: body.max_tokens, lastUserText: (p) => p.text },
      (tokenizer) => renderOrReject(request.log, () => renderRawPrompt(body.prompt, { tokenizer })),
    );
    const promptIds = prompt.tokenIds;
    const maxTokens = completionBudget(ctx.limits, body.max_tokens, promptIds.length, engine.contextLength, { prompt: 'prompt', maxTokens: 'max_tokens' });
    const samplings = choiceSampling(body, n);
    const processing = logitsProcessing(body, maskVocabSize(engine, tokenizer));
    const logprobs = body.logprobs ?? undefined;
    const stops = new Set(stopTokens(engine));
    const echo = body.echo ? prompt.text : '';
    const id = `cmpl-${randomUUID().replaceAll('-', '')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = served.name;
    const signal = clientGone(ctx, reply);
    const base = { model: served, engine, promptIds, maxTokens, processing, logprobs, signal, ignoreEos: body.ignore_eos === true };
    const promptLogprobs = body.echo && logprobs !== undefined;
    /** The prompt's logprobs, once choice 0's prefill has them (echo + logprobs). */
    let promptLps: readonly (TokenLogprob | null)[] | null = null;
    const withPrompt = (c: { lps: CompletionLogprobs }) => {
      if (promptLps && c.lps.length === 0) c.lps.pushPrompt(promptIds, promptLps);
    };

    /** One choice: its decoder, stop strings, text, logprobs and seed. */
    const choice = (index: number) => {
      const lps = new CompletionLogprobs(tokenizer);
      const decoder = tokenizer.createStreamDecoder();
      const matcher = new StopStringMatcher(stopList(body.stop));
      const c = {
        index,
        lps,
        matcher,
        text: echo,
        sent: 0,
        turn: { ...base, sampling: samplings[index]! } as Omit<Turn, 'onToken'>,
        // every token's logprobs, at the offset in the text where its characters start (a stop token adds none)
        offset: echo.length,
        /** Text this token adds; the stop token that ends generation adds none. */
        step(t: number, lp: TokenLogprob | undefined): string {
          const delta = stops.has(t) ? '' : matcher.push(decoder.push(t));
          if (lp) lps.push(t, lp, c.offset);
          c.offset += delta.length;
          return delta;
        },
        finalText: (): string => (matcher.stopped ? '' : matcher.push(decoder.flush()) + matcher.flush()),
        finish(r: { finishReason: string }): string {
          const reason = matcher.stopped || r.finishReason === 'stop' ? 'stop' : 'length';
          ctx.metrics.finished.inc({ reason });
          return reason;
        },
      };
      return c;
    };
    const choices = Array.from({ length: n }, (_, i) => choice(i));
    /** Streaming: sends the echo of the prompt once per choice (with prompt logprobs, once they are known). */
    let sendEcho: (c: (typeof choices)[number]) => void = () => {};
    if (promptLogprobs) {
      choices[0]!.turn = {
        ...choices[0]!.turn,
        promptLogprobs: logprobs,
        onPromptLogprobs: (lps) => {
          promptLps = lps;
          for (const c of choices) withPrompt(c);
          sendEcho(choices[0]!);
        },
      };
    }
    const usage = (results: ReadonlyArray<{ tokens: readonly number[]; cachedTokens: number }>) => choicesUsage(promptIds.length, results);

    if (!body.stream) {
      const results = await completeChoices(
        ctx,
        request,
        reply,
        choices.map((c) => ({
          ...c.turn,
          onToken: (t: number, lp?: TokenLogprob) => {
            c.text += c.step(t, lp);
            return !c.matcher.stopped;
          },
        })),
      );
      if (!results) return reply;
      return {
        id,
        object: 'text_completion',
        created,
        model,
        choices: choices.map((c, i) => {
          c.text += c.finalText();
          return { index: i, text: c.text, logprobs: logprobs === undefined ? null : c.lps.slice(), finish_reason: c.finish(results[i]!) };
        }),
        usage: usage(results),
      };
    }

    const includeUsage = body.stream_options?.include_usage === true;
    const chunkLogprobs = (c: (typeof choices)[number]) => {
      if (logprobs === undefined) return null;
      const out = c.lps.slice(c.sent);
      c.sent = c.lps.length;
      return out;
    };
    const chunk = (c: (typeof choices)[number], delta: string, finish: string | null = null) => ({
      id,
      object: 'text_completion',
      created,
      model,
      choices: [{ index: c.index, text: delta, logprobs: chunkLogprobs(c), finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });
    const echoed = new Set<number>();
    return streamChoices(
      ctx,
      request,
      reply,
      choices.map((c) => c.turn),
      true,
      (sse) => {
        sendEcho = (c) => {
          if (echo === '' || echoed.has(c.index) || (promptLogprobs && !promptLps)) return;
          echoed.add(c.index);
          sse.data(chunk(c, echo));
        };
        return {
          choices: choices.map((c) => ({
            onStart: () => sendEcho(c),
            onToken: (t: number, lp?: TokenLogprob) => {
              const delta = c.step(t, lp);
              if (delta !== '') sse.data(chunk(c, delta));
              return !c.matcher.stopped;
            },
            // each choice's finish_reason chunk as it ends
            done: (result: GenerateResult) => {
              sendEcho(c);
              const rest = c.finalText();
              if (rest !== '') sse.data(chunk(c, rest));
              sse.data(chunk(c, '', c.finish(result)));
            },
          })),
          finish: (results) => {
            if (includeUsage) sse.data({ id, object: 'text_completion', created, model, choices: [], usage: usage(results) });
          },
        };
      },
    );
  });
};
