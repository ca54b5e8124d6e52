// POST /v1/messages (Anthropic's Messages API, streaming and not) and
// POST /v1/messages/count_tokens, so Anthropic SDK clients and Claude Code can use the server
// (base URL: the server's root). The request renders the same harmony prompt as Chat Completions
// (anthropic/request.ts); the output maps to content blocks: analysis -> `thinking` (its
// `signature` the sealed reasoning, opened when sent back), final -> `text`, calls ->
// `tool_use`. Errors are Anthropic-shaped: {"type": "error", "error": {"type", "message"}}.
import { randomBytes } from 'node:crypto';
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { renderChatCompletion } from '../../harmony/index.js';
import { toChatRequest } from '../anthropic/request.js';
import { AssistantOutput, type OutputEvent } from '../assistant-output.js';
import { buildConstraint, forcedOutput, maskVocabSize } from '../constraints.js';
import { toApiError, validationError, type ErrorBody } from '../errors.js';
import { clientGone, completeTurn, completionBudget, renderOrReject, samplingOptions, streamTurn } from '../generation.js';
import { ignoreUnknownParams } from '../ignored-params.js';
import { lastUserText } from '../models.js';
import { checkToolChoice, functionNames } from '../openai-params.js';
import { countTokensRequestSchema, messagesRequestSchema, type MessagesRequestBody } from './messages-schema.js';

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  503: 'overloaded_error',
};

function anthropicError(status: number, message: string) {
  return { type: 'error', error: { type: ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error'), message } };
}

type Block = Record<string, unknown> & { type: string };

/** Output events -> content blocks, and (streaming) the events that build them. */
class BlocksBuilder {
  readonly blocks: Block[] = [];
  private open: { index: number; block: Block } | null = null;

  constructor(
    private readonly emit: (event: string, payload: Record<string, unknown>) => void,
    private readonly seal: (text: string) => string,
    private readonly thinking: boolean,
    /** thinking.display "omitted": thinking blocks with their signature, without the text. */
    private readonly omitThinking = false,
  ) {}

  apply(events: OutputEvent[]): void {
    for (const e of events) {
      switch (e.type) {
        case 'reasoning_start':
          if (this.thinking) this.start({ type: 'thinking', thinking: '', signature: '' });
          break;
        case 'reasoning_delta':
          if (this.thinking && !this.omitThinking) this.delta({ type: 'thinking_delta', thinking: e.text }, 'thinking', e.text);
          break;
        case 'reasoning_end':
          if (this.thinking && this.open) {
            const signature = this.seal(e.text);
            this.open.block['signature'] = signature;
            this.emit('content_block_delta', { index: this.open.index, delta: { type: 'signature_delta', signature } });
            this.stop();
          }
          break;
        case 'text_start':
          this.start({ type: 'text', text: '' });
          break;
        case 'text_delta':
          this.delta({ type: 'text_delta', text: e.text }, 'text', e.text);
          break;
        case 'tool_start':
          this.start({ type: 'tool_use', id: `toolu_${e.id.replace(/^call_/, '')}`, name: e.name, input: {} }, { partial: '' });
          break;
        case 'tool_delta':
          this.delta({ type: 'input_json_delta', partial_json: e.text }, 'partial', e.text);
          break;
        case 'tool_end': {
          const b = this.open?.block;
          if (b) {
            let input: unknown = {};
            try {
              input = JSON.parse(e.arguments === '' ? '{}' : e.arguments);
            } catch {
              // Not JSON: the raw text, so nothing the model wrote is lost.
              input = { _raw: e.arguments };
            }
            b['input'] = input;
            delete b['partial'];
          }
          this.stop();
          break;
        }
        case 'text_end':
          this.stop();
          break;
      }
    }
  }

  private start(block: Block, scratch: Record<string, unknown> = {}): void {
    const index = this.blocks.length;
    this.blocks.push(Object.assign(block, scratch));
    this.open = { index, block };
    const shown = { ...block };
    delete shown['partial'];
    this.emit('content_block_start', { index, content_block: shown });
  }

  private delta(delta: Record<string, unknown>, field: string, text: string): void {
    if (!this.open) return;
    this.open.block[field] = String(this.open.block[field] ?? '') + text;
    this.emit('content_block_delta', { index: this.open.index, delta });
  }

  private stop(): void {
    if (!this.open) return;
    this.emit('content_block_stop', { index: this.open.index });
    this.open = null;
  }
}

export const messagesRoutes: FastifyPluginAsync = async (app) => {
  const ctx = app.gptOss;
  // Errors, from validation to the engine, in Anthropic's shape.
  const errorHandler = (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const err = (error as { validation?: unknown }).validation ? validationError((error as unknown as { validation: Parameters<typeof validationError>[0] }).validation) : toApiError(error);
    if (err.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ status: err.status, param: err.param, message: err.message }, 'request refused');
    return reply.code(err.status).headers(err.headers).send(anthropicError(err.status, err.message));
  };

  /** The request rendered: model, engine, prompt, and what the output needs. */
  const prepare = (request: FastifyRequest, reply: FastifyReply, body: MessagesRequestBody, maxTokens: number | undefined) => {
    ctx.models.check(body.model);
    const chat = toChatRequest(body, ctx.reasoningSeal, (m) => request.log.warn(m));
    checkToolChoice(chat['tool_choice']);
    const tools = ((chat['tools'] ?? []) as Array<{ function: { name: string; parameters?: unknown } }>).map((t, i) => ({
      name: t.function.name,
      parameters: t.function.parameters,
      param: `tools[${i}].input_schema`,
    }));
    const toolNames = functionNames(tools, chat['tool_choice'], (i) => tools[i]!.param);
    const chosen = ctx.models.choose(
      reply,
      { model: body.model, effort: chat['reasoning_effort'] as string | undefined, tools: tools.length, maxTokens, lastUserText: () => lastUserText(chat['messages']) },
      (tokenizer) => renderOrReject(request.log, () => renderChatCompletion(chat, { tokenizer, ...ctx.promptOptions })),
    );
    return { ...chosen, chat, tools, toolNames };
  };

  app.post(
    '/v1/messages/count_tokens',
    { schema: { body: countTokensRequestSchema }, preValidation: ignoreUnknownParams(countTokensRequestSchema, ctx.params), errorHandler },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const { prompt } = prepare(request, reply, request.body as MessagesRequestBody, undefined);
      return { input_tokens: prompt.tokenIds.length };
    },
  );

  app.post(
    '/v1/messages',
    { schema: { body: messagesRequestSchema }, preValidation: ignoreUnknownParams(messagesRequestSchema, ctx.params), errorHandler },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const body = request.body as MessagesRequestBody;
      const { model: served, engine, tokenizer, prompt, chat, tools, toolNames } = prepare(request, reply, body, body.max_tokens);
      const promptIds = prompt.tokenIds;
      const forced = forcedOutput({ toolChoice: chat['tool_choice'], tools, format: undefined, formatParam: 'tool_choice', nestedIn: null }, ctx.constraints);
      // As Anthropic's API does for its newer models, max_tokens may reach past the context window
      // (Claude Code asks for 32000): the turn gets what is left, and stops with
      // model_context_window_exceeded when it runs out there.
      const left = engine.contextLength - promptIds.length;
      const clamped = left > 0 && body.max_tokens > left;
      const maxTokens = completionBudget(ctx.limits, clamped ? left : body.max_tokens, promptIds.length, engine.contextLength, { prompt: 'messages', maxTokens: 'max_tokens' });
      const constraint = buildConstraint(forced, tokenizer, maskVocabSize(engine, tokenizer), ctx.constraints, maxTokens);
      const sampling = samplingOptions(body);
      const stops = body.stop_sequences ?? [];
      const output = new AssistantOutput({ tokenizer, tools: toolNames, stop: stops, warn: (m) => request.log.debug({ parser: m }, 'malformed model output recovered') });
      const signal = clientGone(ctx, reply);
      const id = `msg_${randomBytes(12).toString('hex')}`;
      const thinking = body.thinking?.type !== 'disabled';
      const omitThinking = body.thinking?.display === 'omitted';
      const seal = (text: string) => ctx.reasoningSeal.seal(text);
      const stopReason = (r: { finishReason: string }, b: BlocksBuilder) =>
        b.blocks.some((x) => x.type === 'tool_use') && !output.stoppedByString
          ? 'tool_use'
          : output.stoppedByString
            ? 'stop_sequence'
            : r.finishReason === 'stop'
              ? 'end_turn'
              : clamped || r.finishReason === 'context'
                ? 'model_context_window_exceeded'
                : 'max_tokens';
      const usage = (r: { tokens: readonly number[]; cachedTokens: number }) => ({
        input_tokens: promptIds.length - r.cachedTokens,
        cache_read_input_tokens: r.cachedTokens,
        cache_creation_input_tokens: 0,
        output_tokens: r.tokens.length,
      });
      const message = (blocks: Block[], extra: Record<string, unknown>) => ({
        id,
        type: 'message',
        role: 'assistant',
        model: served.name,
        content: blocks,
        stop_reason: null,
        stop_sequence: null,
        ...extra,
      });
      const turn = { model: served, engine, promptIds, maxTokens, sampling, signal, constraint };

      if (!body.stream) {
        const builder = new BlocksBuilder(() => {}, seal, thinking, omitThinking);
        const result = await completeTurn(ctx, request, reply, {
          ...turn,
          onToken: (t) => {
            builder.apply(output.push(t));
            return !output.stoppedByString;
          },
        });
        if (!result) return reply;
        builder.apply(output.end());
        const reason = stopReason(result, builder);
        ctx.metrics.finished.inc({ reason: reason === 'tool_use' ? 'tool_calls' : reason === 'max_tokens' || reason === 'model_context_window_exceeded' ? 'length' : 'stop' });
        return message(builder.blocks, { stop_reason: reason, usage: usage(result) });
      }

      return streamTurn(ctx, request, reply, turn, false, (sse) => {
        const emit = (event: string, payload: Record<string, unknown>) => sse.event(event, { type: event, ...payload });
        const builder = new BlocksBuilder(emit, seal, thinking, omitThinking);
        return {
          onStart: () => {
            emit('message_start', { message: message([], { usage: { input_tokens: promptIds.length, output_tokens: 0 } }) });
            emit('ping', {});
          },
          onToken: (t) => {
            builder.apply(output.push(t));
            return !output.stoppedByString;
          },
          finish: (result) => {
            builder.apply(output.end());
            const reason = stopReason(result, builder);
            ctx.metrics.finished.inc({ reason: reason === 'tool_use' ? 'tool_calls' : reason === 'max_tokens' || reason === 'model_context_window_exceeded' ? 'length' : 'stop' });
            emit('message_delta', { delta: { stop_reason: reason, stop_sequence: null }, usage: { output_tokens: result.tokens.length } });
            emit('message_stop', {});
          },
          error: (b: ErrorBody) => emit('error', anthropicError(b.error.type === 'server_error' ? 500 : 400, b.error.message)),
        };
      });
    },
  );
};
