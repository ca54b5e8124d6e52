// What the OpenAI-API renderers share: options, the system and developer messages the server
// writes, tool-call messages, request validation, the reasoning-history rule, and the raw-prompt
// path of /v1/completions.

import type { HarmonyTokenizer } from '../tokenizer/harmony-tokenizer.js';
import { HarmonyRequestError } from './errors.js';
import { renderConversationForCompletion } from './render.js';
import {
  DEFAULT_CHANNELS,
  DEFAULT_KNOWLEDGE_CUTOFF,
  DEFAULT_MODEL_IDENTITY,
  type HarmonyMessage,
  type ReasoningEffort,
  type ResponseFormat,
  type ToolDefinition,
  type ToolNamespace,
} from './types.js';

/**
 * Which assistant reasoning (analysis messages) from the request's history reaches the prompt.
 * - 'current-tool-loop' (default; the README's recommendation, like the HF chat template): only
 *   analysis after the last final answer, i.e. the reasoning of a tool-call loop still running.
 * - 'library': openai/harmony's auto_drop_analysis (what vLLM inherits).
 * - 'keep': all of it.
 */
export type ReasoningHistory = 'current-tool-loop' | 'library' | 'keep';

export interface PromptOptions {
  /** "Current date" line: a YYYY-MM-DD string, a Date (its UTC day), or null for none. Default: today (UTC). */
  currentDate?: string | Date | null;
  modelIdentity?: string;
  knowledgeCutoff?: string;
  /** When the request names none. Default 'medium'. */
  defaultReasoningEffort?: ReasoningEffort;
  reasoningHistory?: ReasoningHistory;
}

export interface RenderOptions extends PromptOptions {
  tokenizer: HarmonyTokenizer;
}

export interface RenderedPrompt {
  tokenIds: number[];
  /** The prompt as text, special tokens written out (for logs and `render`). */
  text: string;
  /** The harmony messages rendered (before reasoning was dropped). */
  messages: HarmonyMessage[];
}

export function fail(message: string, param: string | null): never {
  throw new HarmonyRequestError(message, param);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function optionalString(v: unknown, param: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') fail(`${param} must be a string`, param);
  return v;
}

export function requireString(v: unknown, param: string): string {
  if (typeof v !== 'string') fail(`${param} must be a string`, param);
  return v;
}

/** OpenAI's rule for the names of defined functions; dots would also be ambiguous in `functions.NAME`. */
const FUNCTION_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function functionName(v: unknown, param: string): string {
  const name = requireString(v, param);
  if (!FUNCTION_NAME.test(name)) fail(`${param} must be 1-64 letters, digits, underscores or dashes, got ${JSON.stringify(name)}`, param);
  return name;
}

/**
 * The name of a call in history. It may be one the model made up, so only what would break the
 * header is refused: nothing empty, no whitespace.
 */
export function calledFunctionName(v: unknown, param: string): string {
  const name = requireString(v, param);
  if (!/^\S+$/u.test(name)) fail(`${param} must be a non-empty name without spaces, got ${JSON.stringify(name)}`, param);
  return name;
}

/** Where a request keeps a tool's fields: the object holding them and its param path. */
export interface ToolFields {
  fields: Record<string, unknown>;
  param: string;
}

/**
 * The request's function tools, validated (names unique, parameters an object), or none when
 * tool_choice is "none": harmony has no field for it, so the tools are left out of the prompt.
 */
export function functionTools(
  raw: unknown,
  toolChoice: unknown,
  locate: (tool: unknown, param: string) => ToolFields,
  choiceName: (choice: Record<string, unknown>) => unknown,
): ToolDefinition[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) fail('tools must be an array', 'tools');
  const seen = new Set<string>();
  const tools = raw.map((t, i) => {
    const { fields, param } = locate(t, `tools[${i}]`);
    const name = functionName(fields['name'], `${param}.name`);
    if (seen.has(name)) fail(`duplicate function name ${JSON.stringify(name)}`, `${param}.name`);
    seen.add(name);
    const tool: ToolDefinition = { name, description: optionalString(fields['description'], `${param}.description`) ?? '' };
    const parameters = fields['parameters'];
    if (parameters !== undefined && parameters !== null) {
      if (!isRecord(parameters)) fail(`${param}.parameters must be a JSON Schema object`, `${param}.parameters`);
      tool.parameters = parameters;
    }
    return tool;
  });
  if (toolChoice === undefined || toolChoice === null || toolChoice === 'auto' || toolChoice === 'required') return tools;
  if (toolChoice === 'none') return [];
  if (isRecord(toolChoice) && toolChoice['type'] === 'function') {
    const name = choiceName(toolChoice);
    if (typeof name !== 'string' || !seen.has(name)) fail(`tool_choice names an unknown function ${JSON.stringify(name)}`, 'tool_choice');
    return tools;
  }
  fail('tool_choice must be "none", "auto", "required" or {"type": "function", ...}', 'tool_choice');
}

export function reasoningEffort(v: unknown, param: string): ReasoningEffort | undefined {
  if (v === undefined || v === null) return undefined;
  if (v === 'low' || v === 'medium' || v === 'high') return v;
  // Ollama's mapping; harmony has no lower level.
  if (v === 'minimal') return 'low';
  fail(`${param} must be "low", "medium" or "high", got ${JSON.stringify(v)}`, param);
}

/**
 * A structured-output format: `{type: "text" | "json_object" | "json_schema", ...}`; only
 * json_schema adds to the prompt. Its name, description and schema sit in `format[nestedIn]`
 * (Chat Completions: json_schema) or in the format itself (Responses).
 */
export function responseFormats(format: unknown, param: string, nestedIn: string | null): ResponseFormat[] {
  if (format === undefined || format === null) return [];
  if (!isRecord(format)) fail(`${param} must be an object`, param);
  if (format['type'] === 'text' || format['type'] === 'json_object') return [];
  if (format['type'] !== 'json_schema') fail(`${param}.type must be "text", "json_object" or "json_schema"`, `${param}.type`);
  const specParam = nestedIn === null ? param : `${param}.${nestedIn}`;
  const spec = nestedIn === null ? format : format[nestedIn];
  if (!isRecord(spec)) fail(`${specParam} must be an object`, specParam);
  const result: ResponseFormat = { name: requireString(spec['name'], `${specParam}.name`), schema: spec['schema'] ?? {} };
  const description = optionalString(spec['description'], `${specParam}.description`);
  if (description !== undefined) result.description = description;
  if (!isRecord(result.schema)) fail(`${specParam}.schema must be a JSON Schema object`, `${specParam}.schema`);
  return [result];
}

function dateText(date: PromptOptions['currentDate']): string | undefined {
  if (date === null) return undefined;
  if (typeof date === 'string') return date;
  return (date ?? new Date()).toISOString().slice(0, 10);
}

/** The system message the server writes (clients' "system" prompts go to the developer message). */
export function systemMessage(options: PromptOptions, effort: ReasoningEffort | undefined): HarmonyMessage {
  const date = dateText(options.currentDate);
  return {
    role: 'system',
    content: {
      type: 'system',
      modelIdentity: options.modelIdentity ?? DEFAULT_MODEL_IDENTITY,
      knowledgeCutoff: options.knowledgeCutoff ?? DEFAULT_KNOWLEDGE_CUTOFF,
      ...(date !== undefined ? { conversationStartDate: date } : {}),
      reasoningEffort: effort ?? options.defaultReasoningEffort ?? 'medium',
      channelConfig: { validChannels: [...DEFAULT_CHANNELS], channelRequired: true },
    },
  };
}

/**
 * The developer message, or undefined when there is nothing to put in it. `namespaces`: tool
 * groups besides `functions` (Responses `namespace` tools), each its own harmony namespace.
 */
export function developerMessage(instructions: string[], tools: ToolDefinition[], formats: ResponseFormat[], namespaces: ToolNamespace[] = []): HarmonyMessage | undefined {
  const text = instructions.filter((t) => t !== '').join('\n\n');
  const groups = namespaces.filter((n) => n.tools.length > 0);
  if (text === '' && tools.length === 0 && formats.length === 0 && groups.length === 0) return undefined;
  const all: Record<string, ToolNamespace> = {};
  if (tools.length > 0) all['functions'] = { name: 'functions', tools };
  for (const g of groups) all[g.name] = g;
  return {
    role: 'developer',
    content: {
      type: 'developer',
      ...(text !== '' ? { instructions: text } : {}),
      ...(Object.keys(all).length > 0 ? { tools: all } : {}),
      ...(formats.length > 0 ? { responseFormats: formats } : {}),
    },
  };
}

/**
 * The harmony recipient of a call in history: `functions.NAME` for a function; a dotted name
 * (a namespace's tool, or a call to an undeclared namespace such as `repo_browser.open_file`
 * the server returned with its full name) is the recipient itself. Defined function names have
 * no dots, so the two cannot be confused.
 */
export function callRecipient(name: string, namespace?: string): string {
  if (namespace !== undefined && namespace !== '' && namespace !== 'functions') return `${namespace}.${name}`;
  return name.includes('.') ? name : `functions.${name}`;
}

/** An assistant tool call in history; it ends with <|call|>, as the model wrote it. `name` as callRecipient takes it. */
export function toolCallMessage(name: string, args: string, namespace?: string): HarmonyMessage {
  return { role: 'assistant', channel: 'commentary', recipient: callRecipient(name, namespace), contentType: '<|constrain|>json', content: args };
}

/** A tool's answer, authored by the tool's recipient name (`functions.NAME`, `ns.NAME`). */
export function toolResultMessage(recipient: string, output: string): HarmonyMessage {
  return { role: 'tool', name: recipient, recipient: 'assistant', channel: 'commentary', content: output };
}

/** Applies the 'current-tool-loop' rule; the other modes are handled at render time. */
function dropFinishedReasoning(messages: HarmonyMessage[], mode: ReasoningHistory): HarmonyMessage[] {
  if (mode !== 'current-tool-loop') return messages;
  const lastFinal = messages.findLastIndex((m) => m.channel === 'final');
  return messages.filter((m, i) => !(i < lastFinal && m.role === 'assistant' && m.channel === 'analysis'));
}

/** system + developer + conversation, rendered for the assistant to continue. */
export function renderPrompt(messages: HarmonyMessage[], options: RenderOptions): RenderedPrompt {
  const mode = options.reasoningHistory ?? 'current-tool-loop';
  const tokenIds = renderConversationForCompletion(options.tokenizer, dropFinishedReasoning(messages, mode), {
    autoDropAnalysis: mode === 'library',
  });
  return { tokenIds, text: options.tokenizer.decode(tokenIds), messages };
}

/**
 * /v1/completions: the prompt is already harmony text (or token ids), so special-token strings in
 * it are format tokens here, unlike in chat messages.
 */
export function renderRawPrompt(prompt: unknown, options: { tokenizer: HarmonyTokenizer }): { tokenIds: number[]; text: string } {
  const { tokenizer } = options;
  let tokenIds: number[];
  if (typeof prompt === 'string') {
    tokenIds = tokenizer.encodeWithSpecialTokens(prompt);
  } else if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string') {
    tokenIds = tokenizer.encodeWithSpecialTokens(prompt[0]);
  } else if (Array.isArray(prompt) && prompt.every((t) => Number.isInteger(t))) {
    tokenIds = prompt as number[];
    const bad = tokenIds.findIndex((t) => tokenizer.tokenBytes(t) === undefined);
    if (bad >= 0) fail(`prompt[${bad}] is not a token id of this model`, `prompt[${bad}]`);
  } else {
    fail('prompt must be a string, a one-string array, or an array of token ids (batches are not supported)', 'prompt');
  }
  if (tokenIds.length === 0) fail('prompt is empty', 'prompt');
  return { tokenIds, text: tokenizer.decode(tokenIds) };
}
