// Responses API request -> harmony prompt (../shared/harmony/README.md section 9.2), as the
// gpt-oss reference server maps it. `previous_response_id` is the server's to resolve: it puts
// the stored input and output items in front of `input` before calling this.

import {
  calledFunctionName,
  developerMessage,
  fail,
  functionTools,
  isRecord,
  reasoningEffort,
  renderPrompt,
  requireString,
  responseFormats,
  systemMessage,
  toolCallMessage,
  toolResultMessage,
  type PromptOptions,
  type RenderOptions,
  type RenderedPrompt,
} from './prompt.js';
import type { HarmonyMessage } from './types.js';

export type ResponsesContent = string | Array<{ type: 'input_text' | 'output_text'; text: string }>;

export type ResponsesInputItem =
  | { type?: 'message'; role: 'user' | 'assistant' | 'system' | 'developer'; content: ResponsesContent }
  | { type: 'reasoning'; content?: Array<{ type: 'reasoning_text'; text: string }>; summary?: unknown[] }
  | { type: 'function_call'; call_id: string; name: string; arguments: string }
  | { type: 'function_call_output'; call_id: string; output: string | Array<{ type: 'input_text'; text: string }> };

export interface ResponsesRequest {
  input: string | ResponsesInputItem[];
  instructions?: string;
  tools?: Array<{ type: 'function'; name: string; description?: string; parameters?: object }>;
  tool_choice?: 'none' | 'auto' | 'required' | { type: 'function'; name: string };
  reasoning?: { effort?: 'minimal' | 'low' | 'medium' | 'high' };
  text?: { format?: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; name: string; description?: string; schema: object } };
}

const TEXT_PARTS = new Set(['input_text', 'output_text', 'text']);

/** Text parts of a content array (or the string itself as one part). */
function textParts(content: unknown, param: string): string[] {
  if (typeof content === 'string') return [content];
  if (!Array.isArray(content)) fail(`${param} must be a string or an array of text parts`, param);
  return content.map((part, j) => {
    if (!isRecord(part) || !TEXT_PARTS.has(part['type'] as string) || typeof part['text'] !== 'string') {
      fail(`${param}[${j}]: only text parts are supported (gpt-oss reads text only)`, `${param}[${j}]`);
    }
    return part['text'] as string;
  });
}

function itemType(item: Record<string, unknown>): unknown {
  return item['type'] ?? ('role' in item ? 'message' : undefined);
}

/** The harmony messages for a Responses request (validated; throws HarmonyRequestError). */
export function responsesToHarmony(request: unknown, options: PromptOptions = {}): HarmonyMessage[] {
  if (!isRecord(request)) fail('the request body must be a JSON object', null);
  const input = request['input'];
  const items: unknown[] = typeof input === 'string' ? [{ type: 'message', role: 'user', content: input }] : Array.isArray(input) ? input : [];
  if (items.length === 0) fail('input must be a string or a non-empty array of items', 'input');

  const instructions: string[] = [];
  const top = request['instructions'];
  if (top !== undefined && top !== null) instructions.push(requireString(top, 'instructions'));

  // The reference server keeps reasoning only while a tool loop runs: after the last assistant
  // message, and only if the input ends with a tool result.
  const last = items[items.length - 1];
  const endsWithToolResult = isRecord(last) && last['type'] === 'function_call_output';
  const lastAssistant = items.findLastIndex((it) => isRecord(it) && itemType(it) === 'message' && it['role'] === 'assistant');

  const conversation: HarmonyMessage[] = [];
  const callNames = new Map<string, string>();
  let leading = true;
  items.forEach((item, i) => {
    const param = `input[${i}]`;
    if (!isRecord(item)) fail(`${param} must be an object`, param);
    const type = itemType(item);
    const role = item['role'];
    if (type === 'message' && (role === 'system' || role === 'developer')) {
      const text = textParts(item['content'], `${param}.content`).join('');
      if (leading) instructions.push(text);
      else conversation.push({ role: 'system', content: text });
      return;
    }
    leading = false;
    switch (type) {
      case 'message': {
        const parts = textParts(item['content'], `${param}.content`);
        if (role === 'user') {
          for (const text of parts) conversation.push({ role: 'user', content: text });
        } else if (role === 'assistant') {
          parts.forEach((text, j) => conversation.push({ role: 'assistant', ...(j === parts.length - 1 ? { channel: 'final' } : {}), content: text }));
        } else {
          fail(`${param}.role must be user, assistant, system or developer`, `${param}.role`);
        }
        return;
      }
      case 'reasoning': {
        if (!(i > lastAssistant && endsWithToolResult)) return;
        const content = item['content'];
        const text = Array.isArray(content) ? content.map((c, j) => requireString(isRecord(c) ? c['text'] : undefined, `${param}.content[${j}].text`)).join('') : '';
        if (text !== '') conversation.push({ role: 'assistant', channel: 'analysis', content: text });
        return;
      }
      case 'function_call': {
        const name = calledFunctionName(item['name'], `${param}.name`);
        callNames.set(requireString(item['call_id'], `${param}.call_id`), name);
        const args = item['arguments'];
        conversation.push(toolCallMessage(name, typeof args === 'string' ? args : JSON.stringify(args ?? {})));
        return;
      }
      case 'function_call_output': {
        const callId = requireString(item['call_id'], `${param}.call_id`);
        const name = callNames.get(callId);
        if (name === undefined) fail(`${param}.call_id ${JSON.stringify(callId)} matches no earlier function_call item`, `${param}.call_id`);
        conversation.push(toolResultMessage(name, textParts(item['output'], `${param}.output`).join('')));
        return;
      }
      default:
        fail(`${param}.type ${JSON.stringify(type)} is not supported`, `${param}.type`);
    }
  });

  const effort = reasoningEffort(isRecord(request['reasoning']) ? request['reasoning']['effort'] : undefined, 'reasoning.effort');
  const tools = functionTools(
    request['tools'],
    request['tool_choice'],
    (t, param) => {
      if (!isRecord(t)) fail(`${param} must be an object`, param);
      // Built-in tools (web_search, code_interpreter) would need a browser and a sandbox we do not run.
      if (t['type'] !== 'function') fail(`${param}.type ${JSON.stringify(t['type'])} is not supported; only "function" tools are`, `${param}.type`);
      return { fields: t, param };
    },
    (choice) => choice['name'],
  );
  const text = request['text'];
  if (text !== undefined && text !== null && !isRecord(text)) fail('text must be an object', 'text');
  const developer = developerMessage(instructions, tools, responseFormats(isRecord(text) ? text['format'] : undefined, 'text.format', null));
  return [systemMessage(options, effort), ...(developer ? [developer] : []), ...conversation];
}

/** Responses request -> prompt token ids (ending in `<|start|>assistant`). */
export function renderResponsesInput(request: unknown, options: RenderOptions): RenderedPrompt {
  return renderPrompt(responsesToHarmony(request, options), options);
}
