// Harmony, the chat format of gpt-oss (../shared/harmony/README.md), for the server:
//
//   prompt:  renderChatCompletion(body, {tokenizer}) / renderResponsesInput(body, {tokenizer})
//            -> {tokenIds, text}; renderRawPrompt(prompt, {tokenizer}) for /v1/completions.
//            Bad requests throw HarmonyRequestError (status 400, param, toJSON()).
//   sample:  stop on HARMONY_STOP_TOKEN_IDS (<|return|>, <|call|>), never on <|end|>.
//   output:  new HarmonyStreamParser(tokenizer), push(id) per sampled token, end() at the end:
//            reasoning / content / tool-call events; never throws unless {strict: true}.

export { chatCompletionToHarmony, renderChatCompletion, type ChatCompletionRequest, type ChatMessage } from './chat-completions.js';
export { HarmonyParseError, HarmonyRequestError } from './errors.js';
export { schemaToTypeScript } from './json-schema-typescript.js';
export {
  callRecipient,
  renderRawPrompt,
  type PromptOptions,
  type ReasoningHistory,
  type RenderOptions,
  type RenderedPrompt,
} from './prompt.js';
export {
  developerContentText,
  renderConversation,
  renderConversationForCompletion,
  renderConversationForTraining,
  renderMessage,
  systemContentText,
  toolsSectionText,
  type RenderConversationOptions,
} from './render.js';
export { renderResponsesInput, responsesToHarmony, responsesTools, type ResponsesInputItem, type ResponsesRenderOptions, type ResponsesRequest } from './responses.js';
export {
  HarmonyStreamParser,
  parseHarmonyTokens,
  parseHeader,
  type FinishReason,
  type HarmonyEvent,
  type MessageHeader,
  type StreamParserOptions,
  type Terminator,
} from './stream-parser.js';
export * from './types.js';
export { HARMONY_STOP_TOKEN_IDS, HARMONY_MESSAGE_END_TOKEN_IDS, HARMONY_TOKENS } from '../tokenizer/special-tokens.js';
