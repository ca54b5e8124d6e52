// POST /v1/responses (streaming and not) and GET /v1/responses/{id}. Output items: `reasoning`
// (content `reasoning_text`), `message` (content `output_text`) and `function_call`, in the order
// the model wrote them. `previous_response_id` replays a stored response's input and output
// before this request's input; `item_reference` input items stand for stored items (the AI SDK
// sends them in tool loops). Streaming sends the event sequence OpenAI's API sends. Content tokens'
// logprobs (include: message.output_text.logprobs) ride on the output_text parts and deltas.
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { renderResponsesInput } from '../../harmony/index.js';
import { AssistantOutput, type OutputEvent } from '../assistant-output.js';
import { buildConstraint, forcedOutput, maskVocabSize } from '../constraints.js';
import type { ResponseStore } from '../store/index.js';
import { ApiError, invalidRequest, unsupported } from '../errors.js';
import { ContentLogprobs, type ContentLogprob } from '../logprobs.js';
import { clientGone, completeTurn, completionBudget, renderOrReject, samplingOptions, streamTurn } from '../generation.js';
import { lastUserText } from '../models.js';
import { ignoreUnknownParams, warnOnce } from '../ignored-params.js';
import { checkToolChoice, dropBuiltinTools, functionNames } from '../openai-params.js';
import { responsesRequestSchema, type ResponsesRequestBody } from './responses-schema.js';
import { errorResponses, responseObject as responseSchema } from './response-schemas.js';

const newId = (prefix: string) => `${prefix}_${randomBytes(16).toString('hex')}`;

/**
 * Input items with `item_reference` ones (`{"type": "item_reference", "id"}`, or an `{"id"}`
 * alone, as OpenAI's ItemReference allows) replaced by the stored items they name; 404 for an id
 * no stored response holds.
 */
async function resolveItemReferences(store: ResponseStore, owner: string, items: Array<Record<string, unknown>>): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for (const [i, item] of items.entries()) {
    const reference = item['type'] === 'item_reference' || (item['type'] === undefined && item['role'] === undefined && Object.keys(item).every((k) => k === 'id'));
    if (!reference) {
      out.push(item);
      continue;
    }
    const id = item['id'];
    if (typeof id !== 'string') throw invalidRequest(`input[${i}].id must be the id of a stored item`, `input[${i}].id`);
    const found = await store.item(owner, id);
    if (found === undefined) throw new ApiError(404, `Item with id '${id}' not found.`, 'invalid_request_error', `input[${i}].id`, 'not_found');
    out.push(found as Record<string, unknown>);
  }
  return out;
}

type Item = Record<string, unknown> & { type: string; id: string };
type Emit = (type: string, payload: Record<string, unknown>) => void;

/** Output events -> output items, and (when streaming) the events that build them. */
class ResponseItemsBuilder {
  readonly items: Item[] = [];
  private open: { item: Item; index: number; text: string } | null = null;
  /** Set before the final events when max_output_tokens cut the answer off. */
  cutOff = false;

  constructor(
    private readonly emit: Emit,
    private readonly o: {
      /** Seals each reasoning item's text into its `encrypted_content` (include: reasoning.encrypted_content). */
      seal?: ((text: string) => string) | undefined;
      /** Declared namespace members by full name `ns.name`: their calls carry `namespace`. */
      namespaced?: ReadonlyMap<string, { namespace: string; name: string }>;
      /** The content tokens' logprobs (include: message.output_text.logprobs): on each delta and output_text part. */
      logprobs?: ContentLogprobs | undefined;
    } = {},
  ) {}

  /** The open output_text part's logprobs so far. */
  private partLogprobs: ContentLogprob[] = [];

  apply(events: OutputEvent[]): void {
    for (const e of events) {
      switch (e.type) {
        case 'reasoning_start':
          this.add({ type: 'reasoning', id: newId('rs'), summary: [], content: [] }, { type: 'reasoning_text', text: '' });
          break;
        case 'text_start':
          this.partLogprobs = [];
          this.add(
            { type: 'message', id: newId('msg'), role: 'assistant', status: 'in_progress', content: [] },
            { type: 'output_text', text: '', annotations: [], logprobs: [] },
          );
          break;
        case 'tool_start': {
          const member = this.o.namespaced?.get(e.name);
          const name = member ? { name: member.name, namespace: member.namespace } : { name: e.name };
          this.add({ type: 'function_call', id: newId('fc'), call_id: e.id, ...name, arguments: '', status: 'in_progress' }, null);
          break;
        }
        case 'reasoning_delta':
          this.delta('response.reasoning_text.delta', e.text);
          break;
        case 'text_delta': {
          const logprobs = this.o.logprobs?.take() ?? [];
          this.partLogprobs.push(...logprobs);
          this.delta('response.output_text.delta', e.text, { logprobs });
          break;
        }
        case 'tool_delta':
          this.delta('response.function_call_arguments.delta', e.text);
          break;
        case 'reasoning_end':
          this.finish('reasoning_text', { content: [{ type: 'reasoning_text', text: e.text }], ...(this.o.seal ? { encrypted_content: this.o.seal(e.text) } : {}) });
          break;
        case 'text_end':
          this.partLogprobs.push(...(this.o.logprobs?.take() ?? []));
          this.finish('output_text', {
            status: this.cutOff ? 'incomplete' : 'completed',
            content: [{ type: 'output_text', text: e.text, annotations: [], logprobs: this.partLogprobs }],
          });
          break;
        case 'tool_end':
          this.finish('function_call', { arguments: e.arguments, status: this.cutOff ? 'incomplete' : 'completed' });
          break;
      }
    }
  }

  private add(item: Item, part: Record<string, unknown> | null): void {
    const index = this.items.length;
    this.items.push(item);
    this.open = { item, index, text: '' };
    this.emit('response.output_item.added', { output_index: index, item: structuredClone(item) });
    if (part) this.emit('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part });
  }

  private delta(type: string, text: string, extra: Record<string, unknown> = {}): void {
    const o = this.open;
    if (!o) return;
    o.text += text;
    const where = o.item.type === 'function_call' ? {} : { content_index: 0 };
    this.emit(type, { item_id: o.item.id, output_index: o.index, ...where, delta: text, ...extra });
  }

  private finish(kind: 'reasoning_text' | 'output_text' | 'function_call', final: Record<string, unknown>): void {
    const o = this.open;
    if (!o) return;
    this.open = null;
    Object.assign(o.item, final);
    const at = { item_id: o.item.id, output_index: o.index };
    if (kind === 'function_call') {
      this.emit('response.function_call_arguments.done', { ...at, name: o.item['name'], arguments: o.item['arguments'] });
    } else {
      const part = (o.item['content'] as unknown[])[0];
      const text = (part as { text: string }).text;
      if (kind === 'reasoning_text') this.emit('response.reasoning_text.done', { ...at, content_index: 0, text });
      else this.emit('response.output_text.done', { ...at, content_index: 0, text, logprobs: (part as { logprobs: unknown }).logprobs });
      this.emit('response.content_part.done', { ...at, content_index: 0, part });
    }
    this.emit('response.output_item.done', { output_index: o.index, item: structuredClone(o.item) });
  }
}

export const responsesRoutes: FastifyPluginAsync = async (app) => {
  const ctx = app.gptOss;
  const response = { 200: responseSchema, ...errorResponses };
  app.get<{ Params: { id: string } }>('/v1/responses/:id', { schema: { response } }, async (request) => {
    // Another API key's response is a 404, as if the id did not exist.
    const stored = await ctx.store.get(request.gptOssKey, request.params.id);
    if (!stored) throw new ApiError(404, `No response found with id '${request.params.id}'.`, 'invalid_request_error', 'id', 'not_found');
    return stored.response;
  });

  const preValidation = ignoreUnknownParams(responsesRequestSchema, ctx.params);
  app.post<{ Body: ResponsesRequestBody }>('/v1/responses', { schema: { body: responsesRequestSchema, response }, preValidation }, async (request, reply) => {
    const body = request.body;
    ctx.models.check(body.model);
    if (body.background) throw unsupported('background', 'background responses are not supported; leave it out');
    checkToolChoice(body.tool_choice);
    const requestTools = dropBuiltinTools(body.tools ?? [], (type) =>
      warnOnce(request.log, ctx.params, `tool:${type}`, `built-in tool "${type}" dropped: this server does not run built-in tools (logged once)`),
    );
    const tools = requestTools.flatMap((t, i) => (t.type === 'function' ? [{ name: String(t.name), parameters: t.parameters, param: `tools[${i}].parameters` }] : []));
    // Namespace members are called as `ns.name`.
    const namespaced = new Map<string, { namespace: string; name: string }>();
    const members = requestTools.flatMap((t, i) =>
      t.type === 'namespace' && Array.isArray(t.tools)
        ? t.tools.map((m, j) => {
            namespaced.set(`${t.name}.${m.name}`, { namespace: String(t.name), name: String(m.name) });
            return { name: `${t.name}.${m.name}`, parameters: m.parameters, param: `tools[${i}].tools[${j}].parameters` };
          })
        : [],
    );
    const callable = [...tools, ...members];
    const toolNames = functionNames(callable, body.tool_choice, (i) => callable[i]!.param);

    const owner = request.gptOssKey;
    const own: unknown[] = typeof body.input === 'string' ? [{ type: 'message', role: 'user', content: body.input }] : await resolveItemReferences(ctx.store, owner, body.input);
    let input = own;
    if (body.previous_response_id) {
      const prev = await ctx.store.get(owner, body.previous_response_id);
      if (!prev) {
        throw invalidRequest(`Previous response with id '${body.previous_response_id}' not found.`, 'previous_response_id', 'previous_response_not_found');
      }
      input = [...prev.input, ...prev.output, ...own];
    }
    const effort = body.reasoning?.effort ?? undefined;
    const { model: served, engine, tokenizer, prompt } = ctx.models.choose(
      reply,
      { model: body.model, effort, tools: tools.length, maxTokens: body.max_output_tokens, lastUserText: () => lastUserText(own) },
      (tokenizer) =>
        renderOrReject(request.log, () =>
          renderResponsesInput(
            { ...body, tools: requestTools, input, reasoning: { effort } },
            { tokenizer, ...ctx.promptOptions, openReasoning: (sealed) => ctx.reasoningSeal.open(sealed), onWarning: (m) => request.log.warn(m) },
          ),
        ),
    );
    const promptIds = prompt.tokenIds;
    // Structured output: a forced tool call or a JSON answer, as a token mask.
    const forced = forcedOutput(
      {
        toolChoice: body.tool_choice,
        tools,
        format: body.text?.format,
        formatParam: 'text.format',
        nestedIn: null,
      },
      ctx.constraints,
    );
    const maxTokens = completionBudget(ctx.limits, body.max_output_tokens, promptIds.length, engine.contextLength, { prompt: 'input', maxTokens: 'max_output_tokens' });
    const constraint = buildConstraint(forced, tokenizer, maskVocabSize(engine, tokenizer), ctx.constraints, maxTokens);
    const sampling = samplingOptions(body);
    const output = new AssistantOutput({ tokenizer, tools: toolNames, warn: (m) => request.log.debug({ parser: m }, 'malformed model output recovered') });
    // include: message.output_text.logprobs, or top_logprobs > 0 alone: the content tokens' logprobs
    const topLogprobs = body.top_logprobs ?? 0;
    const logprobs = body.include?.includes('message.output_text.logprobs') || topLogprobs > 0 ? topLogprobs : undefined;
    const lps = new ContentLogprobs(tokenizer, output);
    const signal = clientGone(ctx, reply);
    const id = newId('resp');
    const createdAt = Math.floor(Date.now() / 1000);
    const store = body.store !== false;
    const seal = body.include?.includes('reasoning.encrypted_content') ? (text: string) => ctx.reasoningSeal.seal(text) : undefined;
    const itemOptions = { seal, namespaced, logprobs: logprobs !== undefined ? lps : undefined };
    // A response to store needs the store: an unreachable one is a 503 before any generation.
    if (store) await ctx.store.check();

    const responseObject = (status: string, items: Item[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      id,
      object: 'response',
      created_at: createdAt,
      status,
      background: false,
      error: null,
      incomplete_details: null,
      instructions: body.instructions ?? null,
      max_output_tokens: body.max_output_tokens ?? null,
      max_tool_calls: null,
      model: served.name,
      output: items,
      parallel_tool_calls: body.parallel_tool_calls ?? true,
      previous_response_id: body.previous_response_id ?? null,
      // Summaries are not produced (reasoning items carry `summary: []`); the request's wish is echoed.
      reasoning: { effort: effort ?? null, summary: body.reasoning?.summary ?? body.reasoning?.generate_summary ?? null },
      service_tier: 'default',
      store,
      temperature: sampling.temperature,
      text: { format: body.text?.format ?? { type: 'text' } },
      tool_choice: body.tool_choice ?? 'auto',
      tools: requestTools,
      top_logprobs: topLogprobs,
      top_p: sampling.topP,
      truncation: body.truncation ?? 'disabled',
      usage: null,
      user: body.user ?? null,
      metadata: body.metadata ?? {},
      ...extra,
    });

    /** After generation: close open items, build the final object, remember it. */
    const conclude = async (builder: ResponseItemsBuilder, result: { finishReason: string; tokens: number[]; cachedTokens: number }) => {
      const incomplete = result.finishReason === 'length' || result.finishReason === 'context';
      builder.cutOff = incomplete;
      builder.apply(lps.end());
      ctx.metrics.finished.inc({ reason: incomplete ? 'length' : builder.items.some((i) => i.type === 'function_call') ? 'tool_calls' : 'stop' });
      const final = responseObject(incomplete ? 'incomplete' : 'completed', builder.items, {
        incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null,
        usage: {
          input_tokens: promptIds.length,
          input_tokens_details: { cached_tokens: result.cachedTokens },
          output_tokens: result.tokens.length,
          output_tokens_details: { reasoning_tokens: output.reasoningTokens },
          total_tokens: promptIds.length + result.tokens.length,
        },
      });
      // Stored before the client hears it is done: its next request may land on another replica.
      if (store) await ctx.store.put(owner, { id, input, output: builder.items, response: final });
      return { final, incomplete };
    };

    const turn = { model: served, engine, promptIds, maxTokens, sampling, ...(logprobs !== undefined ? { logprobs } : {}), signal, constraint, ignoreEos: body.ignore_eos === true };

    if (!body.stream) {
      const builder = new ResponseItemsBuilder(() => {}, itemOptions);
      const result = await completeTurn(ctx, request, reply, { ...turn, onToken: (t, lp) => builder.apply(lps.push(t, lp)) });
      if (!result) return reply;
      return (await conclude(builder, result)).final;
    }

    return streamTurn(ctx, request, reply, turn, false, (sse) => {
      let seq = 0;
      const emit: Emit = (type, payload) => sse.event(type, { type, sequence_number: seq++, ...payload });
      const builder = new ResponseItemsBuilder(emit, itemOptions);
      emit('response.created', { response: responseObject('in_progress', []) });
      return {
        onStart: () => emit('response.in_progress', { response: responseObject('in_progress', []) }),
        onToken: (t, lp) => builder.apply(lps.push(t, lp)),
        finish: async (result) => {
          const { final, incomplete } = await conclude(builder, result);
          emit(incomplete ? 'response.incomplete' : 'response.completed', { response: final });
        },
        // A generation that fails ends with `response.failed`, its response carrying the error
        // (what Codex reads), then OpenAI's `error` event (what makes the SDKs raise).
        error: ({ error }) => {
          builder.apply(lps.end());
          emit('response.failed', { response: responseObject('failed', builder.items, { error: { code: error.code ?? 'server_error', message: error.message } }) });
          emit('error', { code: error.code, message: error.message, param: error.param, error });
        },
      };
    });
  });
};
