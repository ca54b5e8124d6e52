// JSON Schema to the TypeScript-like types gpt-oss was trained to read in `# Tools` sections.
// The rules (../shared/harmony/README.md section 5.2) follow openai/harmony exactly, including
// its quirks: a key counts as present even when its value is null, and property order is the
// schema's own (JSON.parse keeps it, except that integer-like keys come first in JavaScript).

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function has(schema: Json, key: string): boolean {
  return isObject(schema) && Object.hasOwn(schema, key);
}

function get(schema: Json, key: string): Json {
  return isObject(schema) && Object.hasOwn(schema, key) ? schema[key] : undefined;
}

function isEnum(schema: Json): boolean {
  const e = get(schema, 'enum');
  return Array.isArray(e) && e.length > 0;
}

function isNullable(schema: Json): boolean {
  return get(schema, 'nullable') === true;
}

/** Compact JSON, as serde_json prints a value. */
function json(v: Json): string {
  return JSON.stringify(v) ?? 'null';
}

/** How a default is written: quoted string, bare enum member, or JSON. */
function defaultText(schema: Json, value: Json, bareEnumStrings: boolean): string {
  if (typeof value === 'string' && !isEnum(schema)) return `default: "${value}"`;
  if (typeof value === 'string' && bareEnumStrings) return `default: ${value}`;
  return `default: ${json(value)}`;
}

function withNull(schema: Json, type: string): string {
  return isNullable(schema) && !type.includes('null') ? `${type} | null` : type;
}

/** Lines as Rust's str::lines splits them: no empty last line after a final \n, and no \r at ends. */
export function rustLines(s: string): string[] {
  if (s === '') return [];
  const lines = s.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

export function schemaToTypeScript(schema: Json, indent = ''): string {
  const oneOf = get(schema, 'oneOf');
  if (Array.isArray(oneOf)) {
    let out = '';
    for (const variant of oneOf) {
      out += `\n${indent} | ${withNull(variant, schemaToTypeScript(variant, `${indent}   `))}`;
      const comments: string[] = [];
      const description = get(variant, 'description');
      if (typeof description === 'string') comments.push(description);
      if (has(variant, 'default')) comments.push(defaultText(variant, get(variant, 'default'), false));
      if (comments.length > 0) out += ` // ${comments.join(' ')}`;
    }
    return out;
  }

  const type = get(schema, 'type');
  if (Array.isArray(type)) {
    const names = type.filter((t): t is string => typeof t === 'string').map((t) => (t === 'integer' ? 'number' : t));
    if (names.length > 0) return names.join(' | ');
  }
  switch (type) {
    case 'object':
      return objectToTypeScript(schema, indent);
    case 'string': {
      const members = get(schema, 'enum');
      const strings = Array.isArray(members) ? members.filter((m): m is string => typeof m === 'string') : [];
      return strings.length > 0 ? strings.map((m) => `"${m}"`).join(' | ') : 'string';
    }
    case 'number':
    case 'integer':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array':
      return has(schema, 'items') ? `${schemaToTypeScript(get(schema, 'items'), indent)}[]` : 'Array<any>';
    default:
      return 'any';
  }
}

function objectToTypeScript(schema: Json, indent: string): string {
  let out = '';
  const description = get(schema, 'description');
  if (typeof description === 'string') out += `${indent}// ${description}\n`;
  out += '{\n';
  const properties = get(schema, 'properties');
  if (isObject(properties)) {
    const requiredList = get(schema, 'required');
    const required = new Set(Array.isArray(requiredList) ? requiredList.filter((r) => typeof r === 'string') : []);
    for (const [key, prop] of Object.entries(properties)) {
      const optional = required.has(key) ? '' : '?';
      const title = get(prop, 'title');
      if (typeof title === 'string') out += `${indent}// ${title}\n${indent}//\n`;
      const propDescription = get(prop, 'description');
      if (!has(prop, 'oneOf') && typeof propDescription === 'string') out += `${indent}// ${propDescription}\n`;
      const examples = get(prop, 'examples');
      if (Array.isArray(examples) && examples.length > 0) {
        out += `${indent}// Examples:\n`;
        for (const ex of examples) if (typeof ex === 'string') out += `${indent}// - "${ex}"\n`;
      }

      const variants = get(prop, 'oneOf');
      if (Array.isArray(variants)) {
        out += oneOfPropertyToTypeScript(prop, key + optional, variants, indent);
        continue;
      }
      out += `${indent}${key}${optional}: ${withNull(prop, schemaToTypeScript(prop, `${indent}    `))},`;
      if (!has(prop, 'oneOf') && has(prop, 'default')) out += ` // ${defaultText(prop, get(prop, 'default'), true)}`;
      out += '\n';
    }
  }
  return `${out}${indent}}`;
}

/** A property whose schema is a oneOf: comments above, then one ` | variant` line each. */
function oneOfPropertyToTypeScript(prop: Json, name: string, variants: Json[], indent: string): string {
  let out = '';
  const raw = get(prop, 'description');
  const description = typeof raw === 'string' ? raw : undefined;
  // The property's description is skipped when the first variant carries the same one.
  const describedAbove = description !== undefined && get(variants[0], 'description') !== description;
  if (describedAbove) out += `${indent}// ${description}\n`;
  if (has(prop, 'default')) out += `${indent}// ${defaultText(prop, get(prop, 'default'), true)}\n`;
  out += `${indent}${name}:\n`;
  variants.forEach((variant, i) => {
    out += `${indent} | ${withNull(variant, schemaToTypeScript(variant, `${indent}   `))}`;
    const comments: string[] = [];
    const variantDescription = get(variant, 'description');
    if (!(i === 0 && describedAbove) && typeof variantDescription === 'string' && variantDescription !== description) {
      comments.push(variantDescription);
    }
    if (has(variant, 'default')) comments.push(defaultText(variant, get(variant, 'default'), true));
    if (comments.length > 0) out += ` // ${comments.join(' ')}`;
    out += '\n';
  });
  return `${out}${indent},\n`;
}
