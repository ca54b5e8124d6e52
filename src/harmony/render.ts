// Harmony messages to token ids (../shared/harmony/README.md sections 2-5), as openai/harmony
// renders them. Text pieces are always encoded as ordinary text; format tokens are inserted here.

import type { HarmonyTokenizer } from '../tokenizer/harmony-tokenizer.js';
import { HARMONY_TOKENS, HARMONY_TOKEN_TEXT } from '../tokenizer/special-tokens.js';
import { rustLines, schemaToTypeScript } from './json-schema-typescript.js';
import type { DeveloperContent, HarmonyMessage, Role, SystemContent, ToolNamespace } from './types.js';

/** The `# Tools` section: one block per namespace, in name order. */
export function toolsSectionText(namespaces: Record<string, ToolNamespace>): string {
  const sections = ['# Tools'];
  for (const key of Object.keys(namespaces).sort()) {
    const ns = namespaces[key]!;
    const hasTools = ns.tools.length > 0;
    // Items end in "\n" where the join must leave a blank line.
    const lines = [`## ${ns.name}\n`];
    for (const line of rustLines(ns.description ?? '')) lines.push(hasTools ? `// ${line}` : line);
    if (hasTools) {
      lines.push(`namespace ${ns.name} {\n`);
      for (const tool of ns.tools) {
        for (const line of rustLines(tool.description ?? '')) lines.push(`// ${line}`);
        const params = tool.parameters ?? null;
        lines.push(params === null ? `type ${tool.name} = () => any;\n` : `type ${tool.name} = (_: ${schemaToTypeScript(params)}) => any;\n`);
      }
      lines.push(`} // namespace ${ns.name}`);
    }
    sections.push(lines.join('\n'));
  }
  return sections.join('\n\n');
}

export function systemContentText(sys: SystemContent, conversationHasFunctionTools: boolean): string {
  const sections: string[] = [];
  const top: string[] = [];
  if (sys.modelIdentity !== undefined) top.push(sys.modelIdentity);
  if (sys.knowledgeCutoff !== undefined) top.push(`Knowledge cutoff: ${sys.knowledgeCutoff}`);
  if (sys.conversationStartDate !== undefined) top.push(`Current date: ${sys.conversationStartDate}`);
  if (top.length > 0) sections.push(top.join('\n'));
  if (sys.reasoningEffort !== undefined) sections.push(`Reasoning: ${sys.reasoningEffort}`);
  if (sys.tools !== undefined && Object.keys(sys.tools).length > 0) sections.push(toolsSectionText(sys.tools));
  const channels = sys.channelConfig;
  if (channels !== undefined && channels.validChannels.length > 0) {
    let line = `# Valid channels: ${channels.validChannels.join(', ')}.`;
    if (channels.channelRequired) line += ' Channel must be included for every message.';
    if (conversationHasFunctionTools) line += "\nCalls to these tools must go to the commentary channel: 'functions'.";
    sections.push(line);
  }
  return sections.join('\n\n');
}

export function developerContentText(dev: DeveloperContent): string {
  const sections: string[] = [];
  if (dev.instructions !== undefined) sections.push('# Instructions', dev.instructions);
  if (dev.tools !== undefined && Object.keys(dev.tools).length > 0) sections.push(toolsSectionText(dev.tools));
  if (dev.responseFormats !== undefined && dev.responseFormats.length > 0) {
    sections.push('# Response Formats');
    for (const format of dev.responseFormats) {
      const schema = JSON.stringify(format.schema ?? {});
      sections.push(`## ${format.name}`, format.description !== undefined ? `// ${format.description}\n${schema}` : schema);
    }
  }
  return sections.join('\n\n');
}

/** Whether a developer message defines a non-empty `functions` namespace (adds the system line). */
function hasFunctionTools(messages: readonly HarmonyMessage[]): boolean {
  return messages.some((m) => typeof m.content === 'object' && m.content.type === 'developer' && (m.content.tools?.['functions']?.tools.length ?? 0) > 0);
}

function renderMessageInto(tokenizer: HarmonyTokenizer, message: HarmonyMessage, conversationHasFunctionTools: boolean, out: number[]): void {
  out.push(HARMONY_TOKENS.start);
  if (message.role === 'tool') {
    if (message.name === undefined) throw new Error('a tool message needs the tool name as its author');
    tokenizer.encodeOrdinary(message.name, out);
  } else {
    tokenizer.encodeOrdinary(message.role, out);
    if (message.name !== undefined) tokenizer.encodeOrdinary(`:${message.name}`, out);
  }
  if (message.recipient !== undefined && message.recipient !== 'all') tokenizer.encodeOrdinary(` to=${message.recipient}`, out);
  if (message.channel !== undefined) {
    out.push(HARMONY_TOKENS.channel);
    tokenizer.encodeOrdinary(message.channel, out);
  }
  if (message.contentType !== undefined) {
    if (message.contentType.startsWith(HARMONY_TOKEN_TEXT.constrain)) {
      tokenizer.encodeOrdinary(' ', out);
      out.push(HARMONY_TOKENS.constrain);
      tokenizer.encodeOrdinary(message.contentType.slice(HARMONY_TOKEN_TEXT.constrain.length), out);
    } else {
      tokenizer.encodeOrdinary(` ${message.contentType}`, out);
    }
  }
  out.push(HARMONY_TOKENS.message);
  const content = message.content;
  if (typeof content === 'string') {
    tokenizer.encodeOrdinary(content, out);
  } else if (content.type === 'system') {
    if (message.role !== 'system') throw new Error('system content belongs in a system message');
    tokenizer.encodeOrdinary(systemContentText(content, conversationHasFunctionTools), out);
  } else {
    if (message.role !== 'developer') throw new Error('developer content belongs in a developer message');
    tokenizer.encodeOrdinary(developerContentText(content), out);
  }
  // An assistant message addressed to anyone (even "all") is a tool call.
  out.push(message.role === 'assistant' && message.recipient !== undefined ? HARMONY_TOKENS.call : HARMONY_TOKENS.end);
}

export function renderMessage(tokenizer: HarmonyTokenizer, message: HarmonyMessage): number[] {
  const out: number[] = [];
  renderMessageInto(tokenizer, message, false, out);
  return out;
}

export interface RenderConversationOptions {
  /**
   * openai/harmony's auto_drop_analysis: if the last assistant message is on `final`, drop the
   * analysis messages before the first `final` message. Off unless asked for.
   */
  autoDropAnalysis?: boolean;
}

export function renderConversation(tokenizer: HarmonyTokenizer, messages: readonly HarmonyMessage[], options: RenderConversationOptions = {}): number[] {
  const withFunctions = hasFunctionTools(messages);
  const lastAssistant = messages.findLast((m) => m.role === 'assistant');
  const drop = (options.autoDropAnalysis ?? false) && lastAssistant?.channel === 'final';
  const firstFinal = messages.findIndex((m) => m.channel === 'final');
  const out: number[] = [];
  messages.forEach((message, i) => {
    if (drop && i < firstFinal && message.channel === 'analysis') return;
    renderMessageInto(tokenizer, message, withFunctions, out);
  });
  return out;
}

/** The conversation followed by `<|start|>{nextRole}`: the prompt the model completes. */
export function renderConversationForCompletion(
  tokenizer: HarmonyTokenizer,
  messages: readonly HarmonyMessage[],
  options: RenderConversationOptions & { nextRole?: Role } = {},
): number[] {
  const out = renderConversation(tokenizer, messages, options);
  out.push(HARMONY_TOKENS.start);
  return tokenizer.encodeOrdinary(options.nextRole ?? 'assistant', out);
}

/** For training data: a final assistant answer at the end ends in `<|return|>`, not `<|end|>`. */
export function renderConversationForTraining(tokenizer: HarmonyTokenizer, messages: readonly HarmonyMessage[], options: RenderConversationOptions = {}): number[] {
  const out = renderConversation(tokenizer, messages, options);
  const last = messages[messages.length - 1];
  if (last?.role === 'assistant' && last.channel === 'final') out[out.length - 1] = HARMONY_TOKENS.return;
  return out;
}
