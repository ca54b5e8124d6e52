// A byte-level pushdown automaton over compiled schema nodes. States are immutable frames linked
// to their parent (persistent stacks), so the vocabulary walk can branch from one state into many
// bytes without copying. anyOf is nondeterministic: a step maps a set of states to a set. Every
// live state can still be completed within the bounds, so "some state survives the token's bytes"
// is exactly "the token is allowed".
import { Frame, K_DEC, K_DONE, K_LIT, K_NUM, K_OBJ, K_ROOT, K_RX, K_ARR, K_STR, K_VAL } from './frame.js';
import { canClose, keySet, minDepth, type ConstraintBounds, type LitSet, type SNode } from './schema.js';
import { decEnds, decStart, decStep, rxStart, rxStep, utf8Lead } from './steps.js';

export { Frame, K_ARR, K_DEC, K_DONE, K_LIT, K_NUM, K_OBJ, K_ROOT, K_RX, K_STR, K_VAL, utf8Lead };

// object phases
const O_OPEN = 0;
const O_KEY = 1; // a key child is on top
const O_COLON = 2;
const O_VALUE = 3; // a value child is on top
const O_AFTER = 4;
const O_COMMA = 5;
// array phases
const A_OPEN = 0;
const A_VALUE = 1;
const A_AFTER = 2;
const A_COMMA = 3;

const isWs = (x: number) => x === 0x20 || x === 0x0a || x === 0x09 || x === 0x0d;

export class Automaton {
  constructor(readonly bounds: ConstraintBounds) {}

  /** Initial state for a JSON value of `node`. */
  start(node: SNode): Frame[] {
    const root = new Frame(K_ROOT, null, node, null, 0, 0, 0, 0, 0);
    return [new Frame(K_VAL, root, node, null, 0, 0, 0, 0, 0)];
  }

  /** Initial state for literal text: one of the candidates, byte for byte. */
  startText(set: LitSet): Frame[] {
    const root = new Frame(K_ROOT, null, null, null, 0, 0, 0, 0, 0);
    return [new Frame(K_LIT, root, null, set, 0, set.bytes.length, 0, 0, 0)];
  }

  /** Advances every state by one byte. */
  step(states: readonly Frame[], x: number): Frame[] {
    const out: Frame[] = [];
    for (const s of states) this.adv(s, x, out);
    return out;
  }

  /** Whether the value may end here; returns the DONE frame (its `a` = matched info) or null. */
  finish(states: readonly Frame[]): Frame | null {
    for (let s of states) {
      for (;;) {
        if (s.k === K_DONE) return s;
        if ((s.k === K_NUM && numCanEnd(s)) || (s.k === K_LIT && litCanEnd(s)) || (s.k === K_DEC && decEnds(s))) {
          s = this.complete(s.up!, s.k === K_LIT ? s.set!.info[s.a]! : 0);
          continue;
        }
        break;
      }
    }
    return null;
  }

  /** The parent's state once its child value has completed. */
  complete(p: Frame, info: number): Frame {
    switch (p.k) {
      case K_ROOT:
        return new Frame(K_DONE, null, null, null, info, 0, 0, 0, 0);
      case K_OBJ:
        if (p.a === O_KEY) return new Frame(K_OBJ, p.up, p.node, null, O_COLON, p.b, 0, p.d, info);
        // O_VALUE
        return new Frame(K_OBJ, p.up, p.node, null, O_AFTER, (p.node as { extra: SNode | null }).extra ? p.b + 1 : p.e + 1, 0, p.d, 0);
      case K_ARR:
        return new Frame(K_ARR, p.up, p.node, null, A_AFTER, p.b + 1, 0, p.d, 0);
      default:
        throw new Error(`frame kind ${p.k} has no children`);
    }
  }

  private adv(s: Frame, x: number, out: Frame[]): void {
    switch (s.k) {
      case K_VAL:
        if (isWs(x)) {
          if (s.a < this.bounds.maxWhitespace) out.push(new Frame(K_VAL, s.up, s.node, null, s.a + 1, 0, 0, s.d, 0));
          return;
        }
        this.begin(s.node!, s.up!, s.d, x, out);
        return;
      case K_STR:
        this.str(s, x, out);
        return;
      case K_NUM:
        this.num(s, x, out);
        return;
      case K_LIT:
        this.lit(s, x, out);
        return;
      case K_RX:
        rxStep(s, x, out, () => this.complete(s.up!, 0));
        return;
      case K_DEC:
        if (decStep(s, x, out)) this.adv(this.complete(s.up!, 0), x, out);
        return;
      case K_OBJ:
        this.obj(s, x, out);
        return;
      case K_ARR:
        this.arr(s, x, out);
        return;
      default:
        return; // ROOT never on top; DONE takes no bytes
    }
  }

  /** The first byte of a value of `node` (whitespace already consumed), under parent `up`. */
  private begin(node: SNode, up: Frame, depth: number, x: number, out: Frame[]): void {
    switch (node.k) {
      case 'any':
        for (const alt of node.alts) this.begin(alt, up, depth, x, out);
        return;
      case 'obj':
        if (x === 0x7b && depth + minDepth(node) <= this.bounds.maxDepth) out.push(new Frame(K_OBJ, up, node, null, O_OPEN, 0, 0, depth + 1, 0));
        return;
      case 'arr':
        if (x === 0x5b && depth + minDepth(node) <= this.bounds.maxDepth) out.push(new Frame(K_ARR, up, node, null, A_OPEN, 0, 0, depth + 1, 0));
        return;
      case 'str':
        if (x === 0x22) out.push(new Frame(K_STR, up, null, null, 0, node.max ?? this.bounds.maxStringChars, 0, node.min ?? 0, 0));
        return;
      case 'num':
        this.num(new Frame(K_NUM, up, node.lo !== undefined ? node : null, null, NUM_START, 0, node.integer ? 1 : 0, 0, 0), x, out);
        return;
      case 'lit':
        this.lit(new Frame(K_LIT, up, null, node.set, 0, node.set.bytes.length, 0, 0, 0), x, out);
        return;
      case 'rx':
        if (x === 0x22) out.push(rxStart(node, up));
        return;
      case 'dec':
        decStep(decStart(node, up), x, out);
        return;
    }
  }

  private obj(s: Frame, x: number, out: Frame[]): void {
    const node = s.node as Extract<SNode, { k: 'obj' }>;
    const ph = s.a;
    if (ph === O_KEY || ph === O_VALUE) return; // a child is on top
    if (isWs(x)) {
      if (s.c < this.bounds.maxWhitespace) out.push(new Frame(K_OBJ, s.up, node, null, ph, s.b, s.c + 1, s.d, s.e));
      return;
    }
    if (ph === O_COLON) {
      if (x === 0x3a) {
        const waiting = new Frame(K_OBJ, s.up, node, null, O_VALUE, s.b, 0, s.d, s.e);
        const child = node.extra ?? node.props[s.e]!.node;
        out.push(new Frame(K_VAL, waiting, child, null, 0, 0, 0, s.d, 0));
      }
      return;
    }
    const free = node.extra !== null;
    if (x === 0x7d) {
      if (ph === O_COMMA) return;
      if (free || canClose(node, s.b)) out.push(this.complete(s.up!, 0));
      return;
    }
    if (x === 0x2c) {
      if (ph !== O_AFTER) return;
      if (free ? s.b < this.bounds.maxProperties : s.b < node.props.length) {
        out.push(new Frame(K_OBJ, s.up, node, null, O_COMMA, s.b, 0, s.d, 0));
      }
      return;
    }
    if (x === 0x22 && ph !== O_AFTER) {
      const waiting = new Frame(K_OBJ, s.up, node, null, O_KEY, s.b, 0, s.d, 0);
      if (free) {
        if (s.b < this.bounds.maxProperties) out.push(new Frame(K_STR, waiting, null, null, 0, this.bounds.maxKeyChars, 0, 0, 0));
        return;
      }
      const set = keySet(node, s.b, this.bounds.maxDepth - s.d);
      if (set) this.lit(new Frame(K_LIT, waiting, null, set, 0, set.bytes.length, 0, 0, 0), x, out);
    }
  }

  private arr(s: Frame, x: number, out: Frame[]): void {
    const node = s.node as Extract<SNode, { k: 'arr' }>;
    const ph = s.a;
    if (ph === A_VALUE) return;
    if (isWs(x)) {
      if (s.c < this.bounds.maxWhitespace) out.push(new Frame(K_ARR, s.up, node, null, ph, s.b, s.c + 1, s.d, 0));
      return;
    }
    if (x === 0x5d) {
      if (ph !== A_COMMA && s.b >= node.min) out.push(this.complete(s.up!, 0));
      return;
    }
    if (ph === A_AFTER) {
      if (x === 0x2c && s.b < node.max) out.push(new Frame(K_ARR, s.up, node, null, A_COMMA, s.b, 0, s.d, 0));
      return;
    }
    if (s.b >= node.max) return;
    const waiting = new Frame(K_ARR, s.up, node, null, A_VALUE, s.b, 0, s.d, 0);
    this.begin(node.items, waiting, s.d, x, out);
  }

  private str(s: Frame, x: number, out: Frame[]): void {
    const esc = s.c;
    if (esc === 1) {
      // \u escapes count as one character each, where JSON Schema counts a surrogate pair as
      // one: with a minLength they could fall short, so they are left out there.
      if (x === 0x75 && s.d === 0) out.push(new Frame(K_STR, s.up, null, null, s.a, s.b, 5, s.d, 0));
      else if (x === 0x22 || x === 0x5c || x === 0x2f || x === 0x62 || x === 0x66 || x === 0x6e || x === 0x72 || x === 0x74) {
        out.push(new Frame(K_STR, s.up, null, null, s.a, s.b, 0, s.d, 0));
      }
      return;
    }
    if (esc > 1) {
      if (isHex(x)) out.push(new Frame(K_STR, s.up, null, null, s.a, s.b, esc === 2 ? 0 : esc - 1, s.d, 0));
      return;
    }
    const u = s.e;
    if (u !== 0) {
      // u = (continuations left << 16) | (lo << 8) | hi for the next byte
      if (x < ((u >> 8) & 0xff) || x > (u & 0xff)) return;
      const left = (u >> 16) - 1;
      out.push(new Frame(K_STR, s.up, null, null, s.a, s.b, 0, s.d, left ? (left << 16) | 0x80bf : 0));
      return;
    }
    if (x === 0x22) {
      if (s.a >= s.d) out.push(this.complete(s.up!, 0));
      return;
    }
    if (s.a >= s.b || x < 0x20) return;
    if (x === 0x5c) {
      out.push(new Frame(K_STR, s.up, null, null, s.a + 1, s.b, 1, s.d, 0));
      return;
    }
    if (x < 0x80) {
      out.push(new Frame(K_STR, s.up, null, null, s.a + 1, s.b, 0, s.d, 0));
      return;
    }
    const next = utf8Lead(x);
    if (next) out.push(new Frame(K_STR, s.up, null, null, s.a + 1, s.b, 0, s.d, next));
  }

  private num(s: Frame, x: number, out: Frame[]): void {
    const ph = s.a;
    const digit = x >= 0x30 && x <= 0x39;
    const more = s.b < this.bounds.maxNumberDigits;
    const int = s.c === 1;
    let to = -1;
    let digits = s.b;
    switch (ph) {
      case NUM_START:
        if (x === 0x2d) to = NUM_SIGN;
        else if (x === 0x30) (to = NUM_ZERO), digits++;
        else if (digit) (to = NUM_INT), digits++;
        break;
      case NUM_SIGN:
        if (x === 0x30) (to = NUM_ZERO), digits++;
        else if (digit) (to = NUM_INT), digits++;
        break;
      case NUM_ZERO:
      case NUM_INT:
        if (digit && ph === NUM_INT && more) (to = NUM_INT), digits++;
        else if (x === 0x2e && !int) to = NUM_DOT;
        else if ((x === 0x65 || x === 0x45) && !int) to = NUM_E;
        break;
      case NUM_DOT:
        if (digit && more) (to = NUM_FRAC), digits++;
        break;
      case NUM_FRAC:
        if (digit && more) (to = NUM_FRAC), digits++;
        else if (x === 0x65 || x === 0x45) to = NUM_E;
        break;
      case NUM_E:
        if (x === 0x2b || x === 0x2d) to = NUM_ESIGN;
        else if (digit && more) (to = NUM_EXP), digits++;
        break;
      case NUM_ESIGN:
      case NUM_EXP:
        if (digit && more) (to = NUM_EXP), digits++;
        break;
    }
    if (to >= 0) {
      // Always leave room for one more digit where one is required.
      if ((to === NUM_DOT || to === NUM_E || to === NUM_ESIGN) && !more) return;
      const ranged = s.node as Extract<SNode, { k: 'num' }> | null;
      if (ranged) {
        // integers with a range: keep only prefixes that some in-range integer extends
        const neg = to === NUM_SIGN ? 1 : s.d;
        const value = digit ? s.e * 10 + (x - 0x30) : s.e;
        if (to === NUM_SIGN ? ranged.lo! > -1 : !rangeViable(ranged.lo!, ranged.hi!, neg === 1, value, digits, to === NUM_ZERO, this.bounds.maxNumberDigits)) return;
        out.push(new Frame(K_NUM, s.up, ranged, null, to, digits, s.c, neg, value));
        return;
      }
      out.push(new Frame(K_NUM, s.up, null, null, to, digits, s.c, 0, 0));
      return;
    }
    if (numCanEnd(s)) this.adv(this.complete(s.up!, 0), x, out);
  }

  private lit(s: Frame, x: number, out: Frame[]): void {
    const set = s.set!;
    const pos = s.c;
    let lo = -1;
    let hi = -1;
    for (let i = s.a; i < s.b; i++) {
      const c = set.bytes[i]!;
      if (c.length > pos && c[pos] === x) {
        if (lo < 0) lo = i;
        hi = i + 1;
      } else if (lo >= 0) break;
    }
    if (lo < 0) {
      if (litCanEnd(s)) this.adv(this.complete(s.up!, set.info[s.a]!), x, out);
      return;
    }
    if (hi - lo === 1 && set.bytes[lo]!.length === pos + 1) {
      out.push(this.complete(s.up!, set.info[lo]!));
      return;
    }
    out.push(new Frame(K_LIT, s.up, null, set, lo, hi, pos + 1, 0, 0));
  }
}

const NUM_START = 0;
const NUM_SIGN = 1;
const NUM_ZERO = 2;
const NUM_INT = 3;
const NUM_DOT = 4;
const NUM_FRAC = 5;
const NUM_E = 6;
const NUM_ESIGN = 7;
const NUM_EXP = 8;

function numCanEnd(s: Frame): boolean {
  const end = s.a === NUM_ZERO || s.a === NUM_INT || s.a === NUM_FRAC || s.a === NUM_EXP;
  if (!end || !s.node) return end;
  const n = s.node as Extract<SNode, { k: 'num' }>;
  const v = s.d ? -s.e : s.e;
  return v >= n.lo! && v <= n.hi!;
}

/** Whether some integer in [lo, hi] is written with the digits so far (absolute value `p`). */
function rangeViable(lo: number, hi: number, neg: boolean, p: number, digits: number, zero: boolean, maxDigits: number): boolean {
  const room = zero ? 0 : Math.min(maxDigits, 16) - digits;
  let scale = 1;
  for (let j = 0; j <= room; j++, scale *= 10) {
    const a = p * scale;
    const b = a + scale - 1;
    const from = neg ? -b : a;
    const to = neg ? -a : b;
    if (from > hi || to < lo) {
      // intervals only move away from zero as j grows
      if (neg ? to < lo : from > hi) return false;
      continue;
    }
    return true;
  }
  return false;
}

function litCanEnd(s: Frame): boolean {
  return s.set!.bytes[s.a]!.length === s.c;
}

function isHex(x: number): boolean {
  return (x >= 0x30 && x <= 0x39) || (x >= 0x61 && x <= 0x66) || (x >= 0x41 && x <= 0x46);
}
