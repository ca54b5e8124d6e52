// The server as the popular client libraries use it, on synthetic:tiny: the AI SDK (ai 6 with
// @ai-sdk/openai's chat and responses models and @ai-sdk/openai-compatible), LangChain
// (@langchain/openai) and the OpenAI Agents SDK, over Chat Completions and Responses. Random
// weights write gibberish, so forced tool calls and JSON schemas (constrained decoding) make the
// structured calls come out valid; streaming must come token by token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { z } from 'zod';
import { generateObject, generateText, Output, stepCountIs, streamText, tool as aiTool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI } from '@langchain/openai';
import { tool as lcTool } from '@langchain/core/tools';
import { Agent, OpenAIChatCompletionsModel, OpenAIResponsesModel, run, setTracingDisabled, tool as agentTool } from '@openai/agents';
import { FIXED_LENGTH, MODEL, startServer, type TestServer } from './helpers.js';

let s: TestServer;
beforeAll(async () => {
  // Forced output (tool calls, JSON) without reasoning first and without optional whitespace:
  // random weights never end their reasoning, and this keeps a forced call within 24-38 tokens
  // (measured over 40 seeds), well inside the 64 the calls below allow.
  s = await startServer({ constrainedReasoningTokens: 0, constraintBounds: { maxWhitespace: 0 } });
});
afterAll(async () => {
  await s?.close();
});

/** The AI SDK's requests with FIXED_LENGTH's fields added, for checks of exact token counts. */
const fixedLength = (init?: RequestInit): RequestInit => ({ ...init, body: JSON.stringify({ ...JSON.parse(String(init?.body)), ...FIXED_LENGTH }) });

const city = z.object({ city: z.enum(['Paris', 'Rome']) });
const weather = async (input: z.infer<typeof city>) => `Sunny in ${input.city}`;

describe('AI SDK (ai 6)', () => {
  const provider = () => createOpenAI({ baseURL: s.baseURL, apiKey: 'unused' });

  it('generateText through the chat model, the responses model and openai-compatible', async () => {
    const fixed = { baseURL: s.baseURL, apiKey: 'unused', fetch: (url: string | URL | Request, init?: RequestInit) => fetch(url, fixedLength(init)) };
    const compatible = createOpenAICompatible({ name: 'gpt-oss-webgpu', ...fixed });
    for (const model of [createOpenAI(fixed).chat(MODEL), createOpenAI(fixed).responses(MODEL), compatible.chatModel(MODEL)]) {
      // (No seed: the AI SDK does not send one to a responses model, and warns.)
      const r = await generateText({ model, prompt: 'Say hello.', maxOutputTokens: 4 });
      expect(typeof r.text).toBe('string');
      expect(r.usage.outputTokens).toBe(4);
      expect(r.finishReason).toBe('length');
    }
  });

  it('streamText: textStream yields a forced JSON answer in pieces as it is generated', async () => {
    // Content that random weights always write: a JSON answer forced by the schema.
    const schema = z.object({ answer: z.enum(['yes', 'no']) });
    const result = streamText({ model: provider().chat(MODEL), prompt: 'Is the sky blue?', output: Output.object({ schema }), maxOutputTokens: 64 });
    const pieces: string[] = [];
    for await (const piece of result.textStream) pieces.push(piece);
    expect(schema.safeParse(JSON.parse(pieces.join(''))).success).toBe(true);
    // `{"answer":"yes"}` takes at least 5 o200k tokens (its shortest segmentation); the server
    // sends each on its own, the AI SDK may join a few that arrive together.
    expect(pieces.length).toBeGreaterThanOrEqual(3);
    expect(schema.safeParse(await result.output).success).toBe(true);
  });

  it('tools: a forced call runs the tool; the next step refers to the reasoning item by item_reference (responses model)', async () => {
    // A server on the same engine whose forced output starts with 4 reasoning tokens, so the
    // response has a reasoning item, which the AI SDK sends back as an item_reference.
    const reasoning = await startServer({
      engine: s.model.host.engine!,
      tokenizer: s.model.host.ready().tokenizer,
      constrainedReasoningTokens: 4,
      constraintBounds: { maxWhitespace: 0 },
    });
    try {
      const requests: Array<{ input: Array<{ type?: string; id?: string }> }> = [];
      const model = createOpenAI({
        baseURL: reasoning.baseURL,
        apiKey: 'unused',
        fetch: async (url, init) => {
          requests.push(JSON.parse(String(init?.body)));
          return fetch(url, fixedLength(init));
        },
      }).responses(MODEL);
      const r = await generateText({
        model,
        prompt: 'What is the weather in Paris?',
        tools: { get_weather: aiTool({ description: 'Weather for a city', inputSchema: city, execute: weather }) },
        toolChoice: { type: 'tool', toolName: 'get_weather' },
        // A forced call with 4 reasoning tokens takes 39-53 tokens (40 seeds); then a few words.
        maxOutputTokens: 96,
        prepareStep: ({ stepNumber }) => (stepNumber === 0 ? {} : { toolChoice: 'none', maxOutputTokens: 4 }),
        stopWhen: stepCountIs(2),
      });
      expect(r.steps).toHaveLength(2);
      const [call] = r.steps[0]!.toolCalls;
      expect(call).toMatchObject({ toolName: 'get_weather', input: { city: expect.stringMatching(/^(Paris|Rome)$/) } });
      expect(r.steps[0]!.toolResults[0]).toMatchObject({ output: `Sunny in ${(call!.input as { city: string }).city}` });
      const reference = requests[1]!.input.find((i) => i.type === 'item_reference');
      expect(reference?.id).toMatch(/^rs_/);
      expect(r.steps[1]!.usage.outputTokens).toBe(4);
    } finally {
      await reasoning.close();
    }
  });

  it('generateObject: an object valid against the schema (response_format json_schema)', async () => {
    const schema = z.object({ answer: z.enum(['yes', 'no']) });
    const r = await generateObject({ model: provider().chat(MODEL), schema, prompt: 'Is the sky blue?', maxOutputTokens: 64, seed: 4 });
    expect(schema.safeParse(r.object).success).toBe(true);
  });
});

describe('LangChain (@langchain/openai)', () => {
  const chat = () => new ChatOpenAI({ model: MODEL, apiKey: 'unused', configuration: { baseURL: s.baseURL }, maxTokens: 8, maxRetries: 0 });

  it('invoke, and stream a forced JSON answer a piece per token', async () => {
    // run to maxTokens past the end tokens (ignore_eos through modelKwargs), so the usage is exact
    const fixed = new ChatOpenAI({ model: MODEL, apiKey: 'unused', configuration: { baseURL: s.baseURL }, maxTokens: 8, maxRetries: 0, modelKwargs: { ignore_eos: true } });
    const message = await fixed.invoke('Say hello.', { seed: 5 });
    expect(typeof message.content).toBe('string');
    expect(message.usage_metadata?.output_tokens).toBe(8);
    // Streamed content that random weights always write: a forced JSON answer, a piece per token.
    const schema = z.object({ answer: z.enum(['yes', 'no']) });
    const response_format = { type: 'json_schema' as const, json_schema: { name: 'answer', schema: z.toJSONSchema(schema), strict: true } };
    const model = new ChatOpenAI({ model: MODEL, apiKey: 'unused', configuration: { baseURL: s.baseURL }, maxTokens: 64, maxRetries: 0 });
    const pieces: string[] = [];
    for await (const chunk of await model.stream('Is water wet?', { response_format })) if (typeof chunk.content === 'string' && chunk.content !== '') pieces.push(chunk.content);
    expect(schema.safeParse(JSON.parse(pieces.join(''))).success).toBe(true);
    // `{"answer":"yes"}` takes at least 5 o200k tokens (its shortest segmentation), each its own piece.
    expect(pieces.length).toBeGreaterThanOrEqual(5);
  });

  it('bindTools with a forced tool, and withStructuredOutput', async () => {
    const getWeather = lcTool(weather, { name: 'get_weather', description: 'Weather for a city', schema: city });
    const model = new ChatOpenAI({ model: MODEL, apiKey: 'unused', configuration: { baseURL: s.baseURL }, maxTokens: 64, maxRetries: 0 });
    const called = await model.bindTools([getWeather], { tool_choice: 'get_weather' }).invoke('Weather in Rome?');
    expect(called.tool_calls).toHaveLength(1);
    expect(called.tool_calls![0]).toMatchObject({ name: 'get_weather', args: { city: expect.stringMatching(/^(Paris|Rome)$/) } });
    const schema = z.object({ answer: z.enum(['yes', 'no']) });
    const structured = await model.withStructuredOutput(schema).invoke('Is water wet?');
    expect(schema.safeParse(structured).success).toBe(true);
  });
});

describe('OpenAI Agents SDK', () => {
  beforeAll(() => setTracingDisabled(true));

  const agent = (model: OpenAIResponsesModel | OpenAIChatCompletionsModel, calls: string[]) =>
    new Agent({
      name: 'weather',
      instructions: 'Answer weather questions with the tool.',
      model,
      tools: [
        agentTool({
          name: 'get_weather',
          description: 'Weather for a city',
          parameters: city,
          execute: async (input) => {
            calls.push(input.city);
            return weather(input);
          },
        }),
      ],
      // Forced on the first turn; the SDK resets it to auto once the tool ran, and the second
      // turn's answer ends the run.
      modelSettings: { toolChoice: 'get_weather', maxTokens: 64 },
    });

  for (const api of ['responses', 'chat_completions'] as const) {
    it(`an agent with a function tool over ${api === 'responses' ? 'Responses' : 'Chat Completions'}`, async () => {
      const client = new OpenAI({ baseURL: s.baseURL, apiKey: 'unused', maxRetries: 0 });
      const model = api === 'responses' ? new OpenAIResponsesModel(client, MODEL) : new OpenAIChatCompletionsModel(client, MODEL);
      const calls: string[] = [];
      const result = await run(agent(model, calls), 'What is the weather in Paris?', { maxTurns: 4 });
      expect(calls).toHaveLength(1);
      expect(['Paris', 'Rome']).toContain(calls[0]);
      const items = result.newItems.map((i) => i.type);
      expect(items).toContain('tool_call_item');
      expect(items).toContain('tool_call_output_item');
      expect(typeof result.finalOutput).toBe('string');
    });
  }
});
