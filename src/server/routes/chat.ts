// POST /v1/chat/completions, streaming (SSE chunks, then `data: [DONE]`) and not. The request is
// rendered to a harmony prompt; the sampled tokens are parsed back into reasoning (`reasoning`,
// and `reasoning_content` for llama.cpp-style clients), content and tool calls. With n > 1 each
// choice has its own parser, message, logprobs and constraint (generation.ts runs the choices).
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { renderChatCompletion } from '../../harmony/index.js';
import { AssistantOutput, type OutputEvent } from '../assistant-output.js';
import { buildConstraint, forcedOutput, maskVocabSize } from '../constraints.js';
import { invalidRequest } from '../errors.js';
import { apiFinishReason, choiceCount, choiceSampling, choicesUsage, clientGone, completeChoices, completionBudget, renderOrReject, streamChoices } from '../generation.js';
import { lastUserText } from '../models.js';
import { ignoreUnknownParams } from '../ignored-params.js';
import { checkToolChoice, functionNames, stopList } from '../openai-params.js';
import { chatRequestSchema, type ChatRequestBody } from './chat-schema.js';
import { chatLogprobCount, ContentLogprobs, logitsProcessing } from '../logprobs.js';
import type { GenerateResult, TokenLogprob } from '../../engine/engine.js';
import { chatCompletion, errorResponses } from './response-schemas.js';

interface ChatDelta {
  role?: 'assistant';
  content?: string;
  reasoning?: string;
  reasoning_content?: string;
  tool_calls?: Array<{ index: number; id?: string; type?: 'function'; function: { name?: string; arguments: string } }>;
}

/**
 * Output events -> chat deltas, and the whole message they add up to. Several analysis (or
 * text) messages are joined with "\n", as vLLM joins them.
 */
class ChatMessageBuilder {
  constructor(private readonly showReasoning: boolean) {}

  content = '';
  reasoning = '';
  readonly toolCalls: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }> = [];
  private sepContent = false;
  private sepReasoning = false;

  apply(events: OutputEvent[]): ChatDelta[] {
    const out: ChatDelta[] = [];
    for (const e of events) {
      switch (e.type) {
        case 'reasoning_start':
          this.sepReasoning = this.reasoning !== '';
          break;
        case 'reasoning_delta': {
          if (!this.showReasoning) break;
          const text = (this.sepReasoning ? '\n' : '') + e.text;
          this.sepReasoning = false;
          this.reasoning += text;
          out.push({ reasoning: text, reasoning_content: text });
          break;
        }
        case 'text_start':
          this.sepContent = this.content !== '';
          break;
        case 'text_delta': {
          const text = (this.sepContent ? '\n' : '') + e.text;
          this.sepContent = false;
          this.content += text;
          out.push({ content: text });
          break;
        }
        case 'tool_start':
          this.toolCalls.push({ id: e.id, type: 'function', function: { name: e.name, arguments: '' } });
          out.push({ tool_calls: [{ index: e.index, id: e.id, type: 'function', function: { name: e.name, arguments: '' } }] });
          break;
        case 'tool_delta':
          this.toolCalls[e.index]!.function.arguments += e.text;
          out.push({ tool_calls: [{ index: e.index, function: { arguments: e.text } }] });
          break;
        case 'reasoning_end':
        case 'text_end':
        case 'tool_end':
          break;
      }
    }
    return out;
  }
}

export const chatRoutes: FastifyPluginAsync = async (app) => {
  const ctx = app.gptOss;
  const schema = { body: chatRequestSchema, response: { 200: chatCompletion, ...errorResponses } };
  const preValidation = ignoreUnknownParams(chatRequestSchema, ctx.params);
  app.post<{ Body: ChatRequestBody }>('/v1/chat/completions', { schema, preValidation }, async (request, reply) => {
    const body = request.body;
    ctx.models.check(body.model);
    const n = choiceCount(body.n);
    checkToolChoice(body.tool_choice);
    if (body.stream_options && !body.stream) throw invalidRequest('stream_options is only allowed when stream is true', 'stream_options');
    const tools = (body.tools ?? []).map((t) => ({ name: t.function.name, parameters: t.function.parameters }));
    const toolNames = functionNames(tools, body.tool_choice, (i) => `tools[${i}].function.parameters`);
    // Every spelling clients use: OpenAI's, OpenRouter's `reasoning`, the template argument.
    const effort = body.reasoning_effort ?? body.reasoning?.effort ?? body.chat_template_kwargs?.reasoning_effort ?? undefined;
    // vLLM's include_reasoning: false, OpenRouter's reasoning.exclude (or enabled: false).
    const showReasoning = body.include_reasoning !== false && body.reasoning?.exclude !== true && body.reasoning?.enabled !== false;
    const requestedTokens = body.max_completion_tokens ?? body.max_tokens;
    const { model: served, engine, tokenizer, prompt } = ctx.models.choose(
      reply,
      { model: body.model, effort, tools: tools.length, maxTokens: requestedTokens, lastUserText: () => lastUserText(body.messages) },
      (tokenizer) =>
        renderOrReject(request.log, () => renderChatCompletion({ ...body, reasoning_effort: effort }, { tokenizer, ...ctx.promptOptions })),
    );
    const promptIds = prompt.tokenIds;
    // Structured output: a forced tool call or a JSON answer, as a token mask.
    const forced = forcedOutput(
      {
        toolChoice: body.tool_choice,
        tools: tools.map((t, i) => ({ ...t, param: `tools[${i}].function.parameters` })),
        format: body.response_format,
        formatParam: 'response_format',
        nestedIn: 'json_schema',
      },
      ctx.constraints,
    );
    const budgetParam = body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
    const maxTokens = completionBudget(ctx.limits, requestedTokens, promptIds.length, engine.contextLength, { prompt: 'messages', maxTokens: budgetParam });
    const samplings = choiceSampling(body, n);
    const processing = logitsProcessing(body, maskVocabSize(engine, tokenizer));
    const logprobs = chatLogprobCount(body);
    const signal = clientGone(ctx, reply);
    const id = `chatcmpl-${randomUUID().replaceAll('-', '')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = served.name;
    const base = { model: served, engine, promptIds, maxTokens, processing, logprobs, signal, ignoreEos: body.ignore_eos === true };

    /** One choice: its parser, message, content logprobs, constraint and seed. */
    const choice = (index: number) => {
      const output = new AssistantOutput({
        tokenizer,
        tools: toolNames,
        stop: stopList(body.stop),
        warn: (m) => request.log.debug({ parser: m }, 'malformed model output recovered'),
      });
      const builder = new ChatMessageBuilder(showReasoning);
      const lps = new ContentLogprobs(tokenizer, output);
      const constraint = buildConstraint(forced, tokenizer, maskVocabSize(engine, tokenizer), ctx.constraints, maxTokens);
      const turn = { ...base, sampling: samplings[index]!, ...(constraint ? { constraint } : {}) };
      const push = (t: number, lp: TokenLogprob | undefined) => builder.apply(lps.push(t, lp));
      const end = () => builder.apply(lps.end());
      const finish = (r: GenerateResult) => {
        const reason = apiFinishReason(r, { stoppedByString: output.stoppedByString, toolCalls: builder.toolCalls.length, endedWithCall: output.endedWithCall });
        ctx.metrics.finished.inc({ reason });
        return reason;
      };
      return { index, output, builder, lps, turn, push, end, finish };
    };
    const choices = Array.from({ length: n }, (_, i) => choice(i));
    // reasoning tokens add up over the choices too
    const usage = (results: ReadonlyArray<{ tokens: readonly number[]; cachedTokens: number }>) => ({
      ...choicesUsage(promptIds.length, results),
      completion_tokens_details: { reasoning_tokens: choices.reduce((a, c) => a + c.output.reasoningTokens, 0) },
    });

    if (!body.stream) {
      const results = await completeChoices(
        ctx,
        request,
        reply,
        choices.map((c) => ({
          ...c.turn,
          onToken: (t: number, lp?: TokenLogprob) => {
            c.push(t, lp);
            return !c.output.stoppedByString;
          },
        })),
      );
      if (!results) return reply;
      return {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: choices.map((c, i) => {
          c.end();
          const finish = c.finish(results[i]!);
          const { builder } = c;
          const hasTools = builder.toolCalls.length > 0;
          return {
            index: i,
            message: {
              role: 'assistant',
              content: hasTools && builder.content === '' ? null : builder.content,
              reasoning: builder.reasoning === '' ? null : builder.reasoning,
              reasoning_content: builder.reasoning === '' ? null : builder.reasoning,
              ...(hasTools ? { tool_calls: builder.toolCalls } : {}),
              refusal: null,
            },
            logprobs: logprobs === undefined ? null : { content: c.lps.content, refusal: null },
            finish_reason: finish,
          };
        }),
        usage: usage(results),
      };
    }

    const includeUsage = body.stream_options?.include_usage === true;
    // a choice's content delta carries the logprobs of its tokens since its last one
    const chunk = (c: (typeof choices)[number], delta: ChatDelta, finish: string | null = null) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: c.index, delta, logprobs: logprobs === undefined || (delta.content === undefined && finish === null) ? null : { content: c.lps.take(), refusal: null }, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });
    return streamChoices(
      ctx,
      request,
      reply,
      choices.map((c) => c.turn),
      true,
      (sse) => ({
        choices: choices.map((c) => ({
          onStart: () => sse.data(chunk(c, { role: 'assistant', content: '' })),
          onToken: (t: number, lp?: TokenLogprob) => {
            for (const d of c.push(t, lp)) sse.data(chunk(c, d));
            return !c.output.stoppedByString;
          },
          // each choice's finish_reason chunk as it ends
          done: (result: GenerateResult) => {
            for (const d of c.end()) sse.data(chunk(c, d));
            sse.data(chunk(c, {}, c.finish(result)));
          },
        })),
        finish: (results) => {
          if (includeUsage) sse.data({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: usage(results) });
        },
      }),
    );
  });
};
