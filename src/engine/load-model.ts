// One way to turn a --model argument into an Engine: `synthetic:NAME[,layers=N][,seed=S][,zero-from=Z]`
// (random weights made on the GPU), a checkpoint folder, or a Hugging Face hub id (downloaded into
// the HF cache first); and, for speculative decoding, its proposer: n-gram lookup or a draft model
// loaded the same way into the same process.
import { resolveModel, stderrProgressBar, type DownloadProgress } from '../model/hub.js';
import { parseSyntheticSpec, syntheticConfig, syntheticGpuSource } from '../model/synthetic.js';
import { Engine, type EngineOptions, type MemoryPlan } from './engine.js';
import { DraftProposer, NgramProposer, type DraftModel } from './speculative/proposers.js';
import type { NgramRange } from './speculative/ngram.js';

export interface LoadedEngine {
  engine: Engine;
  /** The checkpoint folder, or undefined for synthetic models (they use the generated tokenizer). */
  dir?: string;
}

/** Speculative decoding as the CLI and the server ask for it. */
export type SpeculativeChoice =
  | { method: 'ngram'; tokens: number; ngram?: NgramRange }
  /** `draftModel`: a spec as --model takes; same vocabulary as the target. */
  | { method: 'draft'; tokens: number; draftModel: string };

export interface LoadEngineOptions extends Omit<EngineOptions, 'speculative'> {
  /** Download progress for hub ids; default a progress bar on stderr. */
  onDownloadProgress?: (p: DownloadProgress) => void;
  /** No progress output. */
  quiet?: boolean;
  /** Seed of synthetic weights. */
  seed?: number;
  /** Synthetic models only: the real dimensions with this many layers. */
  layers?: number;
  speculative?: SpeculativeChoice;
}

export async function loadEngine(spec: string, opts: LoadEngineOptions = {}): Promise<LoadedEngine> {
  const { speculative, ...rest } = opts;
  if (!speculative) return loadOne(spec, rest);
  if (speculative.method === 'ngram') return loadOne(spec, { ...rest, speculative: { proposer: new NgramProposer(speculative.ngram), tokens: speculative.tokens } });
  return loadWithDraft(spec, rest, speculative);
}

async function loadOne(spec: string, opts: Omit<LoadEngineOptions, 'speculative'> & Pick<EngineOptions, 'speculative'>): Promise<LoadedEngine> {
  if (spec.startsWith('synthetic:')) {
    const s = parseSyntheticSpec(spec);
    if (s.layers !== undefined && opts.layers !== undefined && s.layers !== opts.layers) throw new Error(`${spec}: layers given twice (${s.layers} and --layers ${opts.layers})`);
    const config = syntheticConfig(s.name, { layers: s.layers ?? opts.layers });
    return { engine: await Engine.load(syntheticGpuSource(config, s.seed ?? opts.seed ?? 1, s.zeroFrom), opts) };
  }
  if (opts.layers !== undefined) throw new Error(`--layers applies to synthetic models, not ${spec}`);
  const onProgress = opts.onDownloadProgress ?? (opts.quiet ? undefined : stderrProgressBar());
  const dir = await resolveModel(spec, onProgress ? { onProgress } : {});
  return { engine: await Engine.load(dir, opts), dir };
}

class PlanOnly {
  constructor(readonly plan: MemoryPlan) {}
}

/** A draft whose engine is loaded after the target's plan is accepted. */
class LateDraft implements DraftModel {
  engine: Engine | null = null;
  get contextLength(): number {
    return this.engine?.contextLength ?? 0;
  }
  generate(...a: Parameters<Engine['generate']>) {
    if (!this.engine) return Promise.reject(new Error('the draft model is not loaded'));
    return this.engine.generate(...a);
  }
}

/**
 * The target and its draft, same batching and context: the draft is planned first (nothing
 * allocated), the target's plan reports both (MemoryPlan.draft, total), then the target loads,
 * then the draft. Destroying the target destroys the draft.
 */
async function loadWithDraft(spec: string, opts: Omit<LoadEngineOptions, 'speculative'>, sp: Extract<SpeculativeChoice, { method: 'draft' }>): Promise<LoadedEngine> {
  const { onPlan, layers: _l, seed: _s, ...shared } = opts;
  let draftPlan: MemoryPlan;
  try {
    await loadOne(sp.draftModel, {
      ...shared,
      onPlan: (p) => {
        throw new PlanOnly(p);
      },
    });
    throw new Error('the draft model loaded while only its plan was asked for');
  } catch (e) {
    if (!(e instanceof PlanOnly)) throw new Error(`draft model ${sp.draftModel}: ${(e as Error).message}`);
    draftPlan = e.plan;
  }
  const late = new LateDraft();
  const proposer = new DraftProposer(late, opts.log ? (m) => opts.log!(m, undefined) : undefined);
  proposer.destroy = () => late.engine?.destroy();
  const target = await loadOne(spec, { ...opts, onPlan: (p) => onPlan?.({ ...p, total: p.total + draftPlan.total, draft: draftPlan }), speculative: { proposer, tokens: sp.tokens } });
  try {
    const draft = await loadOne(sp.draftModel, { ...shared, quiet: true });
    late.engine = draft.engine;
    const [tv, dv] = [target.engine.config.vocabSize, draft.engine.config.vocabSize];
    if (tv !== dv) throw new Error(`the draft model ${sp.draftModel} has a ${dv}-token vocabulary, the target ${spec} ${tv}: they must share the tokenizer`);
  } catch (e) {
    target.engine.destroy();
    throw e;
  }
  return target;
}

/** The speculative-decoding flags (`--speculative`, `--spec-tokens`, `--spec-ngram`, `--draft-model`) as serve, generate and bench take them. */
export interface SpeculativeFlags {
  speculative?: string;
  specTokens?: string | number;
  specNgram?: string;
  draftModel?: string;
}

export const SPEC_FLAGS_HELP = {
  speculative: 'speculative decoding: ngram (prompt lookup) or draft (needs --draft-model); default off',
  specTokens: 'most tokens proposed per sequence and step (default 4, at most 16)',
  specNgram: 'n-gram lengths matched, longest first, e.g. 1..4 (default)',
  draftModel: 'draft model for --speculative draft (implies it): a spec as --model takes, with the same tokenizer, e.g. openai/gpt-oss-20b for 120b',
};

/** The choice the flags make, or undefined for none; a clear error naming the flag otherwise. */
export function speculativeFromFlags(f: SpeculativeFlags): SpeculativeChoice | undefined {
  const method = f.speculative ?? (f.draftModel ? 'draft' : undefined);
  if (method === undefined) {
    for (const [k, flag] of [['specTokens', 'spec-tokens'], ['specNgram', 'spec-ngram']] as const) if (f[k] !== undefined) throw new Error(`--${flag} needs --speculative`);
    return undefined;
  }
  const tokens = f.specTokens === undefined ? 4 : Number(f.specTokens);
  if (!(Number.isInteger(tokens) && tokens >= 1 && tokens <= 16)) throw new Error(`--spec-tokens: "${f.specTokens}" is not a whole number in [1, 16]`);
  if (method === 'ngram') {
    if (f.draftModel) throw new Error('--draft-model goes with --speculative draft, not ngram');
    let ngram: NgramRange | undefined;
    if (f.specNgram !== undefined) {
      const m = /^(\d+)(?:\.\.(\d+))?$/.exec(f.specNgram.trim());
      ngram = m ? { min: Number(m[1]), max: Number(m[2] ?? m[1]) } : undefined;
      if (!ngram || ngram.min < 1 || ngram.max < ngram.min) throw new Error(`--spec-ngram: "${f.specNgram}" is not N or N..M with 1 <= N <= M`);
    }
    return { method, tokens, ngram };
  }
  if (method === 'draft') {
    if (!f.draftModel) throw new Error('--speculative draft needs --draft-model SPEC');
    if (f.specNgram !== undefined) throw new Error('--spec-ngram goes with --speculative ngram');
    return { method, tokens, draftModel: f.draftModel };
  }
  throw new Error(`--speculative: "${method}" is not ngram or draft`);
}
