// A float64 gpt-oss forward pass in plain TypeScript, written from the oracle README's section 5
// (the math of gpt_oss/torch/model.py), with a KV cache so long sequences run in linear time per
// token. Tests compare the GPU engine with it on models the oracle does not cover.
import type { StreamSource } from '../../src/engine/weights.js';
import type { ModelConfig } from '../../src/model/config.js';
import { dequantMxfp4 } from '../../src/model/mxfp4.js';
import { ropeInvFreq } from '../../src/engine/rope.js';

interface Layer {
  attnNorm: Float64Array;
  qkvW: Float64Array;
  qkvB: Float64Array;
  sinks: Float64Array;
  outW: Float64Array;
  outB: Float64Array;
  mlpNorm: Float64Array;
  routerW: Float64Array;
  routerB: Float64Array;
  w1: Float64Array[]; // per expert [2I][H]
  b1: Float64Array;
  w2: Float64Array[]; // per expert [H][I]
  b2: Float64Array;
}

const f64 = (a: ArrayLike<number>) => Float64Array.from(a);

function matvec(w: Float64Array, x: Float64Array, rows: number, cols: number, bias?: Float64Array, bo = 0): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = bias ? bias[bo + r]! : 0;
    const o = r * cols;
    for (let c = 0; c < cols; c++) s += w[o + c]! * x[c]!;
    y[r] = s;
  }
  return y;
}

function rmsnorm(x: Float64Array, scale: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * inv * scale[i]!);
}

export interface RefStep {
  logits: Float64Array;
  /** Selected experts per layer, as id -> weight. */
  experts: Map<number, number>[];
}

export class ReferenceModel {
  private readonly kCache: Float64Array[][] = []; // [layer][position] -> [nkv * d]
  private readonly vCache: Float64Array[][] = [];
  private readonly invFreq: number[];
  private readonly conc: number;

  private constructor(
    readonly config: ModelConfig,
    private readonly embedding: Float64Array,
    private readonly layers: Layer[],
    private readonly norm: Float64Array,
    private readonly unembedding: Float64Array,
  ) {
    this.invFreq = Array.from(ropeInvFreq(config));
    this.conc = 0.1 * Math.log(config.ropeScalingFactor) + 1;
    for (let i = 0; i < config.numLayers; i++) {
      this.kCache.push([]);
      this.vCache.push([]);
    }
  }

  static async load(src: StreamSource): Promise<ReferenceModel> {
    const c = src.config;
    const H = c.hiddenSize;
    const I = c.intermediateSize;
    const read = async (n: string) => f64(await src.readF32(src.tensor(n)));
    const bytes = async (n: string) => {
      const parts: Uint8Array[] = [];
      for await (const ch of src.readChunks(src.tensor(n), 1 << 26)) parts.push(ch);
      return Buffer.concat(parts);
    };
    const layers: Layer[] = [];
    for (let i = 0; i < c.numLayers; i++) {
      const p = `layers.${i}.`;
      const b1 = await bytes(p + 'mlp1.blocks');
      const s1 = await bytes(p + 'mlp1.scales');
      const b2 = await bytes(p + 'mlp2.blocks');
      const s2 = await bytes(p + 'mlp2.scales');
      const w1: Float64Array[] = [];
      const w2: Float64Array[] = [];
      for (let e = 0; e < c.numExperts; e++) {
        const n1 = 2 * I * (H / 32);
        const n2 = H * (I / 32);
        w1.push(f64(dequantMxfp4(b1.subarray(e * n1 * 16, (e + 1) * n1 * 16), s1.subarray(e * n1, (e + 1) * n1), 2 * I, H)));
        w2.push(f64(dequantMxfp4(b2.subarray(e * n2 * 16, (e + 1) * n2 * 16), s2.subarray(e * n2, (e + 1) * n2), H, I)));
      }
      layers.push({
        attnNorm: await read(p + 'attn_norm'),
        qkvW: await read(p + 'qkv.weight'),
        qkvB: await read(p + 'qkv.bias'),
        sinks: await read(p + 'sinks'),
        outW: await read(p + 'attn_out.weight'),
        outB: await read(p + 'attn_out.bias'),
        mlpNorm: await read(p + 'mlp_norm'),
        routerW: await read(p + 'router.weight'),
        routerB: await read(p + 'router.bias'),
        w1,
        b1: await read(p + 'mlp1.bias'),
        w2,
        b2: await read(p + 'mlp2.bias'),
      });
    }
    return new ReferenceModel(c, await read('embedding'), layers, await read('norm'), await read('unembedding'));
  }

  get position(): number {
    return this.kCache[0]!.length;
  }

  private rope(v: Float64Array, off: number, pos: number): void {
    const half = this.config.headDim / 2;
    for (let j = 0; j < half; j++) {
      const a = pos * this.invFreq[j]!;
      const cos = Math.cos(a) * this.conc;
      const sin = Math.sin(a) * this.conc;
      const x1 = v[off + j]!;
      const x2 = v[off + j + half]!;
      v[off + j] = x1 * cos - x2 * sin;
      v[off + j + half] = x2 * cos + x1 * sin;
    }
  }

  /** Feeds one token at the next position; returns its logits (when wanted) and routing. */
  step(token: number, wantLogits = true): RefStep {
    const c = this.config;
    const H = c.hiddenSize;
    const d = c.headDim;
    const nq = c.numHeads;
    const nkv = c.numKvHeads;
    const I = c.intermediateSize;
    const pos = this.position;
    let x = this.embedding.slice(token * H, (token + 1) * H);
    const experts: Map<number, number>[] = [];
    this.layers.forEach((l, li) => {
      const t = rmsnorm(x, l.attnNorm, c.rmsNormEps);
      const qkv = matvec(l.qkvW, t, (nq + 2 * nkv) * d, H, l.qkvB);
      for (let h = 0; h < nq + nkv; h++) this.rope(qkv, h * d, pos);
      this.kCache[li]!.push(qkv.slice(nq * d, (nq + nkv) * d));
      this.vCache[li]!.push(qkv.slice((nq + nkv) * d));
      const sliding = c.layerTypes[li] === 'sliding';
      const lo = sliding ? Math.max(0, pos - c.slidingWindow + 1) : 0;
      const attn = new Float64Array(nq * d);
      for (let h = 0; h < nq; h++) {
        const g = Math.floor(h / (nq / nkv));
        const scores: number[] = [];
        for (let j = lo; j <= pos; j++) {
          const k = this.kCache[li]![j]!;
          let s = 0;
          for (let i = 0; i < d; i++) s += qkv[h * d + i]! * k[g * d + i]!;
          scores.push(s / Math.sqrt(d));
        }
        const m = Math.max(l.sinks[h]!, ...scores);
        const w = scores.map((s) => Math.exp(s - m));
        const z = w.reduce((a, b) => a + b, 0) + Math.exp(l.sinks[h]! - m);
        for (let j = lo; j <= pos; j++) {
          const v = this.vCache[li]![j]!;
          const p = w[j - lo]! / z;
          for (let i = 0; i < d; i++) attn[h * d + i]! += p * v[g * d + i]!;
        }
      }
      const o = matvec(l.outW, attn, H, nq * d, l.outB);
      x = x.map((v, i) => v + o[i]!);

      const u = rmsnorm(x, l.mlpNorm, c.rmsNormEps);
      const r = matvec(l.routerW, u, c.numExperts, H, l.routerB);
      const order = [...r.keys()].sort((a, b) => r[b]! - r[a]! || a - b).slice(0, c.expertsPerToken);
      const mx = r[order[0]!]!;
      const ew = order.map((e) => Math.exp(r[e]! - mx));
      const ez = ew.reduce((a, b) => a + b, 0);
      const sel = new Map<number, number>();
      const acc = new Float64Array(H);
      order.forEach((e, s) => {
        const weight = ew[s]! / ez;
        sel.set(e, weight);
        const hh = matvec(l.w1[e]!, u, 2 * I, H, l.b1, e * 2 * I);
        const act = new Float64Array(I);
        for (let i = 0; i < I; i++) {
          const gate = Math.min(hh[2 * i]!, c.swigluLimit);
          const up = Math.min(Math.max(hh[2 * i + 1]!, -c.swigluLimit), c.swigluLimit);
          act[i] = (gate / (1 + Math.exp(-1.702 * gate))) * (up + 1);
        }
        const y = matvec(l.w2[e]!, act, H, I, l.b2, e * H);
        for (let i = 0; i < H; i++) acc[i]! += weight * y[i]!;
      });
      x = x.map((v, i) => v + acc[i]!);
      experts.push(sel);
    });
    const logits = wantLogits ? matvec(this.unembedding, rmsnorm(x, this.norm, c.rmsNormEps), c.vocabSize, H) : new Float64Array(0);
    return { logits, experts };
  }
}
