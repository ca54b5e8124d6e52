// A stand-in engine for the server tests: it "samples" what `next(prompt)` returns (harmony text
// as token ids), honouring maxTokens, stop tokens, onToken and the signal, so a real client can be
// run against exact, known answers without a GPU.
import type { GenerateOptions, GenerateResult } from '../../src/engine/engine.js';
import type { ServingEngine } from '../../src/server/model-host.js';

export class ScriptedEngine implements ServingEngine {
  readonly contextLength: number;
  readonly config = { eosTokenIds: [] as number[] };
  isBusy = false;
  /** Wait before the first token (a prefill that takes time). */
  delayMs = 0;
  /** Every prompt the engine was given, in order. */
  readonly prompts: number[][] = [];

  constructor(
    public next: (prompt: readonly number[]) => number[],
    contextLength = 65536,
  ) {
    this.contextLength = contextLength;
  }

  async generate(prompt: readonly number[], o: GenerateOptions): Promise<GenerateResult> {
    if (this.isBusy) throw new Error('busy');
    this.isBusy = true;
    this.prompts.push([...prompt]);
    const tokens: number[] = [];
    const stop = new Set(o.stopTokens ?? []);
    let finishReason: GenerateResult['finishReason'] = 'length';
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      for (const id of this.next(prompt)) {
        if (tokens.length >= o.maxTokens) break;
        await new Promise((r) => setImmediate(r));
        tokens.push(id);
        if (o.onToken?.(id) === false || o.signal?.aborted) {
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
    }
    return { tokens, finishReason, promptTokens: prompt.length, cachedTokens: 0, queueMs: 0, prefillMs: 0, decodeMs: 0 };
  }

  destroy(): void {}
}
