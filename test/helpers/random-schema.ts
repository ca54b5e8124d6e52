// Seeded random JSON Schemas in the subset constrained decoding supports (nested objects,
// arrays, anyOf, enum, const, type lists, $ref to $defs).

/** Random schema in the supported subset; depth-limited, seeded. */
export function randomSchema(r: () => number, depth = 0, defs?: Record<string, unknown>): Record<string, unknown> {
  const pick = <T,>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const leaf = () =>
    pick<() => Record<string, unknown>>([
      () => ({ type: 'string' }),
      () => ({ type: 'number' }),
      () => ({ type: 'integer' }),
      () => ({ type: 'boolean' }),
      () => ({ type: 'null' }),
      () => ({ type: 'string', enum: ['red', 'green', 'blue', 'réd', 'a"b'].slice(0, 1 + Math.floor(r() * 5)) }),
      () => ({ const: pick([1, 'x', true, null, [1, 2], { k: 'v' }]) }),
      () => ({ type: ['string', 'null'] }),
      () => ({ enum: [1, 12, 123, -4.5, 'x', false] }),
    ])();
  if (depth >= 3 || r() < 0.25) return leaf();
  const kind = r();
  if (kind < 0.45) {
    const n = 1 + Math.floor(r() * 4);
    const properties: Record<string, unknown> = {};
    const required: string[] = [];
    for (let i = 0; i < n; i++) {
      const key = pick(['id', 'name', 'items', 'x', 'value', 'é_ключ', 'with space', 'q"uote']) + i;
      properties[key] = defs && r() < 0.2 ? { $ref: '#/$defs/shared' } : randomSchema(r, depth + 1, defs);
      if (r() < 0.6) required.push(key);
    }
    return { type: 'object', properties, required, additionalProperties: false, description: 'ignored' };
  }
  if (kind < 0.7) {
    const s: Record<string, unknown> = { type: 'array', items: randomSchema(r, depth + 1, defs) };
    if (r() < 0.3) s.minItems = 1;
    if (r() < 0.3) s.maxItems = 2;
    return s;
  }
  return { anyOf: [randomSchema(r, depth + 1, defs), randomSchema(r, depth + 1, defs)] };
}
