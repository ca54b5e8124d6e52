// An Anthropic Messages request as the Chat Completions request the harmony renderer reads
// (../harmony/chat-completions.ts), so both APIs render the same prompt: `system` -> the
// developer instructions, assistant `thinking` -> reasoning (analysis), `text` -> content,
// `tool_use` -> tool_calls, user `tool_result` -> tool messages; tools' input_schema ->
// parameters; tool_choice any -> required, tool -> the named function. A thinking block's
// `signature` is the server's sealed copy of the reasoning: opened, it is what goes back into
// the prompt. Images and documents: a 400 (the model reads text only).
import { HarmonyRequestError } from '../../harmony/index.js';
import type { ReasoningSeal } from '../reasoning-seal.js';
import type { MessagesRequestBody } from '../routes/messages-schema.js';

const fail = (message: string, param: string): never => {
  throw new HarmonyRequestError(message, param);
};

function text(block: Record<string, unknown>, param: string): string {
  if (typeof block['text'] !== 'string') fail(`${param}.text must be a string`, `${param}.text`);
  return block['text'] as string;
}

function media(type: unknown, param: string): void {
  if (type === 'image' || type === 'document' || type === 'search_result') {
    fail(`${param}: ${String(type)} blocks are not supported: this model reads text only; send the content as text`, `${param}.type`);
  }
}

/** A tool_result's content: a string or text blocks. */
function resultText(content: unknown, param: string): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return fail(`${param} must be a string or an array of text blocks`, param);
  return content
    .map((b, i) => {
      const bp = `${param}[${i}]`;
      const block = b as Record<string, unknown>;
      media(block?.['type'], bp);
      if (block?.['type'] !== 'text') fail(`${bp}: only text blocks are supported in a tool_result`, `${bp}.type`);
      return text(block, bp);
    })
    .join('\n');
}

/**
 * The harmony reasoning level: output_config.effort (xhigh and max are harmony's high), else the
 * thinking budget's (harmony has three levels; neither: the server's default).
 */
export function effortOf(thinking: MessagesRequestBody['thinking'], config?: MessagesRequestBody['output_config']): 'low' | 'medium' | 'high' | undefined {
  const effort = config?.effort;
  if (effort === 'low' || effort === 'medium' || effort === 'high') return effort;
  if (effort === 'xhigh' || effort === 'max') return 'high';
  const budget = thinking?.type === 'enabled' ? thinking.budget_tokens : undefined;
  if (budget === undefined || budget === null) return undefined;
  return budget < 4096 ? 'low' : budget < 16384 ? 'medium' : 'high';
}

export function toChatRequest(body: MessagesRequestBody, seal: ReasoningSeal, warn: (m: string) => void): Record<string, unknown> {
  const messages: Array<Record<string, unknown>> = [];
  if (body.system !== undefined && body.system !== null) {
    const sys = typeof body.system === 'string' ? body.system : body.system.map((b, i) => text(b, `system[${i}]`)).join('\n\n');
    if (sys !== '') messages.push({ role: 'system', content: sys });
  }
  body.messages.forEach((m, i) => {
    const param = `messages[${i}]`;
    const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    if (m.role === 'system') {
      // kept in its place in the conversation (the leading `system` is the developer's instructions)
      const texts = blocks.map((b, j) => {
        if (b['type'] !== 'text') fail(`${param}.content[${j}]: a system message holds text blocks only`, `${param}.content[${j}].type`);
        return text(b, `${param}.content[${j}]`);
      });
      messages.push({ role: 'system', content: texts.join('\n\n') });
      return;
    }
    if (m.role === 'user') {
      const texts: string[] = [];
      blocks.forEach((b, j) => {
        const bp = `${param}.content[${j}]`;
        media(b['type'], bp);
        if (b['type'] === 'text') texts.push(text(b, bp));
        else if (b['type'] === 'tool_result') {
          if (typeof b['tool_use_id'] !== 'string') fail(`${bp}.tool_use_id must be a string`, `${bp}.tool_use_id`);
          const out = resultText(b['content'], `${bp}.content`);
          messages.push({ role: 'tool', tool_call_id: b['tool_use_id'], content: b['is_error'] === true ? `Error: ${out}` : out });
        } else fail(`${bp}.type ${JSON.stringify(b['type'])} is not supported in a user message`, `${bp}.type`);
      });
      if (texts.length > 0) messages.push({ role: 'user', content: texts.join('\n') });
      return;
    }
    const reasoning: string[] = [];
    const content: string[] = [];
    const calls: Array<Record<string, unknown>> = [];
    blocks.forEach((b, j) => {
      const bp = `${param}.content[${j}]`;
      switch (b['type']) {
        case 'thinking': {
          const sig = b['signature'];
          const opened = typeof sig === 'string' && sig !== '' ? seal.open(sig) : null;
          if (typeof sig === 'string' && sig !== '' && opened === null) warn(`${bp}.signature was not made by this server's reasoning key; its thinking text is used`);
          reasoning.push(opened ?? (typeof b['thinking'] === 'string' ? (b['thinking'] as string) : ''));
          return;
        }
        case 'redacted_thinking':
          return;
        case 'text':
          content.push(text(b, bp));
          return;
        case 'tool_use':
          if (typeof b['id'] !== 'string' || typeof b['name'] !== 'string') fail(`${bp} needs an id and a name`, bp);
          calls.push({ id: b['id'], type: 'function', function: { name: b['name'], arguments: JSON.stringify(b['input'] ?? {}) } });
          return;
        default:
          media(b['type'], bp);
          fail(`${bp}.type ${JSON.stringify(b['type'])} is not supported in an assistant message`, `${bp}.type`);
      }
    });
    messages.push({
      role: 'assistant',
      content: content.join(''),
      ...(reasoning.some((r) => r !== '') ? { reasoning: reasoning.join('\n') } : {}),
      ...(calls.length ? { tool_calls: calls } : {}),
    });
  });
  // A deferred tool (defer_loading) stays out of the prompt, as Anthropic's tool search keeps it
  // out of the model's context until a search finds it.
  const tools = (body.tools ?? []).flatMap((t, i) => (t.defer_loading === true ? [] : [{ t, i }])).map(({ t, i }) => {
    if (t.type && t.type !== 'custom') fail(`tools[${i}]: server tools (${t.type}) are not run by this server; declare client tools with input_schema`, `tools[${i}].type`);
    return { type: 'function', function: { name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.input_schema ?? { type: 'object' } } };
  });
  const choice = body.tool_choice;
  const toolChoice =
    choice === undefined || choice === null
      ? undefined
      : choice.type === 'any'
        ? 'required'
        : choice.type === 'tool'
          ? { type: 'function', function: { name: choice.name } }
          : choice.type;
  return { messages, ...(tools.length ? { tools } : {}), ...(toolChoice !== undefined ? { tool_choice: toolChoice } : {}), reasoning_effort: effortOf(body.thinking, body.output_config) };
}
