// UTF-8 helpers: encoding a slice of a string without allocating, and streaming decode.

/**
 * Writes the UTF-8 bytes of s[start, end) into out (which must hold 3 bytes per UTF-16 unit) and
 * returns their count. A lone surrogate becomes U+FFFD, as with TextEncoder.
 */
export function encodeUtf8Into(s: string, start: number, end: number, out: Uint8Array): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[n++] = c;
      continue;
    }
    if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 63);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < end ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        const cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
        out[n++] = 0xf0 | (cp >> 18);
        out[n++] = 0x80 | ((cp >> 12) & 63);
        out[n++] = 0x80 | ((cp >> 6) & 63);
        out[n++] = 0x80 | (cp & 63);
        i++;
        continue;
      }
      c = 0xfffd;
    }
    out[n++] = 0xe0 | (c >> 12);
    out[n++] = 0x80 | ((c >> 6) & 63);
    out[n++] = 0x80 | (c & 63);
  }
  return n;
}

/**
 * Turns a stream of token bytes into text deltas that never split a character: it emits the
 * longest valid prefix, replaces each invalid sequence by U+FFFD, and keeps an incomplete tail
 * for the next push (the WHATWG decoder does exactly this in streaming mode).
 */
export class Utf8StreamDecoder {
  // ignoreBOM keeps a leading U+FEFF as text instead of swallowing it.
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });

  constructor(private readonly bytesOf: (id: number) => Uint8Array | undefined) {}

  /** Text completed by this token; '' while a character is still incomplete. */
  push(id: number): string {
    // An id with no bytes is a decoding error: 0xFF is never valid UTF-8, so it yields U+FFFD and
    // also ends any pending partial character, which becomes U+FFFD too.
    return this.decoder.decode(this.bytesOf(id) ?? INVALID_BYTE, { stream: true });
  }

  /** Ends the stream: pending bytes of an unfinished character become U+FFFD. */
  flush(): string {
    return this.decoder.decode();
  }
}

const INVALID_BYTE = new Uint8Array([0xff]);
