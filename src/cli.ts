// Command-line entry: `gpt-oss-webgpu <command> [flags]`.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFile } from 'node:fs/promises';

const HELP = `gpt-oss-webgpu: run OpenAI's gpt-oss models on any GPU through WebGPU

Usage: gpt-oss-webgpu <command> [flags]

Commands:
  serve      Serve an OpenAI-compatible API (chat completions, completions, responses)
               --model DIR|HUB_ID|synthetic:tiny  [--host 127.0.0.1] [--port 8000] [--api-key KEY]
               [--context N] [--max-queue N] [--served-model-name NAME]   (serve --help for more)
  generate   Generate tokens from prompt token ids
               --model DIR            checkpoint folder (Hugging Face or original layout)
               --prompt-ids 1,2,3     prompt token ids (or --prompt-ids-file FILE with a JSON array)
               --max-tokens N         tokens to generate (default 32)
               --temperature T        0 = greedy (default 0); --top-p P, --top-k K, --seed S
               --stop-ids 1,2         extra stop token ids (the model's eos ids always stop)
               --context N            KV-cache positions (default: prompt + max tokens)
               --chunk N              tokens per step: the prefill chunk (default 512)
               --kv-dtype f16|f32     KV cache storage (default f16)
               --logits-out FILE      write the prefill logits [prompt, vocab] as F32 safetensors
               --json                 print one JSON object
               --stats                add dispatch/submit/readback counters per decode step
  bench      Measure load, prefill and decode speed against the bandwidth roofline
               --model DIR|HUB_ID|synthetic:20b|120b|tiny|mini  --prompt-tokens N --gen-tokens M
               [--context C] [--json] [--profile]
  render     Render a chat request to harmony token ids (render --request FILE | --parse FILE)
  help       Show this help

Environment: GPT_OSS_WEBGPU_TOGGLES adds Dawn toggles ("enable-dawn-features=a,b").
`;

type Values = Record<string, string | boolean | undefined>;

function parse(argv: string[], options: ParseArgsConfig['options']): Values {
  return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Values;
}

function ids(text: string, what: string): number[] {
  const out = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  for (const v of out) if (!Number.isInteger(v) || v < 0) throw new UsageError(`${what}: "${v}" is not a token id`);
  return out;
}

function num(v: string | boolean | undefined, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`${what}: "${v}" is not a number`);
  return n;
}

class UsageError extends Error {}

async function generate(argv: string[]): Promise<number> {
  const v = parse(argv, {
    model: { type: 'string' },
    'prompt-ids': { type: 'string' },
    'prompt-ids-file': { type: 'string' },
    'max-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    'top-k': { type: 'string' },
    seed: { type: 'string' },
    'stop-ids': { type: 'string' },
    context: { type: 'string' },
    chunk: { type: 'string' },
    'kv-dtype': { type: 'string' },
    'logits-out': { type: 'string' },
    json: { type: 'boolean' },
    stats: { type: 'boolean' },
  });
  if (!v.model) throw new UsageError('generate needs --model DIR');
  let prompt: number[];
  if (typeof v['prompt-ids-file'] === 'string') {
    const parsed: unknown = JSON.parse(await readFile(v['prompt-ids-file'], 'utf8'));
    if (!Array.isArray(parsed)) throw new UsageError('--prompt-ids-file must hold a JSON array of token ids');
    prompt = ids(parsed.join(','), '--prompt-ids-file');
  } else if (typeof v['prompt-ids'] === 'string') {
    prompt = ids(v['prompt-ids'], '--prompt-ids');
  } else {
    throw new UsageError('generate needs --prompt-ids or --prompt-ids-file');
  }
  if (!prompt.length) throw new UsageError('the prompt is empty');
  const maxTokens = num(v['max-tokens'], '--max-tokens', 32);
  const { Engine } = await import('./engine/engine.js');
  const logitsOut = typeof v['logits-out'] === 'string' ? v['logits-out'] : undefined;
  const engine = await Engine.load(String(v.model), {
    context: v.context !== undefined ? num(v.context, '--context', 0) : prompt.length + Math.max(maxTokens, 1),
    maxBatchTokens: v.chunk !== undefined ? num(v.chunk, '--chunk', 512) : undefined,
    kvDtype: kvDtype(v['kv-dtype']),
    allLogits: !!logitsOut,
    onPlan: (p) => {
      if (!v.json) {
        const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
        console.error(
          `memory plan: weights ${mb(p.weights)}, KV cache ${mb(p.kv)} (${p.context} positions), rope ${mb(p.rope)}, ` +
            `activations ${mb(p.activations)} (chunk ${p.chunk}); total ${mb(p.total)}`,
        );
      }
    },
  });
  let prefillLogits: Float32Array | undefined;
  const res = await engine.generate(prompt, {
    maxTokens,
    temperature: num(v.temperature, '--temperature', 0),
    topP: num(v['top-p'], '--top-p', 1),
    topK: num(v['top-k'], '--top-k', 0),
    seed: num(v.seed, '--seed', 0),
    stopTokens: [...engine.config.eosTokenIds, ...(typeof v['stop-ids'] === 'string' ? ids(v['stop-ids'], '--stop-ids') : [])],
    onPrefillLogits: logitsOut ? (l) => (prefillLogits = l) : undefined,
  });
  if (logitsOut && prefillLogits) {
    const { writeSafetensors } = await import('./model/safetensors.js');
    await writeSafetensors(logitsOut, [
      { name: 'logits', dtype: 'F32', shape: [prompt.length, engine.config.vocabSize], data: prefillLogits },
    ]);
  }
  const decodeTps = res.tokens.length > 1 ? ((res.tokens.length - 1) * 1000) / res.decodeMs : 0;
  const out: Record<string, unknown> = {
    prompt_ids: prompt,
    generated_ids: res.tokens,
    finish_reason: res.finishReason,
    prefill_ms: round(res.prefillMs),
    decode_ms: round(res.decodeMs),
    decode_tokens_per_s: round(decodeTps),
  };
  if (v.stats) {
    out.stats = {
      decode_step: engine.stats.decodeStep,
      prefill: engine.stats.prefill,
      adapter: engine.gpu.info,
      subgroups: engine.shaders.useSubgroups,
    };
  }
  if (v.json) {
    console.log(JSON.stringify(out));
  } else {
    console.log(`generated ${res.tokens.length} tokens (${res.finishReason}): ${res.tokens.join(',')}`);
    console.log(`prefill ${round(res.prefillMs)} ms, decode ${round(decodeTps)} tokens/s`);
    if (v.stats) console.log(JSON.stringify(out.stats, null, 2));
  }
  engine.destroy();
  return 0;
}

function kvDtype(v: string | boolean | undefined): 'f16' | 'f32' | undefined {
  if (v === undefined) return undefined;
  if (v !== 'f16' && v !== 'f32') throw new UsageError(`--kv-dtype: "${v}" is not f16 or f32`);
  return v;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return 0;
    case 'generate':
      return generate(rest);
    case 'serve': {
      const { serveCommand } = await import('./server/serve-command.js');
      return serveCommand(rest);
    }
    case 'bench': {
      const { benchCommand } = await import('./bench/bench-command.js');
      return benchCommand(rest);
    }
    case 'render': {
      const { renderCommand } = await import('./harmony/render-command.js');
      return renderCommand(rest);
    }
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
}

/**
 * Exits once stdout and stderr have drained: on a pipe, writes are asynchronous, and exiting
 * right after printing a large JSON object (a 131072-token prompt) would cut it short.
 */
async function exit(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise((done) => s.write('', done))));
  process.exit(code);
}

main(process.argv.slice(2)).then(
  (code) => exit(code),
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      console.error(`error: ${(err as Error).message}\nRun \`gpt-oss-webgpu --help\` for usage.`);
      return exit(2);
    }
    console.error(`error: ${(err as Error).message ?? err}`);
    return exit(1);
  },
);
