// Encrypted reasoning for stateless clients (Responses `include: ["reasoning.encrypted_content"]`
// with `store: false`, Anthropic thinking `signature`): the model's reasoning goes out sealed with
// AES-256-GCM under a server key and comes back in a later request, where only this server (or a
// replica holding the same key) can open it. The key comes from --reasoning-key /
// GPT_OSS_REASONING_KEY (64 hex digits or 32 bytes in base64); without one each process draws a
// random key, so reasoning sealed before a restart, or by another replica, cannot be opened (it
// is then left out of the prompt, with a warning).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const PREFIX = 'gptoss1.';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Binds the ciphertext to its use: a sealed value of another kind does not open as reasoning. */
const AAD = Buffer.from('gpt-oss-webgpu reasoning v1');

/** The 32-byte key a --reasoning-key value stands for; throws on anything else. */
export function parseReasoningKey(text: string): Buffer {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const b = Buffer.from(t.replaceAll('-', '+').replaceAll('_', '/'), 'base64');
    if (b.length === 32) return b;
  }
  throw new Error('the reasoning key must be 32 bytes, written as 64 hex digits or in base64 (e.g. `openssl rand -hex 32`)');
}

export class ReasoningSeal {
  private readonly key: Buffer;
  /** True when the key was drawn at random for this process. */
  readonly ephemeral: boolean;

  constructor(key?: string | Buffer) {
    this.ephemeral = key === undefined;
    this.key = key === undefined ? randomBytes(32) : typeof key === 'string' ? parseReasoningKey(key) : Buffer.from(key);
    if (this.key.length !== 32) throw new Error('the reasoning key must be 32 bytes');
  }

  seal(text: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(AAD);
    const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  /** The sealed text, or null when it is not ours (another key, tampered, not a sealed value). */
  open(sealed: string): string | null {
    if (!sealed.startsWith(PREFIX)) return null;
    const raw = Buffer.from(sealed.slice(PREFIX.length), 'base64url');
    if (raw.length < IV_BYTES + TAG_BYTES) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
      decipher.setAAD(AAD);
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}
