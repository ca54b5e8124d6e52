// POST /v1/chat/completions, streaming (SSE chunks, then `data: [DONE]`) and not. The request is
// rendered to a harmony prompt; the sampled tokens are parsed back into reasoning (`reasoning`,
// and `reasoning_content` for llama.cpp-style clients), content and tool calls.
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { renderChatCompletion } from '../../harmony/index.js';
import { AssistantOutput, type OutputEvent } from '../assistant-output.js';
import { buildConstraint, forcedOutput, maskVocabSize } from '../constraints.js';
import { invalidRequest } from '../errors.js';
import { apiFinishReason, clientGone, completeTurn, completionBudget, renderOrReject, samplingOptions, streamTurn } from '../generation.js';
import { lastUserText } from '../models.js';
import { ignoreUnknownParams } from '../ignored-params.js';
import { checkToolChoice, functionNames, rejectUnsupported, stopList } from '../openai-params.js';
import { chatRequestSchema, type ChatRequestBody } from './chat-schema.js';
import { chatLogprob, chatLogprobCount, logitsProcessing } from '../logprobs.js';
import type { TokenLogprob } from '../../engine/engine.js';
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
    rejectUnsupported(body);
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
    const constraint = buildConstraint(forced, tokenizer, maskVocabSize(engine, tokenizer), ctx.constraints, maxTokens);
    const sampling = samplingOptions(body);
    const processing = logitsProcessing(body, maskVocabSize(engine, tokenizer));
    const logprobs = chatLogprobCount(body);
    const output = new AssistantOutput({
      tokenizer,
      tools: toolNames,
      stop: stopList(body.stop),
      warn: (m) => request.log.debug({ parser: m }, 'malformed model output recovered'),
    });
    const builder = new ChatMessageBuilder(showReasoning);
    const signal = clientGone(ctx, reply);
    const id = `chatcmpl-${randomUUID().replaceAll('-', '')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = served.name;
    const usage = (result: { tokens: readonly number[]; cachedTokens: number }) => ({
      prompt_tokens: promptIds.length,
      completion_tokens: result.tokens.length,
      total_tokens: promptIds.length + result.tokens.length,
      // prompt tokens whose prefill the prefix cache saved
      prompt_tokens_details: { cached_tokens: result.cachedTokens },
      completion_tokens_details: { reasoning_tokens: output.reasoningTokens },
    });

    const turn = { model: served, engine, promptIds, maxTokens, sampling, processing, logprobs, signal, constraint, ignoreEos: body.ignore_eos === true };
    // logprobs of the tokens the client reads as content: the plain tokens since the last special
    // one (harmony's <|message|>, <|end|>, ...) are held until the parser turns them into text
    // (it may buffer a few), and dropped when they turn out a header, reasoning or a tool call
    type Entry = ReturnType<typeof chatLogprob>;
    const content: Entry[] = [];
    let held: Entry[] = [];
    const settle = (events: OutputEvent[]) => {
      if (output.inText || events.some((e) => e.type === 'text_end')) {
        if (events.some((e) => e.type === 'text_delta')) content.push(...held.splice(0));
      }
      return builder.apply(events);
    };
    const push = (t: number, lp: TokenLogprob | undefined): ChatDelta[] => {
      const special = tokenizer.isSpecialToken(t);
      if (lp && !special) held.push(chatLogprob(tokenizer, t, lp));
      // a special token may flush the text before it, then ends what was held
      const deltas = settle(output.push(t));
      if (special) held = [];
      return deltas;
    };

    if (!body.stream) {
      const result = await completeTurn(ctx, request, reply, {
        ...turn,
        onToken: (t, lp) => {
          push(t, lp);
          return !output.stoppedByString;
        },
      });
      if (!result) return reply;
      settle(output.end());
      const finish = apiFinishReason(result, { stoppedByString: output.stoppedByString, toolCalls: builder.toolCalls.length, endedWithCall: output.endedWithCall });
      ctx.metrics.finished.inc({ reason: finish });
      const hasTools = builder.toolCalls.length > 0;
      return {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: hasTools && builder.content === '' ? null : builder.content,
              reasoning: builder.reasoning === '' ? null : builder.reasoning,
              reasoning_content: builder.reasoning === '' ? null : builder.reasoning,
              ...(hasTools ? { tool_calls: builder.toolCalls } : {}),
              refusal: null,
            },
            logprobs: logprobs === undefined ? null : { content, refusal: null },
            finish_reason: finish,
          },
        ],
        usage: usage(result),
      };
    }

    const includeUsage = body.stream_options?.include_usage === true;
    // a content delta carries the logprobs of the tokens since the last one
    let sent = 0;
    const chunkLogprobs = (delta: ChatDelta, finish: string | null) => {
      if (logprobs === undefined || (delta.content === undefined && finish === null)) return null;
      const out = { content: content.slice(sent), refusal: null };
      sent = content.length;
      return out;
    };
    const chunk = (delta: ChatDelta, finish: string | null = null) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, logprobs: chunkLogprobs(delta, finish), finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });
    return streamTurn(ctx, request, reply, turn, true, (sse) => ({
      onStart: () => sse.data(chunk({ role: 'assistant', content: '' })),
      onToken: (t, lp) => {
        for (const d of push(t, lp)) sse.data(chunk(d));
        return !output.stoppedByString;
      },
      finish: (result) => {
        for (const d of settle(output.end())) sse.data(chunk(d));
        const finish = apiFinishReason(result, { stoppedByString: output.stoppedByString, toolCalls: builder.toolCalls.length, endedWithCall: output.endedWithCall });
        ctx.metrics.finished.inc({ reason: finish });
        sse.data(chunk({}, finish));
        if (includeUsage) sse.data({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: usage(result) });
      },
    }));
  });
};
