// Checks the route schemas cannot express: how deep a body nests (the renderer recurses, and JSON
// nested thousands deep would overflow the stack), and whether function parameters are a sane
// JSON Schema (OpenAI rejects a broken one with a 400 too).
import { invalidRequest } from './errors.js';

export const MAX_JSON_DEPTH = 64;

/** Throws a 400 when `value` nests deeper than `max` arrays/objects. Iterative: no recursion. */
export function checkDepth(value: unknown, max = MAX_JSON_DEPTH): void {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= max) throw invalidRequest(`The request body nests deeper than ${max} levels.`, null, 'too_deep');
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
}

const JSON_TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates the parts of a JSON Schema the prompt renderer reads; throws a 400 naming the spot. */
export function checkToolSchema(schema: unknown, param: string): void {
  if (typeof schema === 'boolean') return;
  if (!isObject(schema)) throw invalidRequest(`Invalid schema for function: ${param} must be a JSON Schema object.`, param, 'invalid_function_parameters');
  const bad = (what: string, at: string) => invalidRequest(`Invalid schema for function: ${at} ${what}.`, at, 'invalid_function_parameters');
  const t = schema['type'];
  if (t !== undefined) {
    const types = Array.isArray(t) ? t : [t];
    if (types.length === 0 || !types.every((x) => typeof x === 'string' && JSON_TYPES.has(x))) {
      throw bad(`must be one of ${[...JSON_TYPES].join(', ')} (or an array of them)`, `${param}.type`);
    }
  }
  const props = schema['properties'];
  if (props !== undefined) {
    if (!isObject(props)) throw bad('must be an object', `${param}.properties`);
    for (const [k, v] of Object.entries(props)) checkToolSchema(v, `${param}.properties.${k}`);
  }
  const required = schema['required'];
  if (required !== undefined && !(Array.isArray(required) && required.every((x) => typeof x === 'string'))) {
    throw bad('must be an array of property names', `${param}.required`);
  }
  const en = schema['enum'];
  if (en !== undefined && !Array.isArray(en)) throw bad('must be an array', `${param}.enum`);
  for (const key of ['description', 'title'] as const) {
    if (schema[key] !== undefined && typeof schema[key] !== 'string') throw bad('must be a string', `${param}.${key}`);
  }
  const ex = schema['examples'];
  if (ex !== undefined && !Array.isArray(ex)) throw bad('must be an array', `${param}.examples`);
  const items = schema['items'];
  if (items !== undefined) {
    if (Array.isArray(items)) items.forEach((s, i) => checkToolSchema(s, `${param}.items[${i}]`));
    else checkToolSchema(items, `${param}.items`);
  }
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const list = schema[key];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.length === 0) throw bad('must be a non-empty array of schemas', `${param}.${key}`);
    list.forEach((s, i) => checkToolSchema(s, `${param}.${key}[${i}]`));
  }
  const ap = schema['additionalProperties'];
  if (ap !== undefined && typeof ap !== 'boolean') checkToolSchema(ap, `${param}.additionalProperties`);
  for (const key of ['$defs', 'definitions'] as const) {
    const defs = schema[key];
    if (defs === undefined) continue;
    if (!isObject(defs)) throw bad('must be an object', `${param}.${key}`);
    for (const [k, v] of Object.entries(defs)) checkToolSchema(v, `${param}.${key}.${k}`);
  }
}
