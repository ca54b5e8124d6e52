// A kernel's uniform parameter struct, declared once on the host: its WGSL struct name and its
// fields (name and type, in order). The host writes parameters by field name through it, and
// ShaderCache checks it against the kernel's WGSL `struct` when it builds the pipeline, so the
// two cannot drift apart (the role of gpt_oss/metal's shared kernel-args.h).
import type { Gpu } from './device.js';
import { align, uniformBuffer } from './buffers.js';

export type ParamType = 'u32' | 'i32' | 'f32';

export interface ParamsDecl<F extends Readonly<Record<string, ParamType>> = Readonly<Record<string, ParamType>>> {
  /** The WGSL struct the kernel's uniform binding has. */
  readonly struct: string;
  /** Its fields in declaration order (every field is 4 bytes). */
  readonly fields: F;
}

export function declareParams<const F extends Readonly<Record<string, ParamType>>>(fields: F, struct = 'Params'): ParamsDecl<F> {
  return { struct, fields };
}

export type ParamValues<D extends ParamsDecl> = { readonly [K in keyof D['fields']]: number };

/** The uniform data of `values`, in the declaration's order, padded to 16 bytes. */
export function packParams<D extends ParamsDecl>(d: D, values: ParamValues<D>): Uint32Array {
  const names = Object.keys(d.fields);
  const extra = Object.keys(values).filter((k) => !(k in d.fields));
  if (extra.length) throw new Error(`${d.struct}: no field ${extra.join(', ')}`);
  const out = new Uint32Array(align(Math.max(names.length, 1), 4));
  const view = new DataView(out.buffer);
  names.forEach((name, i) => {
    const v = (values as Record<string, number>)[name];
    const type = d.fields[name]!;
    if (v === undefined || Number.isNaN(v)) throw new Error(`${d.struct}.${name}: no value`);
    if (type === 'u32') {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`${d.struct}.${name}: u32 out of range: ${v}`);
      view.setUint32(i * 4, v, true);
    } else if (type === 'i32') {
      if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new Error(`${d.struct}.${name}: i32 out of range: ${v}`);
      view.setInt32(i * 4, v, true);
    } else {
      view.setFloat32(i * 4, v, true);
    }
  });
  return out;
}

/** A uniform buffer holding `values` laid out by the declaration. */
export function paramsBuffer<D extends ParamsDecl>(gpu: Gpu, d: D, values: ParamValues<D>, label: string): GPUBuffer {
  return uniformBuffer(gpu, packParams(d, values), label);
}

/** The fields of `struct NAME { ... }` in WGSL source, or null when it has none. */
export function wgslStructFields(source: string, name: string): { name: string; type: string }[] | null {
  const text = source.replace(/\/\/[^\n]*/g, '');
  const m = new RegExp(`\\bstruct\\s+${name}\\s*\\{([^}]*)\\}`).exec(text);
  if (!m) return null;
  return m[1]!
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f.length)
    .map((f) => {
      const fm = /^(?:@\S+\s+)*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.+)$/s.exec(f);
      return fm ? { name: fm[1]!, type: fm[2]!.replace(/\s+/g, '') } : { name: f, type: '?' };
    });
}

/** The struct types of the module's `var<uniform>` bindings. */
export function wgslUniformStructs(source: string): string[] {
  const text = source.replace(/\/\/[^\n]*/g, '');
  const out = new Set<string>();
  for (const m of text.matchAll(/var\s*<\s*uniform\s*>\s*[A-Za-z_][A-Za-z0-9_]*\s*:\s*([A-Za-z_][A-Za-z0-9_]*)\s*;/g)) {
    if (wgslStructFields(text, m[1]!)) out.add(m[1]!);
  }
  return [...out];
}

/**
 * Throws, naming the kernel and the field, unless the declaration matches the WGSL struct it names
 * field for field (count, order, name and type).
 */
export function checkParams(kernel: string, source: string, d: ParamsDecl): void {
  const wgsl = wgslStructFields(source, d.struct);
  if (!wgsl) throw new Error(`kernel ${kernel}: its WGSL has no struct ${d.struct} for the declared params`);
  const host = Object.entries(d.fields).map(([name, type]) => ({ name, type }));
  const show = (fs: { name: string; type: string }[]) => fs.map((f) => `${f.name}: ${f.type}`).join(', ');
  for (let i = 0; i < Math.max(wgsl.length, host.length); i++) {
    const w = wgsl[i];
    const h = host[i];
    if (w && h && w.name === h.name && w.type === h.type) continue;
    const where = `kernel ${kernel}: ${d.struct} field ${i}`;
    if (!h) throw new Error(`${where} (${w!.name}: ${w!.type}) is missing from the host declaration; WGSL has {${show(wgsl)}}, the host {${show(host)}}`);
    if (!w) throw new Error(`${where} (${h.name}: ${h.type}) is declared on the host but not in WGSL; WGSL has {${show(wgsl)}}, the host {${show(host)}}`);
    throw new Error(`${where} is ${w.name}: ${w.type} in WGSL but ${h.name}: ${h.type} in the host declaration; WGSL has {${show(wgsl)}}, the host {${show(host)}}`);
  }
}
