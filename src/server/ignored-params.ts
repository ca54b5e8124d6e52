// Request fields a route does not know. By default they are accepted and ignored, as vLLM,
// llama.cpp and Ollama do (real payloads carry open-webui's custom params, LiteLLM's extra_body,
// Codex's client_metadata): each is removed before validation, named in the
// `x-gpt-oss-ignored-params` response header, and logged at warn the first time this process
// sees that name. With strict params (--strict-params) the route schema refuses them with
// OpenAI's 400 "Unrecognized request argument supplied".
//
// Only objects whose schema closes them (additionalProperties: false) are walked: the top level
// and nested option objects (reasoning, text, stream_options, tools). Known fields keep their
// checks: a value this server cannot honour is still a 400 naming the field and value.
import type { FastifyReply, FastifyRequest } from 'fastify';

export const IGNORED_PARAMS_HEADER = 'x-gpt-oss-ignored-params';

const MAX_LISTED = 32;
/** Names remembered as logged; past that a new name is logged each time it comes. */
const MAX_WARNED = 1024;

export interface ParamSettings {
  /** Refuse unknown fields (OpenAI's behaviour) instead of ignoring them. */
  strict: boolean;
  /** Names already logged by this process. */
  warned: Set<string>;
}

type Schema = Record<string, unknown>;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function allowsObject(s: Schema): boolean {
  const t = s['type'];
  return t === 'object' || (Array.isArray(t) && t.includes('object'));
}

/** Removes the unknown keys of `value` (where `schema` closes the object); their paths go to `out`. */
export function stripUnknown(value: unknown, schema: unknown, path: string, out: string[]): void {
  if (!isObject(schema)) return;
  if (Array.isArray(value)) {
    const items = schema['items'];
    if (isObject(items)) value.forEach((v, i) => stripUnknown(v, items, `${path}[${i}]`, out));
    return;
  }
  if (!isObject(value) || !allowsObject(schema)) return;
  const props = isObject(schema['properties']) ? schema['properties'] : {};
  for (const key of Object.keys(value)) {
    const at = path === '' ? key : `${path}.${key}`;
    const sub = props[key];
    if (sub === undefined) {
      if (schema['additionalProperties'] === false) {
        delete value[key];
        out.push(at);
      }
      continue;
    }
    stripUnknown(value[key], sub, at, out);
  }
}

/** A route's preValidation hook: strips what the body schema does not know (unless strict). */
export function ignoreUnknownParams(schema: Schema, settings: ParamSettings) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (settings.strict || !isObject(request.body)) return;
    const ignored: string[] = [];
    stripUnknown(request.body, schema, '', ignored);
    if (ignored.length === 0) return;
    // On the raw response, so streams (which write their own head) carry it too. Header-safe
    // (printable ASCII) and bounded: a body may carry any number of keys, named anyhow.
    const shown = ignored.slice(0, MAX_LISTED).map((p) => p.replace(/[^\x20-\x7e]/g, '?').slice(0, 128));
    reply.raw.setHeader(IGNORED_PARAMS_HEADER, shown.join(', ') + (ignored.length > MAX_LISTED ? `, ... (${ignored.length} in all)` : ''));
    const fresh = ignored.filter((p) => !settings.warned.has(p)).slice(0, MAX_LISTED);
    for (const p of fresh) if (settings.warned.size < MAX_WARNED) settings.warned.add(p);
    if (fresh.length > 0) request.log.warn({ params: fresh }, `ignored unknown request parameters: ${fresh.join(', ')} (--strict-params refuses them)`);
  };
}

/** Logs `message` at warn the first time this process meets `key` (a dropped tool type, say). */
export function warnOnce(log: { warn: (msg: string) => void }, settings: ParamSettings, key: string, message: string): void {
  if (settings.warned.has(key)) return;
  if (settings.warned.size < MAX_WARNED) settings.warned.add(key);
  log.warn(message);
}
