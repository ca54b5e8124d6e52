// Chat Completions request -> harmony prompt (../shared/harmony/README.md section 8).
//
// Leading system/developer messages become the developer message's instructions; the system
// message itself is ours (identity, dates, reasoning effort, channels). Assistant reasoning goes
// in as analysis, content next to tool calls as a commentary preamble (as vLLM does), each tool
// call as its own `to=functions.NAME` message, and tool results under `functions.NAME`.

import {
  callRecipient,
  calledFunctionName,
  developerMessage,
  fail,
  functionTools,
  isRecord,
  optionalString,
  reasoningEffort,
  renderPrompt,
  responseFormats,
  systemMessage,
  toolCallMessage,
  toolResultMessage,
  type PromptOptions,
  type RenderOptions,
  type RenderedPrompt,
} from './prompt.js';
import type { HarmonyMessage } from './types.js';

/** The fields of a Chat Completions request the prompt depends on (others are ignored here). */
export interface ChatCompletionRequest {
  messages: ChatMessage[];
  tools?: Array<{ type: 'function'; function: { name: string; description?: string; parameters?: object } }>;
  tool_choice?: 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };
  reasoning_effort?: 'minimal' | 'low' | 'medium' | 'high';
  response_format?: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; json_schema: { name: string; description?: string; schema?: object; strict?: boolean } };
}

export type ChatContent = string | null | Array<{ type: 'text'; text: string }>;

export type ChatMessage =
  | { role: 'system' | 'developer'; content: ChatContent; name?: string }
  | { role: 'user'; content: ChatContent; name?: string }
  | {
      role: 'assistant';
      content?: ChatContent;
      reasoning?: string;
      reasoning_content?: string;
      tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>;
    }
  | { role: 'tool'; tool_call_id: string; content: ChatContent }
  | { role: 'function'; name: string; content: ChatContent };

/** Text of a message's content: a string, or text parts joined. */
function contentText(content: unknown, param: string, allowNull: boolean): string {
  if (typeof content === 'string') return content;
  if ((content === null || content === undefined) && allowNull) return '';
  if (!Array.isArray(content)) fail(`${param} must be a string or an array of text parts`, param);
  return content
    .map((part, j) => {
      if (!isRecord(part) || part['type'] !== 'text' || typeof part['text'] !== 'string') {
        fail(`${param}[${j}]: only text parts are supported (gpt-oss reads text only)`, `${param}[${j}]`);
      }
      return part['text'] as string;
    })
    .join('');
}

/** The harmony messages for a Chat Completions request (validated; throws HarmonyRequestError). */
export function chatCompletionToHarmony(request: unknown, options: PromptOptions = {}): HarmonyMessage[] {
  if (!isRecord(request)) fail('the request body must be a JSON object', null);
  const messages = request['messages'];
  if (!Array.isArray(messages) || messages.length === 0) fail('messages must be a non-empty array', 'messages');

  const instructions: string[] = [];
  const conversation: HarmonyMessage[] = [];
  const callNames = new Map<string, string>();
  let leading = true;
  messages.forEach((m, i) => {
    const param = `messages[${i}]`;
    if (!isRecord(m)) fail(`${param} must be an object`, param);
    const role = m['role'];
    if (role === 'system' || role === 'developer') {
      const text = contentText(m['content'], `${param}.content`, false);
      // Only a leading system prompt is the developer's instructions; a later one is kept in place.
      if (leading) instructions.push(text);
      else conversation.push({ role: 'system', content: text });
      return;
    }
    leading = false;
    switch (role) {
      case 'user':
        conversation.push({ role: 'user', content: contentText(m['content'], `${param}.content`, false) });
        return;
      case 'assistant':
        conversation.push(...assistantMessages(m, param, callNames));
        return;
      case 'tool':
      case 'function': {
        const id = role === 'tool' ? optionalString(m['tool_call_id'], `${param}.tool_call_id`) : undefined;
        const name = (id !== undefined ? callNames.get(id) : undefined) ?? optionalString(m['name'], `${param}.name`);
        if (name === undefined) {
          fail(`${param}.tool_call_id ${JSON.stringify(id)} matches no earlier assistant tool call`, `${param}.tool_call_id`);
        }
        conversation.push(toolResultMessage(callRecipient(name), contentText(m['content'], `${param}.content`, false)));
        return;
      }
      default:
        fail(`${param}.role must be system, developer, user, assistant or tool`, `${param}.role`);
    }
  });

  const effort = reasoningEffort(request['reasoning_effort'], 'reasoning_effort');
  const tools = functionTools(
    request['tools'],
    request['tool_choice'],
    (t, param) => {
      if (!isRecord(t) || t['type'] !== 'function' || !isRecord(t['function'])) fail(`${param} must be {"type": "function", "function": {...}}`, param);
      return { fields: t['function'], param: `${param}.function` };
    },
    (choice) => (isRecord(choice['function']) ? choice['function']['name'] : undefined),
  );
  const developer = developerMessage(instructions, tools, responseFormats(request['response_format'], 'response_format', 'json_schema'));
  return [systemMessage(options, effort), ...(developer ? [developer] : []), ...conversation];
}

function assistantMessages(m: Record<string, unknown>, param: string, callNames: Map<string, string>): HarmonyMessage[] {
  const out: HarmonyMessage[] = [];
  const reasoning = optionalString(m['reasoning'], `${param}.reasoning`) ?? optionalString(m['reasoning_content'], `${param}.reasoning_content`);
  if (reasoning !== undefined && reasoning !== '') out.push({ role: 'assistant', channel: 'analysis', content: reasoning });
  const content = contentText(m['content'], `${param}.content`, true);
  const calls = m['tool_calls'];
  if (calls === undefined || calls === null || (Array.isArray(calls) && calls.length === 0)) {
    if (content !== '' || out.length === 0) out.push({ role: 'assistant', channel: 'final', content });
    return out;
  }
  if (!Array.isArray(calls)) fail(`${param}.tool_calls must be an array`, `${param}.tool_calls`);
  if (content !== '') out.push({ role: 'assistant', channel: 'commentary', content });
  calls.forEach((call, j) => {
    const cp = `${param}.tool_calls[${j}]`;
    if (!isRecord(call) || !isRecord(call['function'])) fail(`${cp} must be {"id", "type": "function", "function": {...}}`, cp);
    const fn = call['function'];
    const name = calledFunctionName(fn['name'], `${cp}.function.name`);
    const args = fn['arguments'];
    // Some clients send the arguments as an object instead of a JSON string.
    const text = typeof args === 'string' ? args : args === undefined || args === null ? '{}' : JSON.stringify(args);
    const id = optionalString(call['id'], `${cp}.id`);
    if (id !== undefined) callNames.set(id, name);
    out.push(toolCallMessage(name, text));
  });
  return out;
}

/** Chat Completions request -> prompt token ids (ending in `<|start|>assistant`). */
export function renderChatCompletion(request: unknown, options: RenderOptions): RenderedPrompt {
  return renderPrompt(chatCompletionToHarmony(request, options), options);
}
