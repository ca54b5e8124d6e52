// The automaton's state frames (see automaton.ts), apart so the step helpers can build them.
import type { LitSet, SNode } from './schema/core.js';

export const K_ROOT = 0;
export const K_DONE = 1;
export const K_VAL = 2;
export const K_OBJ = 3;
export const K_ARR = 4;
export const K_STR = 5;
export const K_NUM = 6;
export const K_LIT = 7;
export const K_RX = 8;
export const K_DEC = 9;

/**
 * One frame. Field use by kind:
 *  VAL: node, a = whitespace so far, d = depth
 *  OBJ: node, a = phase, b = next property index (or members so far for free-form), c = whitespace, d = depth, e = key index
 *  ARR: node, a = phase, b = items so far, c = whitespace, d = depth
 *  STR: a = chars, b = max chars, c = escape state (0, 1 after \, 2..5 hex digits left + 1), d = min chars, e = UTF-8 state
 *  NUM: a = phase, b = digits, c = 1 for integer, node (integer ranges), d = 1 if negative, e = |value| so far
 *  LIT: set, a = lo, b = hi, c = pos
 *  RX: node, a = chars, b = DFA state, c = mode (0, 1 after \, 2 in \u, 3 in UTF-8), d = code point so far, e = hex digits left or UTF-8 state
 *  DEC: node, a = phase, b = digits, c = fraction digits, d = 1 if negative, e = the digits as an integer
 *  DONE: a = info of what completed (the matched candidate for text)
 */
export class Frame {
  constructor(
    readonly k: number,
    readonly up: Frame | null,
    readonly node: SNode | null,
    readonly set: LitSet | null,
    readonly a: number,
    readonly b: number,
    readonly c: number,
    readonly d: number,
    readonly e: number,
  ) {}
}

