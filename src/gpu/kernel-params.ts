// Every kernel's uniform parameters, declared once: the fields of its WGSL struct in order. Ops
// write them by name (paramsBuffer); ShaderCache checks each against the kernel's WGSL when it
// builds the pipeline. A kernel whose uniform is a struct other than Step (ops/context.ts writes
// that one) must have an entry here.
import { declareParams } from './params.js';

const ATTN_PARAMS = declareParams(
  { nq: 'u32', nkv: 'u32', sliding: 'u32', window: 'u32', max_blocks: 'u32', section: 'u32', count_idx: 'u32', scale: 'f32' },
  'AttnParams',
);
const MATMUL_PARAMS = declareParams({ k: 'u32', n: 'u32', n0: 'u32', ny: 'u32' });
const MOE_GEMM_PARAMS = declareParams({ kdim: 'u32', n: 'u32', k: 'u32', e: 'u32', e0: 'u32', ec: 'u32', tiles_off: 'u32', limit: 'f32' });

export const KERNEL_PARAMS = {
  embed: declareParams({ first: 'u32', count: 'u32' }, 'Shard'),
  rmsnorm: declareParams({ eps: 'f32' }),
  matmul_bf16: MATMUL_PARAMS,
  matmul_tiled: MATMUL_PARAMS,
  matmul_rows_bf16: MATMUL_PARAMS,
  matmul_sgmat: MATMUL_PARAMS,
  rope_kv_write: declareParams({ nq: 'u32', nkv: 'u32', max_blocks: 'u32' }),
  qkv_rope: declareParams({ nq: 'u32', nkv: 'u32', max_blocks: 'u32', eps: 'f32' }),
  attention: ATTN_PARAMS,
  attention_combine: ATTN_PARAMS,
  router_norm: declareParams({ e: 'u32', eps: 'f32' }),
  topk_softmax: declareParams({ e: 'u32', k: 'u32' }),
  moe_up_swiglu: declareParams({ h: 'u32', i: 'u32', k: 'u32', e: 'u32', limit: 'f32', e0: 'u32', ec: 'u32' }),
  moe_down_acc: declareParams({ h: 'u32', i: 'u32', k: 'u32', e: 'u32', e0: 'u32', ec: 'u32' }),
  moe_route: declareParams({ k: 'u32', e: 'u32', tiles_off: 'u32' }),
  moe_gemm: MOE_GEMM_PARAMS,
  moe_gemm_sgmat: MOE_GEMM_PARAMS,
  moe_gather: declareParams({ h: 'u32', k: 'u32' }),
  moe_route_parallel: declareParams({ k: 'u32', tiles_off: 'u32', used_off: 'u32' }),
  moe_grouped_matvec: declareParams({ kdim: 'u32', n: 'u32', k: 'u32', e: 'u32', e0: 'u32', ec: 'u32', used_off: 'u32', limit: 'f32' }),
  mxfp4_decode_check: declareParams({ blocks: 'u32' }),
  mxfp4_f16_check: declareParams({ blocks: 'u32' }),
  dispatch_gap: declareParams({ add: 'u32' }),
  unembed: declareParams({ n: 'u32', n0: 'u32', ny: 'u32', eps: 'f32' }),
  sample: declareParams({ vocab: 'u32', mask_words: 'u32' }),
  logits_process: declareParams({ vocab: 'u32' }),
  logprobs_pick: declareParams({ vocab: 'u32' }),
  fill_random: declareParams({
    words: 'u32',
    seed: 'u32',
    kind: 'u32',
    lo: 'u32',
    span: 'u32',
    mean: 'f32',
    sigma: 'f32',
    first: 'u32',
  }),
} as const;

export type KernelWithParams = keyof typeof KERNEL_PARAMS;
