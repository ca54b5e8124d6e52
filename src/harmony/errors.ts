/**
 * A request the renderer cannot turn into a prompt. The server answers it with an OpenAI-style
 * 400: `{error: {message, type: 'invalid_request_error', param, code}}`.
 */
export class HarmonyRequestError extends Error {
  override name = 'HarmonyRequestError';
  readonly status = 400;
  readonly type = 'invalid_request_error';

  constructor(
    message: string,
    /** Path of the offending field, e.g. `messages[2].tool_call_id`; null when it is the whole body. */
    readonly param: string | null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** Malformed model output, thrown only by a parser in strict mode. */
export class HarmonyParseError extends Error {
  override name = 'HarmonyParseError';
}
