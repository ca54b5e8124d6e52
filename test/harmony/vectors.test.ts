// Every vector of ../shared/harmony: renderings byte for byte and token for token (with the
// developer message of the gpt-oss compatibility test's tools), and every parse case, strict and
// non-strict, fed to the streaming parser one token at a time, UTF-8 cases and deltas included.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  HarmonyParseError,
  HarmonyStreamParser,
  chatCompletionToHarmony,
  developerContentText,
  renderChatCompletion,
  renderConversation,
  renderConversationForCompletion,
  renderConversationForTraining,
  renderMessage,
  type DeveloperContent,
  type HarmonyEvent,
  type StreamParserOptions,
} from '../../src/harmony/index.js';
import type { HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { testTokenizer } from '../tokenizer/test-tokenizer.js';
import {
  encodeHarmonyText,
  harmonyDir,
  index,
  parseSteps,
  toHarmonyMessage,
  toIndexShape,
  vectorText,
  vectorTokens,
  type Vector,
} from './shared-vectors.js';

let tokenizer: HarmonyTokenizer;
beforeAll(async () => {
  tokenizer = await testTokenizer();
});

const fileRenders = index.vectors.filter((v) => v.kind === 'render_completion' || v.kind === 'render_conversation');

describe('rendering vectors', () => {
  it('covers the 19 file renderings', () => {
    expect(fileRenders).toHaveLength(19);
  });

  for (const v of fileRenders) {
    it(v.id, () => {
      const messages = v.input!.messages.map(toHarmonyMessage);
      const options = { autoDropAnalysis: v.input!.auto_drop_analysis ?? false };
      const ids =
        v.kind === 'render_completion'
          ? renderConversationForCompletion(tokenizer, messages, { ...options, nextRole: v.input!.next_turn_role ?? 'assistant' })
          : renderConversation(tokenizer, messages, options);
      const expectedText = vectorText(v.file!);
      expect(tokenizer.decode(ids)).toBe(expectedText);
      // Token level: the derived ids, and the library's own comparison (the text with specials split out).
      expect(ids).toEqual(vectorTokens(v.file!));
      expect(ids).toEqual(encodeHarmonyText(tokenizer, expectedText));
    });
  }

  it('test_tool_response_parsing: one message, minus its <|end|>, then parsed back', () => {
    const v = index.vectors.find((x) => x.id === 'test_tool_response_parsing')!;
    const message = toHarmonyMessage(v.input!.messages[0]!);
    const ids = renderMessage(tokenizer, message);
    expect(ids.pop()).toBe(200007);
    expect(tokenizer.decode(ids)).toBe(vectorText(v.file!));
    expect(ids).toEqual(vectorTokens(v.file!));

    const parser = new HarmonyStreamParser(tokenizer, { role: v.parse!.role, strict: v.parse!.strict });
    for (const t of encodeHarmonyText(tokenizer, vectorText(v.file!))) parser.push(t);
    parser.end();
    expect(parser.messages.map(toIndexShape)).toEqual((v.parse!.expected as { messages: unknown[] }).messages);
  });

  it('test_render_conversation_for_training_final_channel', () => {
    const v = index.vectors.find((x) => x.id === 'test_render_conversation_for_training_final_channel')!;
    const expected = v.expected as { regular_text: string };
    const messages = v.input!.messages.map(toHarmonyMessage);
    const regular = renderConversation(tokenizer, messages);
    const training = renderConversationForTraining(tokenizer, messages);
    expect(tokenizer.decode(regular)).toBe(expected.regular_text);
    expect(training.slice(0, -1)).toEqual(regular.slice(0, -1));
    expect(tokenizer.decode(regular.slice(-1))).toBe('<|end|>');
    expect(tokenizer.decode(training.slice(-1))).toBe('<|return|>');
  });

  it('test_render_conversation_for_training_non_final', () => {
    const v = index.vectors.find((x) => x.id === 'test_render_conversation_for_training_non_final')!;
    const messages = v.input!.messages.map(toHarmonyMessage);
    expect(renderConversationForTraining(tokenizer, messages)).toEqual(renderConversation(tokenizer, messages));
  });

  it('test_render_and_render_conversation_roundtrip', () => {
    const v = index.vectors.find((x) => x.id === 'test_render_and_render_conversation_roundtrip')!;
    const messages = v.input!.messages.map(toHarmonyMessage);
    const conversation = renderConversation(tokenizer, messages);
    expect(renderMessage(tokenizer, messages[0]!)).toEqual(conversation);
    const completion = renderConversationForCompletion(tokenizer, messages);
    expect(completion.slice(0, conversation.length)).toEqual(conversation);
    expect(tokenizer.decode(completion)).toBe((v.expected as { completion_text_derived: string }).completion_text_derived);
  });

  it('test_tool_call_with_constrain_tokenized_correctly: rendering the parsed message gives the text back', () => {
    const v = index.vectors.find((x) => x.id === 'test_tool_call_with_constrain_tokenized_correctly')!;
    const messages = (v.parse!.expected as { messages: Parameters<typeof toHarmonyMessage>[0][] }).messages.map(toHarmonyMessage);
    expect(renderConversation(tokenizer, messages)).toEqual(encodeHarmonyText(tokenizer, v.parse!.text!));
  });
});

describe('gpt-oss compatibility-test tools', () => {
  const fixture = JSON.parse(readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'compat-tools.json'), 'utf8')) as {
    tools: Array<{ function: { name: string } }>;
  };
  const cases = readFileSync(path.join(harmonyDir, 'compat-cases.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { tool_name: string; input: string });
  const expected = readFileSync(path.join(harmonyDir, 'derived', 'compat-tools.developer-content.txt'), 'utf8').trimEnd();

  it('are the 6 tools the 30 cases name', () => {
    expect(cases).toHaveLength(30);
    expect(new Set(cases.map((c) => c.tool_name))).toEqual(new Set(fixture.tools.map((t) => t.function.name)));
  });

  it('render to derived/compat-tools.developer-content.txt through the Chat Completions path', () => {
    const messages = chatCompletionToHarmony({ messages: [{ role: 'user', content: cases[0]!.input }], tools: fixture.tools }, { currentDate: null });
    const developer = messages.find((m) => m.role === 'developer')!;
    expect(developerContentText(developer.content as DeveloperContent)).toBe(expected);
  });

  it('give each case a prompt with the tools and the functions line', () => {
    for (const c of cases) {
      const { text } = renderChatCompletion({ messages: [{ role: 'user', content: c.input }], tools: fixture.tools }, { tokenizer, currentDate: '2025-08-05' });
      expect(text).toContain(`<|start|>developer<|message|>${expected}<|end|>`);
      expect(text).toContain("Calls to these tools must go to the commentary channel: 'functions'.");
      expect(text.endsWith(`<|start|>user<|message|>${c.input}<|end|><|start|>assistant`)).toBe(true);
    }
  });
});

interface Run {
  parser: HarmonyStreamParser;
  /** Text deltas of every push, in order ('' when a push completed no text). */
  deltas: string[];
  /** Deltas of the last push. */
  lastDelta: string | null;
}

function deltaText(events: HarmonyEvent[]): string | null {
  const texts = events.flatMap((e) => (e.type === 'reasoning_delta' || e.type === 'content_delta' || e.type === 'tool_call_delta' ? [e.text] : []));
  return texts.length === 0 ? null : texts.join('');
}

function run(steps: Array<number[] | 'eos'>, options: StreamParserOptions, endAtEos = true): Run {
  const parser = new HarmonyStreamParser(tokenizer, options);
  const deltas: string[] = [];
  let lastDelta: string | null = null;
  for (const step of steps) {
    if (step === 'eos') {
      lastDelta = deltaText(parser.end());
      continue;
    }
    for (const t of step) {
      lastDelta = deltaText(parser.push(t));
      deltas.push(lastDelta ?? '');
    }
  }
  if (endAtEos && steps[steps.length - 1] !== 'eos') parser.end();
  return { parser, deltas, lastDelta };
}

const parseCases = index.vectors.filter((v) => v.parse !== undefined && v.kind !== 'render_message_and_parse');

describe('parse vectors', () => {
  it('covers the 3 file cases and 19 inline cases', () => {
    expect(parseCases.filter((v) => v.file !== null)).toHaveLength(3);
    expect(parseCases.filter((v) => v.kind === 'parse_inline')).toHaveLength(19);
  });

  for (const v of parseCases) {
    it(v.id, () => checkCase(v));
  }
});

function checkCase(v: Vector): void {
  const spec = v.parse!;
  const expected = spec.expected;
  const steps = parseSteps(tokenizer, v);
  const options = { role: spec.role, strict: spec.strict };

  if ('error' in expected) {
    expect(() => run(steps, options)).toThrow(HarmonyParseError);
    if (typeof expected['error'] === 'string') expect(() => run(steps, options)).toThrow(expected['error']);
    // Non-strict: the library's recovery, with a warning instead of an error.
    const recovered = run(steps, { ...options, strict: false });
    const nonStrict = v.also!['non_strict_expected'] as { messages: unknown[] };
    expect(recovered.parser.messages.map(toIndexShape)).toEqual(nonStrict.messages);
    expect(recovered.parser.warnings.length).toBeGreaterThan(0);
    return;
  }

  // Strict and non-strict agree on well-formed output, without warnings.
  for (const strict of [true, false]) {
    const r = run(steps, { ...options, strict }, !('current_content' in expected));
    expect(r.parser.warnings).toEqual([]);
    checkExpected(v, r);
  }
}

function checkExpected(v: Vector, r: Run): void {
  const expected = v.parse!.expected;
  const messages = r.parser.messages.map(toIndexShape);
  if ('messages' in expected) expect(messages).toEqual(expected['messages']);
  if ('message_count' in expected) expect(messages).toHaveLength(expected['message_count'] as number);
  if ('messages_index_1' in expected) expect(messages[1]).toEqual(expected['messages_index_1']);
  if (v.parse!.expected_messages_derived !== undefined) expect(messages).toEqual(v.parse!.expected_messages_derived);
  if ('current_content' in expected) {
    // No end token and no end of stream yet: the message is still open.
    expect(r.parser.currentContent).toBe(expected['current_content']);
    expect(r.deltas.join('')).toBe(expected['joined_deltas']);
    const also = v.also!;
    const more = tokenizer.encodeOrdinary(also['then_process_ordinary_text'] as string);
    let last: string | null = null;
    for (const t of more) last = deltaText(r.parser.push(t));
    expect(last).toBe(also['last_content_delta']);
    expect(r.parser.currentContent).toBe(also['current_content']);
  }
  if ('current_content_after_eos' in expected) {
    expect(r.lastDelta).toBe(expected['last_content_delta_after_eos']);
    expect(r.parser.currentContent).toBe(expected['current_content_after_eos']);
  }
  if (expected['messages_equal_input_text'] === true) {
    const segments = v.parse!.segments!;
    const input = segments.flatMap((s) => ('ordinary_text' in s ? [s.ordinary_text] : []))[0]!;
    expect(messages[0]!['content']).toBe(input);
    expect(r.deltas.join('')).toBe(input);
  }
}

describe('UTF-8 across tokens', () => {
  it('gives no delta for the first token of a 2-token emoji and the whole emoji with the second', () => {
    const ids = tokenizer.encodeOrdinary('💖');
    expect(ids).toHaveLength(2);
    const parser = new HarmonyStreamParser(tokenizer, { role: null, strict: true });
    for (const t of tokenizer.encodeWithSpecialTokens('<|start|>assistant<|message|>')) parser.push(t);
    expect(deltaText(parser.push(ids[0]!))).toBeNull();
    expect(parser.currentContent).toBe('');
    expect(deltaText(parser.push(ids[1]!))).toBe('💖');
  });

  it('joined deltas always equal the message content', () => {
    const text = 'Müller, Γειά σου, שלום, مرحبا, नमस्ते, こんにちは, 안녕하세요, 你好 😊👋🏾👨‍👩‍👧‍👦🇺🇸';
    const steps = [tokenizer.encodeWithSpecialTokens('<|channel|>final<|message|>'), tokenizer.encodeOrdinary(text), [9552], tokenizer.encodeOrdinary('x')];
    const r = run(steps, { role: 'assistant', strict: true });
    expect(r.parser.messages[0]!.content).toBe(`${text} \uFFFDx`);
    expect(r.deltas.join('')).toBe(r.parser.messages[0]!.content);
  });
});
