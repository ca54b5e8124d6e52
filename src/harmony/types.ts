// The harmony data model: what a message is before it is rendered to tokens and after it is
// parsed back. Mirrors openai/harmony's chat.rs, with camelCase names.

export type Role = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

export const ROLES: readonly Role[] = ['system', 'developer', 'user', 'assistant', 'tool'];

export type ReasoningEffort = 'low' | 'medium' | 'high';

export interface ToolDefinition {
  name: string;
  /** Missing counts as empty: no comment lines. */
  description?: string;
  /** JSON Schema of the arguments, key order significant; absent renders `() => any`. */
  parameters?: unknown;
}

export interface ToolNamespace {
  /** Written in the section header and as the TypeScript namespace. */
  name: string;
  description?: string;
  tools: ToolDefinition[];
}

export interface ChannelConfig {
  validChannels: string[];
  channelRequired: boolean;
}

/** Content of the system message; every absent field leaves its line or section out. */
export interface SystemContent {
  type: 'system';
  modelIdentity?: string;
  reasoningEffort?: ReasoningEffort;
  knowledgeCutoff?: string;
  /** YYYY-MM-DD, written as "Current date". */
  conversationStartDate?: string;
  channelConfig?: ChannelConfig;
  /** Built-in tool namespaces (browser, python), rendered in key order. */
  tools?: Record<string, ToolNamespace>;
}

/** A structured-output format, appended to the developer message as `# Response Formats`. */
export interface ResponseFormat {
  name: string;
  description?: string;
  schema: unknown;
}

export interface DeveloperContent {
  type: 'developer';
  /** Rendered whenever set, even to "": leave it unset instead. */
  instructions?: string;
  /** Function tools: the `functions` namespace. Rendered in key order. */
  tools?: Record<string, ToolNamespace>;
  responseFormats?: ResponseFormat[];
}

export interface HarmonyMessage {
  role: Role;
  /** For role 'tool', the author written in the header (e.g. functions.get_weather); else `role:name`. */
  name?: string;
  /** Written as ` to={recipient}` (left out when "all"). */
  recipient?: string;
  channel?: string;
  /** Written as ` {contentType}`; a leading `<|constrain|>` is the special token. */
  contentType?: string;
  content: string | SystemContent | DeveloperContent;
}

/** A message parsed from model output: always text content. */
export interface ParsedMessage extends HarmonyMessage {
  content: string;
}

export const DEFAULT_MODEL_IDENTITY = 'You are ChatGPT, a large language model trained by OpenAI.';
export const DEFAULT_KNOWLEDGE_CUTOFF = '2024-06';
export const DEFAULT_CHANNELS: readonly string[] = ['analysis', 'commentary', 'final'];
