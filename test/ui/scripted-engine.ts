// A stand-in engine for the chat page's tests: it "samples" a harmony answer chosen by the
// prompt, one token at a time with a pause between tokens (so the page sees it stream), and
// honours maxTokens, stop tokens, onToken and the abort signal like the real engine.
import type { GenerateOptions, GenerateResult } from '../../src/engine/engine.js';
import type { ServingEngine } from '../../src/server/model-host.js';

export class PacedScriptedEngine implements ServingEngine {
  readonly contextLength = 8192;
  readonly config = { eosTokenIds: [] as number[] };
  readonly maxNumSeqs = 1;
  isBusy = false;
  /** How the last generation ended, and its token count. */
  last: { finishReason: GenerateResult['finishReason']; tokens: number } | null = null;

  constructor(
    private readonly script: (prompt: readonly number[]) => number[],
    private readonly msPerToken: number,
  ) {}

  async generate(prompt: readonly number[], o: GenerateOptions): Promise<GenerateResult> {
    if (this.isBusy) throw new Error('busy');
    this.isBusy = true;
    const tokens: number[] = [];
    const stop = new Set(o.stopTokens ?? []);
    let finishReason: GenerateResult['finishReason'] = 'length';
    try {
      for (const id of this.script(prompt)) {
        if (tokens.length >= o.maxTokens) break;
        await new Promise((r) => setTimeout(r, this.msPerToken));
        if (o.signal?.aborted) {
          finishReason = 'abort';
          break;
        }
        tokens.push(id);
        if (o.onToken?.(id) === false) {
          finishReason = 'abort';
          break;
        }
        if (stop.has(id)) {
          finishReason = 'stop';
          break;
        }
      }
    } finally {
      this.isBusy = false;
      this.last = { finishReason, tokens: tokens.length };
    }
    return { tokens, finishReason, promptTokens: prompt.length, cachedTokens: 0, queueMs: 0, prefillMs: 0, decodeMs: 0 };
  }

  destroy(): void {}
}
