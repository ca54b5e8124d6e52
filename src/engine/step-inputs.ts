// Prepare inputs, host-only: a scheduled step (StepPlan) becomes the words its kernels read (a
// TokInfo per token, the token of each logits row, a SampleRow per sampled row, the masks of
// constrained rows), the attention entries the host plans from, and its typed StepShape. The
// executor (step-exec.ts) writes them to the GPU.
import type { AttentionWork, StepShape } from '../gpu/buffers.js';
import { NO_GIVEN, NO_LOGPROBS, PROC_ENTRIES, PROC_ENTRY_WORDS, PROC_ROW_WORDS, SAMPLE_ROW_WORDS, SAMPLED_ID, TOK_INFO_WORDS, type StepCapacity } from './ops/context.js';
import { needsTokenHistory, rowProcessing } from './logits-processing.js';
import type { AttentionEntry } from './ops/attention.js';
import type { StepPlan } from './scheduler.js';
import type { EngineSeq, SeqRequest } from './sequences.js';

/** A step ready to execute: its plan, the words to write, and its shape. */
export interface PreparedStep {
  plan: StepPlan<SeqRequest>;
  /** Tokens, rows and samples of the step; the executor adds the attention work it plans. */
  shape: StepShape;
  tokWords: Uint32Array;
  rowWords: Uint32Array;
  sampleWords: Uint32Array;
  /** Allowed-token masks of constrained rows, by sequence slot. */
  masks: { slot: number; words: Uint32Array }[];
  /** The runs of tokens per sequence, for the attention plans. */
  attention: AttentionEntry[];
  /** Logits rows come back to the host (every prompt row's, or a sampled row's for onLogits). */
  readLogits: boolean;
  /** ProcRows and their entries (logits processing, logprobs); the sample index of each row. */
  procWords: Uint32Array;
  entryWords: Uint32Array;
  procSamples: number[];
  /** Per processed row: for a prompt row, its sequence and the prompt position whose token's logprob it gives (sampled rows: null). */
  procPrompt: ({ seq: EngineSeq; pos: number } | null)[];
  /** Some processed row wants logprobs: their records come back. */
  readLogprobs: boolean;
}

export const NO_ATTENTION: AttentionWork = { decode: 0, prefill: 0, combine: 0 };

export class StepInputWriter {
  private readonly tokWords: Uint32Array;
  private readonly rowWords: Uint32Array;
  private readonly sampleWords: Uint32Array;
  private readonly sampleFloats: Float32Array;
  private readonly procWords: Uint32Array;
  private readonly procFloats: Float32Array;
  private readonly entryWords = new Uint32Array(PROC_ENTRIES * PROC_ENTRY_WORDS);
  private readonly entryFloats = new Float32Array(this.entryWords.buffer);
  private allOnes: Uint32Array | null = null;

  constructor(
    cap: Pick<StepCapacity, 'tokens' | 'rows' | 'samples'>,
    /** u32 words of one allowed-token mask. */
    private readonly maskWords: number,
  ) {
    this.tokWords = new Uint32Array(cap.tokens * TOK_INFO_WORDS);
    this.rowWords = new Uint32Array(Math.max(1, cap.rows));
    this.sampleWords = new Uint32Array(Math.max(1, cap.samples) * SAMPLE_ROW_WORDS);
    this.sampleFloats = new Float32Array(this.sampleWords.buffer);
    this.procWords = new Uint32Array(Math.max(1, cap.samples, cap.rows) * PROC_ROW_WORDS);
    this.procFloats = new Float32Array(this.procWords.buffer);
  }

  /** The step's inputs (views into this writer's arrays: valid until the next prepare). */
  prepare(plan: StepPlan<SeqRequest>): PreparedStep {
    let rows = 0;
    let samples = 0;
    let readLogits = false;
    const attention: AttentionEntry[] = [];
    const masks: PreparedStep['masks'] = [];
    const procSamples: number[] = [];
    const procPrompt: PreparedStep['procPrompt'] = [];
    let entries = 0;
    let readLogprobs = false;
    for (const e of plan.entries) {
      const seq = e.seq;
      const req = seq.request;
      for (let i = 0; i < e.ntok; i++) {
        const pos = e.pos0 + i;
        const w = (e.tok0 + i) * TOK_INFO_WORDS;
        // past the known tokens: the proposals this entry verifies, else a pending token, whose id
        // is only on the GPU, where the sampler left it for this slot
        const d = pos - seq.tokens.length;
        this.tokWords[w] = d < 0 ? seq.tokens[pos]! : d < e.draft.length ? e.draft[d]! : (SAMPLED_ID | seq.slot) >>> 0;
        this.tokWords[w + 1] = pos;
        this.tokWords[w + 2] = seq.slot;
      }
      attention.push({ tok0: e.tok0, ntok: e.ntok, seq: seq.slot, pos0: e.pos0 });
      if (req.prefillLogits && e.pos0 < seq.promptLength) {
        for (let i = 0; i < e.ntok; i++) this.rowWords[rows++] = e.tok0 + i;
        readLogits = true;
      } else {
        const top = req.opts.promptLogprobs;
        // prompt logprobs: each prompt position's row gives the next prompt token's logprob
        if (top !== undefined) {
          for (let p = e.pos0; p < Math.min(e.pos0 + e.ntok, seq.promptLength - 1); p++) {
            this.rowWords[rows++] = e.tok0 + (p - e.pos0);
            const pw = procSamples.length * PROC_ROW_WORDS;
            this.procWords.fill(0, pw, pw + PROC_ROW_WORDS);
            this.procWords[pw] = NO_GIVEN;
            this.procWords[pw + 1] = rows - 1;
            this.procWords[pw + 3] = entries;
            this.procWords[pw + 4] = top;
            this.procWords[pw + 7] = seq.tokens[p + 1]!;
            procSamples.push(-1);
            procPrompt.push({ seq, pos: p + 1 });
            readLogprobs = true;
          }
        }
        // the sequence's last token, then each proposal: every one of those positions is drawn
        if (e.sample) for (let j = e.draft.length; j >= 0; j--) this.rowWords[rows++] = e.tok0 + e.ntok - 1 - j;
      }
      if (!e.sample) continue;
      const o = req.opts;
      if (o.onLogits) readLogits = true;
      const constrained = o.constraint?.next() ?? null;
      if (constrained && constrained.length !== this.maskWords) throw new Error(`sampler mask has ${constrained.length} words, expected ${this.maskWords}`);
      if (constrained && e.draft.length) throw new Error('a constrained sequence cannot verify proposals');
      for (let j = 0; j <= e.draft.length; j++) {
        let mask = constrained;
        const row = rows - 1 - e.draft.length + j;
        // a verified position's penalties count the proposals before it as generated tokens
        const history = j && needsTokenHistory(o) ? [...seq.tokens, ...e.draft.slice(0, j)] : seq.tokens;
        const proc = rowProcessing(o, history, seq.promptLength, PROC_ENTRIES - entries);
        if (proc) {
          const pw = procSamples.length * PROC_ROW_WORDS;
          this.procWords[pw] = samples;
          this.procWords[pw + 1] = row;
          this.procWords[pw + 2] = proc.ids.length;
          this.procWords[pw + 3] = entries;
          this.procWords[pw + 4] = proc.top;
          this.procFloats[pw + 5] = proc.minP;
          this.procFloats[pw + 6] = o.temperature ?? 0;
          this.procWords[pw + 7] = NO_GIVEN;
          proc.ids.forEach((id, q) => {
            const ew = (entries + q) * PROC_ENTRY_WORDS;
            this.entryWords[ew] = id;
            this.entryFloats[ew + 1] = proc.add[q]!;
            this.entryFloats[ew + 2] = proc.rep[q]!;
          });
          entries += proc.ids.length;
          procSamples.push(samples);
          procPrompt.push(null);
          readLogprobs ||= proc.top !== NO_LOGPROBS;
          // changed logits are not the unembedding's greedy pick: the row takes the sampler's full
          // path, as a masked row does (with every token allowed when it has no constraint)
          if (proc.changes && !mask) mask = this.allOnes ??= new Uint32Array(this.maskWords).fill(0xffffffff);
        }
        if (mask && masks.at(-1)?.slot !== seq.slot) masks.push({ slot: seq.slot, words: mask });
        const w = samples++ * SAMPLE_ROW_WORDS;
        this.sampleWords[w] = row;
        this.sampleWords[w + 1] = seq.slot;
        this.sampleWords[w + 2] = (o.seed ?? 0) >>> 0;
        // the index of the token being sampled (a pending one counts): a verified position draws
        // with the counter its token would have had without speculation, so seeded runs agree
        this.sampleWords[w + 3] = seq.generated + seq.pending - 1 + j;
        this.sampleFloats[w + 4] = o.temperature ?? 0;
        this.sampleFloats[w + 5] = o.topP ?? 1;
        this.sampleWords[w + 6] = o.topK ?? 0;
        this.sampleWords[w + 7] = mask ? 1 : 0;
      }
    }
    return {
      plan,
      shape: { tokens: plan.tokens, rows, samples, processRows: procSamples.length, attention: { sliding: NO_ATTENTION, full: NO_ATTENTION } },
      tokWords: this.tokWords.subarray(0, plan.tokens * TOK_INFO_WORDS),
      rowWords: this.rowWords.subarray(0, rows),
      sampleWords: this.sampleWords.subarray(0, samples * SAMPLE_ROW_WORDS),
      masks,
      attention,
      readLogits,
      procWords: this.procWords.subarray(0, procSamples.length * PROC_ROW_WORDS),
      entryWords: this.entryWords.subarray(0, entries * PROC_ENTRY_WORDS),
      procSamples,
      procPrompt,
      readLogprobs,
    };
  }
}
