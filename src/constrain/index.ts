// Constrained decoding: JSON Schema -> per-token masks over the o200k_harmony vocabulary, and the
// harmony drivers for response_format and tool_choice. See harmony.ts for the API.
export {
  ConstraintViolation,
  createJsonSchemaConstraint,
  createJsonValueConstraint,
  createToolCallConstraint,
  FIRST_SPECIAL_ID,
  HARMONY_IDS,
  JSON_OBJECT_SCHEMA,
  type FunctionTool,
  type HarmonyConstraintOptions,
  type TokenConstraint,
  type ToolChoice,
} from './harmony.js';
export { compileSchema, DEFAULT_BOUNDS, UnsupportedSchemaError, validateSupportedSchema, type ConstraintBounds } from './schema.js';
export { VocabIndex, type TokenSource } from './vocab.js';
