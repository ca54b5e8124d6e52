// Responses API request -> harmony prompt (../shared/harmony/README.md section 9.2), as the
// gpt-oss reference server maps it. `previous_response_id` is the server's to resolve: it puts
// the stored input and output items in front of `input` before calling this.

import {
  callRecipient,
  calledFunctionName,
  developerMessage,
  fail,
  functionName,
  functionTools,
  isRecord,
  optionalString,
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
import type { HarmonyMessage, ToolDefinition, ToolNamespace } from './types.js';

export type ResponsesContent = string | Array<{ type: 'input_text' | 'output_text'; text: string }>;

export type ResponsesInputItem =
  | { type?: 'message'; role: 'user' | 'assistant' | 'system' | 'developer'; content: ResponsesContent }
  | { type: 'reasoning'; content?: Array<{ type: 'reasoning_text'; text: string }> | null; summary?: unknown[]; encrypted_content?: string | null }
  | { type: 'function_call'; call_id: string; name: string; namespace?: string; arguments: string }
  | { type: 'function_call_output'; call_id: string; output: string | Array<{ type: 'input_text'; text: string }> };

export type ResponsesFunctionTool = { type: 'function'; name: string; description?: string; parameters?: object };

export interface ResponsesRequest {
  input: string | ResponsesInputItem[];
  instructions?: string;
  /** Functions, and namespaces (a group of functions, rendered as a harmony namespace of that name). */
  tools?: Array<ResponsesFunctionTool | { type: 'namespace'; name: string; description?: string; tools: ResponsesFunctionTool[] }>;
  tool_choice?: 'none' | 'auto' | 'required' | { type: 'function'; name: string };
  reasoning?: { effort?: 'minimal' | 'low' | 'medium' | 'high' };
  text?: { format?: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; name: string; description?: string; schema: object } };
}

/** How the renderer opens encrypted reasoning sent back, and where it says what it dropped. */
export interface ResponsesRenderOptions extends PromptOptions {
  /** Opens a reasoning item's `encrypted_content`; null when it is not this server's. */
  openReasoning?: (sealed: string) => string | null;
  onWarning?: (message: string) => void;
}

const TEXT_PARTS = new Set(['input_text', 'output_text', 'text']);
const MEDIA_PARTS = new Set(['input_image', 'input_file', 'input_audio', 'image_url']);

/** Text parts of a content array (or the string itself as one part). */
function textParts(content: unknown, param: string): string[] {
  if (typeof content === 'string') return [content];
  if (!Array.isArray(content)) fail(`${param} must be a string or an array of text parts`, param);
  return content.map((part, j) => {
    if (isRecord(part) && MEDIA_PARTS.has(part['type'] as string)) {
      fail(`${param}[${j}]: ${String(part['type'])} parts are not supported: this model reads text only; send the content as text`, `${param}[${j}]`);
    }
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
export function responsesToHarmony(request: unknown, options: ResponsesRenderOptions = {}): HarmonyMessage[] {
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
        const content = item['content'];
        const plain = Array.isArray(content) ? content.map((c, j) => requireString(isRecord(c) ? c['text'] : undefined, `${param}.content[${j}].text`)).join('') : '';
        const sealed = item['encrypted_content'];
        if (sealed !== undefined && sealed !== null && typeof sealed !== 'string') fail(`${param}.encrypted_content must be a string`, `${param}.encrypted_content`);
        if (!(i > lastAssistant && endsWithToolResult)) return;
        // The sealed copy is the server's own words; the plain one is what the client kept.
        let text = plain;
        if (typeof sealed === 'string' && sealed !== '') {
          const opened = options.openReasoning?.(sealed) ?? null;
          if (opened !== null) text = opened;
          else options.onWarning?.(`${param}.encrypted_content was not sealed with this server's reasoning key; ${plain === '' ? 'that reasoning is left out' : 'its plain content is used'}`);
        }
        if (text !== '') conversation.push({ role: 'assistant', channel: 'analysis', content: text });
        return;
      }
      case 'function_call': {
        const name = calledFunctionName(item['name'], `${param}.name`);
        const ns = optionalString(item['namespace'], `${param}.namespace`);
        const recipient = callRecipient(name, ns);
        callNames.set(requireString(item['call_id'], `${param}.call_id`), recipient);
        const args = item['arguments'];
        conversation.push(toolCallMessage(recipient, typeof args === 'string' ? args : JSON.stringify(args ?? {})));
        return;
      }
      case 'function_call_output': {
        const callId = requireString(item['call_id'], `${param}.call_id`);
        const recipient = callNames.get(callId);
        if (recipient === undefined) fail(`${param}.call_id ${JSON.stringify(callId)} matches no earlier function_call item`, `${param}.call_id`);
        conversation.push(toolResultMessage(recipient, textParts(item['output'], `${param}.output`).join('')));
        return;
      }
      default:
        fail(`${param}.type ${JSON.stringify(type)} is not supported`, `${param}.type`);
    }
  });

  const effort = reasoningEffort(isRecord(request['reasoning']) ? request['reasoning']['effort'] : undefined, 'reasoning.effort');
  const { functions, namespaces } = responsesTools(request['tools'], request['tool_choice']);
  const text = request['text'];
  if (text !== undefined && text !== null && !isRecord(text)) fail('text must be an object', 'text');
  const developer = developerMessage(instructions, functions, responseFormats(isRecord(text) ? text['format'] : undefined, 'text.format', null), namespaces);
  return [systemMessage(options, effort), ...(developer ? [developer] : []), ...conversation];
}

/**
 * The request's tools: `function` ones (the `functions` namespace) and `namespace` ones (each a
 * harmony namespace of its name, calls addressed `NAME.tool`). Built-in tools (web_search,
 * code_interpreter, …) need a browser or a sandbox this renderer does not have: the server drops
 * them before rendering; here they are an error.
 */
export function responsesTools(raw: unknown, toolChoice: unknown): { functions: ToolDefinition[]; namespaces: ToolNamespace[] } {
  if (raw === undefined || raw === null) return { functions: [], namespaces: [] };
  if (!Array.isArray(raw)) fail('tools must be an array', 'tools');
  const fns: Array<{ tool: unknown; param: string }> = [];
  const groups: Array<{ tool: Record<string, unknown>; param: string }> = [];
  raw.forEach((t, i) => {
    const param = `tools[${i}]`;
    if (!isRecord(t)) fail(`${param} must be an object`, param);
    if (t['type'] === 'function') fns.push({ tool: t, param });
    else if (t['type'] === 'namespace') groups.push({ tool: t, param });
    else fail(`${param}.type ${JSON.stringify(t['type'])} is not supported; only "function" and "namespace" tools are`, `${param}.type`);
  });
  const locate = (params: string[]) => (t: unknown, at: string) => {
    const param = params[Number(/\[(\d+)\]$/.exec(at)![1])]!;
    if (!isRecord(t) || t['type'] !== 'function') fail(`${param} must be {"type": "function", ...}`, param);
    return { fields: t, param };
  };
  const functions = functionTools(fns.map((f) => f.tool), toolChoice, locate(fns.map((f) => f.param)), (choice) => choice['name']);
  if (toolChoice === 'none') return { functions, namespaces: [] };
  const seen = new Set<string>(['functions']);
  const namespaces = groups.map(({ tool, param }) => {
    const name = functionName(tool['name'], `${param}.name`);
    if (seen.has(name)) fail(`the namespace name ${JSON.stringify(name)} is taken`, `${param}.name`);
    seen.add(name);
    const list = tool['tools'];
    if (!Array.isArray(list)) fail(`${param}.tools must be an array of function tools`, `${param}.tools`);
    const members = functionTools(list, 'auto', locate(list.map((_, j) => `${param}.tools[${j}]`)), () => undefined);
    const description = optionalString(tool['description'], `${param}.description`);
    return { name, ...(description !== undefined ? { description } : {}), tools: members };
  });
  return { functions, namespaces };
}

/** Responses request -> prompt token ids (ending in `<|start|>assistant`). */
export function renderResponsesInput(request: unknown, options: RenderOptions & ResponsesRenderOptions): RenderedPrompt {
  return renderPrompt(responsesToHarmony(request, options), options);
}
