import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { expectedTensors, openCheckpoint, type Checkpoint } from '../../src/model/checkpoint.js';
import { bf16ToF32Array } from '../../src/model/mxfp4.js';
import { CheckpointError, type TensorToWrite } from '../../src/model/safetensors.js';
import { ORACLE, ORACLE_MODELS, copyCheckpoint, removeTempDirs, tempDir } from './fixtures.js';

afterAll(removeTempDirs);

async function withCheckpoint<T>(dir: string, fn: (c: Checkpoint) => Promise<T>): Promise<T> {
  const c = await openCheckpoint(dir);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

/** Every canonical tensor's bytes must be identical between two checkpoints. */
async function expectSameTensors(a: Checkpoint, b: Checkpoint): Promise<void> {
  expect([...a.tensors.keys()]).toEqual([...b.tensors.keys()]);
  for (const [name, ta] of a.tensors) {
    const tb = b.tensor(name);
    expect({ dtype: tb.dtype, shape: tb.shape, byteLength: tb.byteLength }, name)
      .toEqual({ dtype: ta.dtype, shape: ta.shape, byteLength: ta.byteLength });
    const [ba, bb] = await Promise.all([a.readBytes(ta), b.readBytes(tb)]);
    expect(Buffer.from(ba).equals(Buffer.from(bb)), `${name}: bytes differ`).toBe(true);
  }
}

async function expectOpenError(dir: string, ...fragments: (string | RegExp)[]): Promise<string> {
  const err = await openCheckpoint(dir).then(
    async (c) => {
      await c.close();
      return null;
    },
    (e: unknown) => e,
  );
  expect(err, 'expected openCheckpoint to fail').toBeInstanceOf(CheckpointError);
  const msg = (err as Error).message;
  for (const f of fragments) {
    if (typeof f === 'string') expect(msg).toContain(f);
    else expect(msg).toMatch(f);
  }
  return msg;
}

describe.each(ORACLE_MODELS)('%s', (model) => {
  test('hf/ and original/ load with the full canonical map and identical bytes', async () => {
    await withCheckpoint(join(ORACLE, model, 'hf'), (hf) =>
      withCheckpoint(join(ORACLE, model, 'original'), async (orig) => {
        expect(hf.layout).toBe('hf');
        expect(orig.layout).toBe('original');
        expect(hf.unusedTensors).toEqual([]);
        expect(orig.unusedTensors).toEqual([]);
        const c = hf.config;
        expect(hf.tensors.size).toBe(3 + 15 * c.numLayers);
        // Canonical shapes and dtypes, as the engine expects them.
        const d = c.headDim;
        const qkvRows = (c.numHeads + 2 * c.numKvHeads) * d;
        expect(hf.tensor('embedding')).toMatchObject({ dtype: 'BF16', shape: [c.vocabSize, c.hiddenSize] });
        expect(hf.tensor('layers.1.qkv.weight')).toMatchObject({ dtype: 'BF16', shape: [qkvRows, c.hiddenSize] });
        expect(hf.tensor('layers.1.qkv.weight').parts.map((p) => p.tensorName)).toEqual([
          'model.layers.1.self_attn.q_proj.weight', 'model.layers.1.self_attn.k_proj.weight', 'model.layers.1.self_attn.v_proj.weight',
        ]);
        expect(orig.tensor('layers.1.qkv.weight').parts.map((p) => p.tensorName)).toEqual(['block.1.attn.qkv.weight']);
        expect(hf.tensor('layers.0.mlp1.blocks')).toMatchObject({
          dtype: 'U8', shape: [c.numExperts, 2 * c.intermediateSize, c.hiddenSize / 32, 16],
        });
        expect(hf.tensor('layers.0.mlp2.scales')).toMatchObject({ dtype: 'U8', shape: [c.numExperts, c.hiddenSize, c.intermediateSize / 32] });
        expect(hf.tensor('unembedding')).toMatchObject({ dtype: 'BF16', shape: [c.vocabSize, c.hiddenSize] });
        for (const t of hf.tensors.values()) {
          const partBytes = t.parts.reduce((n, p) => n + p.end - p.begin, 0);
          expect(partBytes).toBe(t.byteLength);
        }
        await expectSameTensors(hf, orig);
      }));
  });
});

describe('reading', () => {
  test('readChunks across parts: bounded chunks, arbitrary ranges equal readBytes slices', async () => {
    await withCheckpoint(join(ORACLE, 'tiny-e64k2', 'hf'), async (c) => {
      const t = c.tensor('layers.0.qkv.weight'); // 3 parts: q [256,64], k [64,64], v [64,64] bf16
      expect(t.parts.length).toBe(3);
      const whole = await c.readBytes(t);
      const qBytes = t.parts[0]!.end - t.parts[0]!.begin;
      const ranges = [
        { begin: 0, end: t.byteLength },
        { begin: qBytes - 100, end: qBytes + 100 }, // straddles q|k
        { begin: 5, end: t.byteLength - 3 },
        { begin: qBytes, end: qBytes },
      ];
      for (const r of ranges) {
        const chunks: Uint8Array[] = [];
        for await (const ch of c.readChunks(t, 1000, r)) {
          expect(ch.byteLength).toBeLessThanOrEqual(1000);
          chunks.push(ch);
        }
        expect(Buffer.concat(chunks).equals(Buffer.from(whole.subarray(r.begin, r.end)))).toBe(true);
        expect(Buffer.from(await c.readBytes(t, r)).equals(Buffer.from(whole.subarray(r.begin, r.end)))).toBe(true);
      }
      await expect(c.readBytes(t, { begin: 0, end: t.byteLength + 1 })).rejects.toThrow(RangeError);
    });
  });

  test('readF32 decodes BF16 and F32 vectors to the same values', async () => {
    const dir = await tempDir('f32');
    // Store every norm as F32 (allowed for vectors): same values as the bf16 original.
    await copyCheckpoint('tiny-e32k4', 'hf', dir, {
      tensors: (ts) => ts.map((t) => (t.name.endsWith('layernorm.weight') || t.name === 'model.norm.weight'
        ? { ...t, dtype: 'F32', data: bf16ToF32Array(t.data as Uint8Array) }
        : t)),
    });
    await withCheckpoint(dir, (f32) => withCheckpoint(join(ORACLE, 'tiny-e32k4', 'hf'), async (bf) => {
      expect(f32.tensor('norm').dtype).toBe('F32');
      expect(bf.tensor('norm').dtype).toBe('BF16');
      for (const name of ['norm', 'layers.3.attn_norm', 'layers.0.mlp_norm']) {
        expect(Array.from(await f32.readF32(name))).toEqual(Array.from(await bf.readF32(name)));
      }
      const v = await bf.readF32('layers.0.sinks');
      expect(v.length).toBe(bf.config.numHeads);
      expect(v.every(Number.isFinite)).toBe(true);
      await expect(bf.readF32('layers.0.mlp1.scales')).rejects.toThrow(/readF32 handles BF16 and F32/);
    }));
  });

  test('close is idempotent and later reads fail', async () => {
    const c = await openCheckpoint(join(ORACLE, 'tiny-e64k2', 'original'));
    await c.close();
    await c.close();
    await expect(c.readBytes('norm')).rejects.toThrow(/closed/);
    expect(() => c.tensor('no.such')).toThrow(/no canonical tensor "no\.such"/);
  });

  test('expectedTensors lists the canonical names in order', async () => {
    await withCheckpoint(join(ORACLE, 'tiny-e64k2', 'hf'), async (c) => {
      expect(expectedTensors(c.config).map((s) => s.name)).toEqual([...c.tensors.keys()]);
      expect([...c.tensors.keys()].slice(0, 3)).toEqual(['embedding', 'layers.0.attn_norm', 'layers.0.qkv.weight']);
      expect([...c.tensors.keys()].slice(-2)).toEqual(['norm', 'unembedding']);
    });
  });
});

describe('layouts and folders', () => {
  test('sharded HF copy (0-based shards + index, q and k of one layer in different shards) loads identically', async () => {
    const dir = await tempDir('shard');
    await copyCheckpoint('tiny-e128k4', 'hf', dir, {
      shard: {
        count: 2,
        of: (name, i) => (name === 'model.layers.1.self_attn.k_proj.weight' ? 1
          : name === 'model.layers.1.self_attn.q_proj.weight' ? 0
          : i % 2),
      },
    });
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    expect(new Set(Object.values(index.weight_map))).toEqual(new Set(['model-00000-of-00002.safetensors', 'model-00001-of-00002.safetensors']));
    await withCheckpoint(dir, (sharded) => withCheckpoint(join(ORACLE, 'tiny-e128k4', 'hf'), async (single) => {
      expect(sharded.filePaths.length).toBe(2);
      const qkv = sharded.tensor('layers.1.qkv.weight');
      expect(new Set(qkv.parts.map((p) => p.file)).size).toBe(2);
      await expectSameTensors(single, sharded);
    }));
  });

  test('HF root that also has original/: the HF files are used', async () => {
    const dir = await tempDir('root');
    await copyCheckpoint('tiny-e64k2', 'hf', dir);
    await mkdir(join(dir, 'original'));
    for (const f of ['config.json', 'model.safetensors']) await copyFile(join(ORACLE, 'tiny-e64k2', 'original', f), join(dir, 'original', f));
    await withCheckpoint(dir, async (c) => {
      expect(c.layout).toBe('hf');
      expect(c.filePaths).toEqual([join(dir, 'model.safetensors')]);
    });
    await withCheckpoint(join(dir, 'original'), async (c) => expect(c.layout).toBe('original'));
  });

  test('original layout with several *.safetensors files', async () => {
    const dir = await tempDir('origsplit');
    await copyCheckpoint('tiny-e64k2', 'original', dir, { shard: { count: 2, of: (n) => (n.startsWith('block.1.') ? 1 : 0) } });
    await rm(join(dir, 'model.safetensors.index.json')); // the reference reads every *.safetensors, no index
    await withCheckpoint(dir, (split) => withCheckpoint(join(ORACLE, 'tiny-e64k2', 'original'), async (one) => {
      expect(split.filePaths.length).toBe(2);
      await expectSameTensors(one, split);
    }));
  });

  test('a folder holding hf/ (like the oracle model folders) opens hf/', async () => {
    await withCheckpoint(join(ORACLE, 'tiny-e32k4'), async (c) => {
      expect(c.layout).toBe('hf');
      expect(c.dir).toBe(join(ORACLE, 'tiny-e32k4', 'hf'));
    });
  });
});

describe('bad checkpoints: clear errors naming file and tensor', () => {
  const rename = (from: string, to: string) => (ts: TensorToWrite[]) => ts.map((t) => (t.name === from ? { ...t, name: to } : t));

  test('truncated model.safetensors', async () => {
    const dir = await tempDir('bad');
    await copyCheckpoint('tiny-e64k2', 'hf', dir);
    const path = join(dir, 'model.safetensors');
    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, bytes.byteLength - 1000));
    await expectOpenError(dir, path, /tensor "[^"]+": data_offsets \[\d+, \d+\] extend past the end of the file/);
  });

  test('wrong shape (config vs tensor)', async () => {
    const dir = await tempDir('bad');
    const name = 'model.layers.1.self_attn.k_proj.weight';
    await copyCheckpoint('tiny-e128k4', 'hf', dir, {
      tensors: (ts) => ts.map((t) => (t.name === name ? { ...t, shape: [64, 128] } : t)),
    });
    await expectOpenError(dir, join(dir, 'model.safetensors'), `tensor "${name}"`, '"layers.1.qkv.weight"',
      'has shape [64, 128], expected [128, 64]', join(dir, 'config.json'));
  });

  test('config disagrees with the weights (original layout)', async () => {
    const dir = await tempDir('bad');
    await copyCheckpoint('tiny-e64k2', 'original', dir, { config: (c) => ({ ...c, num_experts: 32 }) });
    await expectOpenError(dir, join(dir, 'model.safetensors'), 'tensor "block.0.mlp.gate.weight"', 'expected [32, 64]');
  });

  test('more layers in the file than in the config', async () => {
    const dir = await tempDir('bad');
    await copyCheckpoint('tiny-e32k4', 'hf', dir, {
      config: (c) => ({ ...c, num_hidden_layers: 3, layer_types: (c['layer_types'] as string[]).slice(0, 3) }),
    });
    await expectOpenError(dir, 'tensor "model.layers.3.', 'belongs to layer 3', 'declares 3 layers');
  });

  test('missing tensor names the tensor and the files searched', async () => {
    const dir = await tempDir('bad');
    await copyCheckpoint('tiny-e128k4', 'hf', dir, {
      tensors: (ts) => ts.filter((t) => t.name !== 'model.layers.2.mlp.router.bias'),
    });
    await expectOpenError(dir, 'tensor "model.layers.2.mlp.router.bias" (canonical "layers.2.router.bias") is missing', `searched ${join(dir, 'model.safetensors')}`);
  });

  test('dequantized experts get a specific hint', async () => {
    const dir = await tempDir('bad');
    await copyCheckpoint('tiny-e64k2', 'hf', dir, {
      tensors: rename('model.layers.0.mlp.experts.gate_up_proj_blocks', 'model.layers.0.mlp.experts.gate_up_proj'),
    });
    await expectOpenError(dir, 'gate_up_proj_blocks', 'dequantized (BF16) experts are not supported');
  });

  test('matrix stored in a non-BF16 dtype', async () => {
    const dir = await tempDir('bad');
    const name = 'model.layers.0.mlp.router.weight';
    await copyCheckpoint('tiny-e64k2', 'hf', dir, {
      tensors: (ts) => ts.map((t) => (t.name === name ? { ...t, dtype: 'F16' } : t)),
    });
    await expectOpenError(dir, join(dir, 'model.safetensors'), `tensor "${name}"`, 'has dtype F16, expected BF16');
  });

  test('q/k/v parts with different dtypes', async () => {
    const dir = await tempDir('bad');
    const name = 'model.layers.0.self_attn.v_proj.bias';
    await copyCheckpoint('tiny-e64k2', 'hf', dir, {
      tensors: (ts) => ts.map((t) => (t.name === name ? { ...t, dtype: 'F32', data: bf16ToF32Array(t.data as Uint8Array) } : t)),
    });
    await expectOpenError(dir, `tensor "${name}"`, 'has dtype F32, but the other parts of "layers.0.qkv.bias" are BF16');
  });

  test('unknown dtype inside a checkpoint', async () => {
    const dir = await tempDir('bad');
    await copyCheckpoint('tiny-e64k2', 'hf', dir);
    const path = join(dir, 'model.safetensors');
    const bytes = await readFile(path);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = bytes.subarray(8, 8 + n).toString('utf8');
    // Same length replacement keeps every offset valid: only the dtype is wrong.
    const patched = header.replace('"dtype":"BF16","shape":[64]', '"dtype":"XF16","shape":[64]');
    expect(patched).not.toBe(header);
    bytes.write(patched, 8, 'utf8');
    await writeFile(path, bytes);
    await expectOpenError(dir, path, /tensor "[^"]+": unknown dtype "XF16"/);
  });

  test('duplicate tensor across shards', async () => {
    const dir = await tempDir('bad');
    await copyCheckpoint('tiny-e64k2', 'original', dir, { shard: { count: 2, of: (_n, i) => i % 2 } });
    await rm(join(dir, 'model.safetensors.index.json'));
    await copyFile(join(dir, 'model-00000-of-00002.safetensors'), join(dir, 'model-00002-of-00002.safetensors'));
    await expectOpenError(dir, 'model-00002-of-00002.safetensors', 'is also in', 'model-00000-of-00002.safetensors');
  });

  test('index errors: missing shard, tensor in the wrong shard, path escaping the folder', async () => {
    const dir = await tempDir('bad');
    await copyCheckpoint('tiny-e64k2', 'hf', dir, { shard: { count: 2, of: (_n, i) => i % 2 } });
    const indexPath = join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map: Record<string, string> };

    const wrong = { ...index.weight_map };
    const moved = Object.keys(wrong).find((k) => wrong[k] === 'model-00000-of-00002.safetensors')!;
    wrong[moved] = 'model-00001-of-00002.safetensors';
    await writeFile(indexPath, JSON.stringify({ weight_map: wrong }));
    await expectOpenError(dir, indexPath, `tensor "${moved}" is mapped to model-00001-of-00002.safetensors`, 'model-00000-of-00002.safetensors');

    await writeFile(indexPath, JSON.stringify({ weight_map: { ...index.weight_map, [moved]: 'model-00005-of-00006.safetensors' } }));
    await expectOpenError(dir, indexPath, 'shard model-00005-of-00006.safetensors', 'does not exist');

    await writeFile(indexPath, JSON.stringify({ weight_map: { ...index.weight_map, [moved]: '../../etc/passwd' } }));
    await expectOpenError(dir, indexPath, `tensor "${moved}"`, 'not a file name inside');

    await writeFile(indexPath, '{"weight_map": 3}');
    await expectOpenError(dir, indexPath, '"weight_map" must be an object');
  });

  test('folders without config or weights', async () => {
    const empty = await tempDir('bad');
    await expectOpenError(empty, empty, 'no config.json');
    const noWeights = await tempDir('bad');
    await copyFile(join(ORACLE, 'tiny-e64k2', 'hf', 'config.json'), join(noWeights, 'config.json'));
    await expectOpenError(noWeights, noWeights, 'no model.safetensors.index.json, model.safetensors or *.safetensors');
  });
});
