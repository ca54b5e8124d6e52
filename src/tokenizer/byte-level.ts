// The byte-level alphabet of tokenizer.json BPE vocabularies (GPT-2's bytes_to_unicode): every
// byte is written as one printable character, so byte strings can be JSON keys.

const BYTE_TO_CHAR: string[] = [];
/** Indexed by char code (all below 0x144); -1 for characters outside the alphabet. */
const CHAR_TO_BYTE = new Int16Array(0x144).fill(-1);

{
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    const code = printable ? b : 256 + extra++;
    BYTE_TO_CHAR[b] = String.fromCharCode(code);
    CHAR_TO_BYTE[code] = b;
  }
}

export function bytesToByteLevel(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += BYTE_TO_CHAR[b]!;
  return s;
}

/** The bytes a byte-level string stands for; undefined if it has a character outside the alphabet. */
export function byteLevelToBytes(s: string): Uint8Array | undefined {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const b = CHAR_TO_BYTE[s.charCodeAt(i)] ?? -1;
    if (b < 0) return undefined;
    out[i] = b;
  }
  return out;
}
