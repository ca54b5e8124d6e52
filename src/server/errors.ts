// Errors as data: every failure the server answers is an ApiError, serialised the way OpenAI's API
// does it (`{"error": {"message", "type", "param", "code"}}`), so the official clients map it to
// their BadRequestError, AuthenticationError, RateLimitError, ... classes by status.
import { HarmonyRequestError } from '../harmony/errors.js';

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  override name = 'ApiError';

  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Extra response headers (Retry-After, WWW-Authenticate). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toJSON(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null): ApiError =>
  new ApiError(400, message, 'invalid_request_error', param, code);

/** A parameter OpenAI defines that this server cannot honour (better a clear 400 than a silent ignore). */
export const unsupported = (param: string, why: string): ApiError =>
  new ApiError(400, `${param}: ${why}`, 'invalid_request_error', param, 'unsupported_parameter');

export const modelNotFound = (model: string, served: readonly string[]): ApiError =>
  new ApiError(
    404,
    `The model \`${model}\` does not exist or you do not have access to it. This server serves: ${served.join(', ')}.`,
    'invalid_request_error',
    'model',
    'model_not_found',
  );

export const routeNotFound = (method: string, url: string): ApiError =>
  new ApiError(404, `Invalid URL (${method} ${url.split('?')[0]})`, 'invalid_request_error', null, 'unknown_url');

export const unauthorized = (message: string): ApiError =>
  new ApiError(401, message, 'invalid_request_error', null, 'invalid_api_key', { 'www-authenticate': 'Bearer' });

export const queueFull = (retryAfterSeconds: number): ApiError =>
  new ApiError(
    429,
    'The server is busy: too many requests are waiting for the model. Retry after a short wait.',
    'rate_limit_error',
    null,
    'rate_limit_exceeded',
    { 'retry-after': String(retryAfterSeconds) },
  );

export const modelLoading = (): ApiError =>
  new ApiError(503, 'The model is still loading; retry shortly.', 'server_error', null, 'model_loading', { 'retry-after': '5' });

export const modelFailed = (why: string): ApiError =>
  new ApiError(503, `The model failed to load: ${why}`, 'server_error', null, 'model_load_failed');

export const shuttingDown = (): ApiError => new ApiError(503, 'The server is shutting down.', 'server_error', null, 'shutting_down');

/** What a 500 says: never the stack or the internal message. */
export const internalError = (): ApiError =>
  new ApiError(500, 'The server had an error while processing your request. Check the server log for details.', 'server_error');

export const contextExceeded = (promptTokens: number, maxTokens: number, context: number, param: string): ApiError =>
  new ApiError(
    400,
    `This model's maximum context length is ${context} tokens. However, you requested ${promptTokens + maxTokens} tokens ` +
      `(${promptTokens} in the prompt, ${maxTokens} for the completion). Reduce the prompt or the completion length.`,
    'invalid_request_error',
    param,
    'context_length_exceeded',
  );

/** A raised error as an ApiError: renderer errors become 400s, fastify's 4xx keep their status, the rest is a 500. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof HarmonyRequestError) return new ApiError(400, err.message, err.type, err.param, err.code);
  const e = err as { statusCode?: unknown; code?: unknown; message?: unknown; validation?: unknown };
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code = typeof e.code === 'string' ? e.code : null;
    const message = typeof e.message === 'string' ? e.message : 'bad request';
    switch (code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return new ApiError(413, 'The request body is too large.', 'invalid_request_error', null, 'request_too_large');
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return new ApiError(415, `${message}; send the body as application/json.`, 'invalid_request_error', null, 'unsupported_media_type');
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return new ApiError(400, `We could not parse the JSON body of your request: ${message}`, 'invalid_request_error', null, 'invalid_json');
      default:
        return new ApiError(status, message, 'invalid_request_error', null, null);
    }
  }
  return internalError();
}

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** `/messages/0/role` -> `messages[0].role` (OpenAI's param notation). */
export function jsonPointerToParam(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out;
}

/**
 * The most telling of an anyOf's branch errors: the deepest one, a value rule over a type
 * mismatch; when all are type mismatches at one spot, their types together.
 */
function pickError(errors: readonly AjvError[]): AjvError | undefined {
  if (!errors.some((e) => e.keyword === 'anyOf')) return errors[0];
  const branches = errors.filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'if');
  if (branches.length === 0) return errors[0];
  const depth = (e: AjvError) => e.instancePath.split('/').length;
  const deepest = Math.max(...branches.map(depth));
  const atDeepest = branches.filter((e) => depth(e) === deepest);
  const rule = atDeepest.find((e) => e.keyword !== 'type');
  if (rule) return rule;
  const types = [...new Set(atDeepest.flatMap((e) => [e.params['type']].flat().map(String)))];
  return { ...atDeepest[0]!, params: { type: types } };
}

/** The first ajv error of a body validation as a 400. */
export function validationError(errors: readonly AjvError[]): ApiError {
  const e = pickError(errors);
  if (!e) return invalidRequest('Invalid request body.');
  const at = jsonPointerToParam(e.instancePath);
  if (e.keyword === 'additionalProperties') {
    const extra = String(e.params['additionalProperty']);
    const param = at === '' ? extra : `${at}.${extra}`;
    return invalidRequest(`Unrecognized request argument supplied: ${param}`, param, 'unknown_parameter');
  }
  if (e.keyword === 'required') {
    const missing = String(e.params['missingProperty']);
    const param = at === '' ? missing : `${at}.${missing}`;
    return invalidRequest(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
  }
  const where = at === '' ? 'the request body' : `'${at}'`;
  let detail = e.message ?? 'is invalid';
  if (e.keyword === 'type') {
    const types = [e.params['type']].flat().map(String);
    detail = `must be ${types.length > 1 ? `${types.slice(0, -1).join(', ')} or ${types.at(-1)}` : types[0]}`;
  }
  if (e.keyword === 'enum' && Array.isArray(e.params['allowedValues'])) {
    detail = `must be one of ${(e.params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return invalidRequest(`Invalid value for ${where}: ${detail}.`, at === '' ? null : at, 'invalid_value');
}
