// Byte steps of the pattern/format strings (RxNode) and the exact decimals (DecNode). Kept out of
// automaton.ts, which calls them from its dispatch.
import { Frame, K_DEC, K_RX } from './frame.js';
import type { DecNode, RxNode } from './schema/core.js';
import { DEC_DOT, DEC_FRAC, DEC_INT, DEC_SIGN, DEC_START, DEC_ZERO, decCanEnd, decViable } from './schema/numbers.js';
import { nextState, someViable, viable } from './schema/strings.js';

const RX_CHAR = 0;
const RX_ESC = 1;
const RX_HEX = 2;
const RX_UTF8 = 3;

const SHORT_ESCAPES: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9 };

function hexValue(x: number): number {
  if (x >= 0x30 && x <= 0x39) return x - 0x30;
  if (x >= 0x61 && x <= 0x66) return x - 0x57;
  if (x >= 0x41 && x <= 0x46) return x - 0x37;
  return -1;
}

/** The first string byte after the opening quote is fed here too (the frame starts at RX_CHAR). */
export function rxStart(node: RxNode, up: Frame): Frame {
  return new Frame(K_RX, up, node, null, 0, 0, RX_CHAR, 0, 0);
}

/**
 * One byte inside a pattern string: the code point a byte sequence spells (raw UTF-8 or a JSON
 * escape) advances the DFA once complete; each partial sequence is kept only if some code point
 * it can still become leads to a viable state. `close` is the parent after the closing quote.
 */
export function rxStep(s: Frame, x: number, out: Frame[], close: () => Frame): void {
  const node = s.node as RxNode;
  const count = s.a;
  const q = s.b;
  const take = (cp: number) => {
    const t = nextState(node.dfa, q, cp);
    if (t >= 0 && viable(node, t, count + 1)) out.push(new Frame(K_RX, s.up, node, null, count + 1, t, RX_CHAR, 0, 0));
  };
  switch (s.c) {
    case RX_CHAR:
      if (x === 0x22) {
        if (node.dfa.accept[q] && count >= node.min) out.push(close());
        return;
      }
      if (count >= node.max || x < 0x20) return;
      if (x === 0x5c) {
        // every BMP character has a \u form
        if (someViable(node, q, count, 0, 0xffff)) out.push(new Frame(K_RX, s.up, node, null, count, q, RX_ESC, 0, 0));
        return;
      }
      if (x < 0x80) return take(x);
      {
        const u = utf8Lead(x);
        if (!u) return;
        const left = u >> 16;
        const v = x & (left === 1 ? 0x1f : left === 2 ? 0x0f : 0x07);
        const shift = 6 * left;
        // the lead byte alone may stand for overlong forms: clip to what this length encodes
        const lo = Math.max(v << shift, left === 1 ? 0x80 : left === 2 ? 0x800 : 0x10000);
        const hi = Math.min((v << shift) | ((1 << shift) - 1), left === 1 ? 0x7ff : left === 2 ? 0xffff : 0x10ffff);
        if (lo <= hi && someViable(node, q, count, lo, hi)) out.push(new Frame(K_RX, s.up, node, null, count, q, RX_UTF8, v, u));
      }
      return;
    case RX_ESC:
      if (x === 0x75) {
        out.push(new Frame(K_RX, s.up, node, null, count, q, RX_HEX, 0, 4));
        return;
      }
      if (SHORT_ESCAPES[x] !== undefined) take(SHORT_ESCAPES[x]!);
      return;
    case RX_HEX: {
      const h = hexValue(x);
      if (h < 0) return;
      const v = s.d * 16 + h;
      const left = s.e - 1;
      if (!left) return take(v);
      const lo = v << (4 * left);
      if (someViable(node, q, count, lo, lo + (1 << (4 * left)) - 1)) out.push(new Frame(K_RX, s.up, node, null, count, q, RX_HEX, v, left));
      return;
    }
    default: {
      const u = s.e;
      if (x < ((u >> 8) & 0xff) || x > (u & 0xff)) return;
      const v = (s.d << 6) | (x & 0x3f);
      const left = (u >> 16) - 1;
      if (!left) return take(v);
      const lo = v << (6 * left);
      if (someViable(node, q, count, lo, lo + (1 << (6 * left)) - 1)) out.push(new Frame(K_RX, s.up, node, null, count, q, RX_UTF8, v, (left << 16) | 0x80bf));
    }
  }
}

export function decStart(node: DecNode, up: Frame): Frame {
  return new Frame(K_DEC, up, node, null, DEC_START, 0, 0, 0, 0);
}

/** Whether the number may end in this frame. */
export function decEnds(s: Frame): boolean {
  return decCanEnd(s.node as DecNode, s.a, s.c, s.d, s.e);
}

/**
 * One byte of an exact decimal. Returns true when the byte is not part of the number but the
 * number may end before it: the caller completes it and feeds the byte to the parent.
 */
export function decStep(s: Frame, x: number, out: Frame[]): boolean {
  const node = s.node as DecNode;
  const digit = x >= 0x30 && x <= 0x39 ? x - 0x30 : -1;
  const room = s.b < node.digits;
  let phase = -1;
  let nf = s.c;
  let v = s.e;
  let t = s.b;
  let neg = s.d;
  switch (s.a) {
    case DEC_START:
    case DEC_SIGN:
      if (x === 0x2d && s.a === DEC_START) (phase = DEC_SIGN), (neg = 1);
      else if (digit >= 0) (phase = digit ? DEC_INT : DEC_ZERO), (t = 1), (v = digit);
      break;
    case DEC_ZERO:
    case DEC_INT:
      if (digit >= 0 && s.a === DEC_INT && room) (phase = DEC_INT), t++, (v = v * 10 + digit);
      else if (x === 0x2e && !node.integer && room) phase = DEC_DOT;
      break;
    case DEC_DOT:
    case DEC_FRAC:
      if (digit >= 0 && room) (phase = DEC_FRAC), t++, nf++, (v = v * 10 + digit);
      break;
  }
  if (phase >= 0) {
    if (decViable(node, phase, t, nf, neg, v)) out.push(new Frame(K_DEC, s.up, node, null, phase, t, nf, neg, v));
    return false;
  }
  return decEnds(s);
}

/** UTF-8 state after a lead byte: (continuations << 16) | (lo << 8) | hi, or 0 if invalid. */
export function utf8Lead(x: number): number {
  if (x >= 0xc2 && x <= 0xdf) return (1 << 16) | 0x80bf;
  if (x === 0xe0) return (2 << 16) | 0xa0bf;
  if (x === 0xed) return (2 << 16) | 0x809f;
  if (x >= 0xe1 && x <= 0xef) return (2 << 16) | 0x80bf;
  if (x === 0xf0) return (3 << 16) | 0x90bf;
  if (x >= 0xf1 && x <= 0xf3) return (3 << 16) | 0x80bf;
  if (x === 0xf4) return (3 << 16) | 0x808f;
  return 0;
}
