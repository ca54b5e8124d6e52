// Responses API input to harmony prompts (README section 9.2).

import { beforeAll, describe, expect, it } from 'vitest';
import { HarmonyRequestError, renderChatCompletion, renderResponsesInput, responsesToHarmony } from '../../src/harmony/index.js';
import type { HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { testTokenizer } from '../tokenizer/test-tokenizer.js';
import { vectorText } from './shared-vectors.js';

let tokenizer: HarmonyTokenizer;
beforeAll(async () => {
  tokenizer = await testTokenizer();
});

const TOOL = { type: 'function', name: 'get_weather', description: 'Gets the weather.', parameters: { type: 'object', properties: { location: { type: 'string' } } } };

function render(request: unknown): string {
  return renderResponsesInput(request, { tokenizer, currentDate: null }).text;
}

function paramOf(request: unknown): string | null {
  try {
    render(request);
  } catch (e) {
    if (e instanceof HarmonyRequestError) return e.param;
    throw e;
  }
  throw new Error('expected a HarmonyRequestError');
}

describe('renderResponsesInput', () => {
  it('reproduces test_simple_convo_high_effort from instructions, reasoning.effort and a string input', () => {
    const text = render({
      instructions: "Answer the user's questions like a robot.",
      reasoning: { effort: 'high' },
      input: 'What is the capital of the largest country in the world?',
    });
    expect(text).toBe(vectorText('test_simple_convo_high_effort.txt'));
  });

  it('renders a function-call loop like the equivalent Chat Completions request', () => {
    const responses = renderResponsesInput(
      {
        tools: [TOOL],
        input: [
          { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Weather in SF?' }] },
          { type: 'reasoning', id: 'rs_1', summary: [], content: [{ type: 'reasoning_text', text: 'Need the tool.' }] },
          { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"location":"SF"}' },
          { type: 'function_call_output', call_id: 'call_1', output: '{"sunny":true}' },
        ],
      },
      { tokenizer, currentDate: '2025-08-05' },
    );
    const chat = renderChatCompletion(
      {
        tools: [{ type: 'function', function: { name: TOOL.name, description: TOOL.description, parameters: TOOL.parameters } }],
        messages: [
          { role: 'user', content: 'Weather in SF?' },
          { role: 'assistant', reasoning: 'Need the tool.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"SF"}' } }] },
          { role: 'tool', tool_call_id: 'call_1', content: '{"sunny":true}' },
        ],
      },
      { tokenizer, currentDate: '2025-08-05' },
    );
    expect(responses.text).toBe(chat.text);
    expect(responses.tokenIds).toEqual(chat.tokenIds);
  });

  it('keeps reasoning items only while a tool loop runs (after the last assistant message, input ending in a tool result)', () => {
    const items = [
      { role: 'user', content: 'Q1' },
      { type: 'reasoning', content: [{ type: 'reasoning_text', text: 'first thought' }] },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'A1' }] },
      { role: 'user', content: 'Q2' },
      { type: 'reasoning', content: [{ type: 'reasoning_text', text: 'second thought' }] },
      { type: 'function_call', call_id: 'c', name: 'get_weather', arguments: '{}' },
    ];
    const running = render({ tools: [TOOL], input: [...items, { type: 'function_call_output', call_id: 'c', output: 'ok' }] });
    expect(running).not.toContain('first thought');
    expect(running).toContain('<|channel|>analysis<|message|>second thought<|end|>');
    const newTurn = render({ tools: [TOOL], input: [...items, { type: 'function_call_output', call_id: 'c', output: 'ok' }, { role: 'user', content: 'Q3' }] });
    expect(newTurn).not.toContain('thought');
  });

  it('writes each part of an assistant message as its own message, the last one on final', () => {
    const messages = responsesToHarmony({
      input: [
        { role: 'user', content: 'hi' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'one' }, { type: 'output_text', text: 'two' }] },
        { role: 'user', content: 'ok' },
      ],
    });
    expect(messages.slice(1)).toEqual([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'one' },
      { role: 'assistant', channel: 'final', content: 'two' },
      { role: 'user', content: 'ok' },
    ]);
  });

  it('renders a json_schema text format and leading system/developer items as instructions', () => {
    const text = render({
      instructions: 'Be exact.',
      input: [{ role: 'developer', content: 'Use metric.' }, { role: 'user', content: 'hi' }],
      text: { format: { type: 'json_schema', name: 'out', schema: { type: 'object' } } },
    });
    expect(text).toContain('<|start|>developer<|message|># Instructions\n\nBe exact.\n\nUse metric.\n\n# Response Formats\n\n## out\n\n{"type":"object"}<|end|>');
  });

  it('reports invalid input with the offending param', () => {
    expect(paramOf({ input: [] })).toBe('input');
    expect(paramOf({ input: [{ type: 'function_call_output', call_id: 'x', output: 'o' }] })).toBe('input[0].call_id');
    expect(paramOf({ input: 'hi', tools: [{ type: 'web_search' }] })).toBe('tools[0].type');
    expect(paramOf({ input: [{ type: 'item_reference', id: 'x' }] })).toBe('input[0].type');
    expect(paramOf({ input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] })).toBe('input[0].content[0]');
    expect(paramOf({ input: 'hi', reasoning: { effort: 'max' } })).toBe('reasoning.effort');
    expect(paramOf({ input: 'hi', tools: [TOOL], tool_choice: { type: 'function', name: 'nope' } })).toBe('tool_choice');
  });
});
