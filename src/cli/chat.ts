// `gpt-oss-webgpu chat`: a terminal chat with a model loaded in this process (--model) or with a
// running server (--url). Answers stream as they are sampled, reasoning dimmed; the history is
// kept until /reset or the end. Ctrl-C stops the answer being written; a second Ctrl-C (with no
// prompt sent in between) exits. With stdin not a terminal it reads one prompt per line and
// prints each answer; with stdout not a terminal the answers alone go to stdout, reasoning,
// speed and notes to stderr.
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { ChatMessage } from '../harmony/index.js';
import { httpBackend, localBackend, type ChatBackend, type Effort } from './chat-backends.js';

export const CHAT_USAGE = `Usage: gpt-oss-webgpu chat (--model SPEC | --url URL) [flags]

An interactive chat in the terminal. Type a message and press Enter; the answer streams, its
reasoning dimmed, then its speed. Ctrl-C stops an answer; a second Ctrl-C exits.

  --model SPEC          load the model in this process: a folder, a Hugging Face id, or
                        synthetic:tiny (random weights, for a try-out)
  --context N           positions the in-process model may reach (default 8192)
  --url URL             talk to a running server instead (e.g. http://127.0.0.1:8000)
  --api-key KEY         the server's API key (default: $GPT_OSS_API_KEY)
  --model-name NAME     the server's model to ask (default: its first; "auto" routes)
  --system TEXT         system prompt
  --effort LEVEL        reasoning effort: low, medium or high (default medium)
  --temperature T       sampling temperature (default 1)
  --top-p P             nucleus sampling (default 1)
  --max-tokens N        longest answer (default: the server's, 4096 in-process)
  --hide-reasoning      do not print the reasoning

Commands: /effort low|medium|high, /system TEXT (empty: none), /reset (forget the history),
/help, /exit.
`;

const EFFORTS = new Set(['low', 'medium', 'high']);

export interface ChatIo {
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream;
  env?: Record<string, string | undefined>;
}

function number(v: string | undefined, flag: string, min: number, max: number, integer = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new Error(`--${flag}: "${v}" is not ${integer ? 'a whole number' : 'a number'} in [${min}, ${max}]`);
  }
  return n;
}

export async function chatCommand(argv: string[], io: ChatIo = {}): Promise<number> {
  const stdin = io.stdin ?? process.stdin;
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const env = io.env ?? process.env;
  const tty = stdout.isTTY === true;
  // Reasoning, speed and notes: beside the answer on a terminal, on stderr in a pipe.
  const side = tty ? stdout : stderr;
  const DIM = tty ? '\x1b[2m' : '';
  const UNDIM = tty ? '\x1b[22m' : '';
  const dim = (s: string) => DIM + s + UNDIM;

  let o: ReturnType<typeof parseChatArgs>;
  try {
    o = parseChatArgs(argv, env);
  } catch (e) {
    stderr.write(`error: ${(e as Error).message}\n\n${CHAT_USAGE}`);
    return 2;
  }
  if (o.help) {
    stdout.write(CHAT_USAGE);
    return 0;
  }

  let backend: ChatBackend;
  try {
    if (o.url !== undefined) backend = httpBackend(o.url, o.apiKey, o.modelName);
    else {
      stderr.write(`loading ${o.model}…\n`);
      backend = await localBackend(o.model!, o.context, () => {});
    }
  } catch (e) {
    stderr.write(`error: ${(e as Error).message}\n`);
    return 1;
  }
  side.write(dim(`chatting with ${backend.label}; /help for commands\n`));

  let system = o.system ?? '';
  let effort: Effort = o.effort;
  let history: ChatMessage[] = [];
  /** The answer being written. */
  let running: AbortController | null = null;
  /** A Ctrl-C came since the last prompt: the next one exits. */
  let interrupted = false;
  let exitCode = 0;

  const rl = createInterface({ input: stdin, output: tty && stdin.isTTY ? stdout : undefined, terminal: tty && stdin.isTTY === true });
  const prompt = () => {
    if (stdin.isTTY) rl.prompt();
  };
  const onInterrupt = () => {
    if (running) {
      running.abort();
      interrupted = true;
      return;
    }
    if (interrupted) {
      exitCode = 130;
      rl.close();
      return;
    }
    interrupted = true;
    side.write(dim('\n(Ctrl-C again or /exit to quit)\n'));
    prompt();
  };
  // On a terminal readline turns Ctrl-C into its own event; in a pipe it is the process's SIGINT.
  rl.on('SIGINT', onInterrupt);
  process.on('SIGINT', onInterrupt);

  const command = (line: string): boolean => {
    const [name, ...rest] = line.slice(1).split(/\s+/);
    const arg = line.slice(1 + name!.length).trim();
    switch (name) {
      case 'exit':
      case 'quit':
        return false;
      case 'reset':
        history = [];
        side.write(dim('(history cleared)\n'));
        return true;
      case 'system':
        system = arg;
        side.write(dim(system ? `(system prompt set)\n` : '(no system prompt)\n'));
        return true;
      case 'effort':
        if (!EFFORTS.has(rest[0] ?? '')) side.write(dim(`(reasoning effort is ${effort}; /effort low|medium|high)\n`));
        else {
          effort = rest[0] as Effort;
          side.write(dim(`(reasoning effort ${effort})\n`));
        }
        return true;
      case 'help':
        side.write(dim('/effort low|medium|high, /system TEXT, /reset, /exit; Ctrl-C stops an answer\n'));
        return true;
      default:
        side.write(dim(`(unknown command /${name}; /help lists them)\n`));
        return true;
    }
  };

  const ask = async (text: string) => {
    history.push({ role: 'user', content: text });
    const messages: ChatMessage[] = [...(system ? [{ role: 'system' as const, content: system }] : []), ...history];
    const ac = new AbortController();
    running = ac;
    let content = '';
    let reasoning = false;
    let first: number | null = null;
    const t0 = performance.now();
    const mark = () => (first ??= performance.now());
    try {
      const r = await backend.answer(messages, { effort, temperature: o.temperature, topP: o.topP, maxTokens: o.maxTokens }, ac.signal, {
        reasoning: (t) => {
          mark();
          if (o.hideReasoning) return;
          if (!reasoning) side.write(DIM);
          reasoning = true;
          side.write(t);
        },
        content: (t) => {
          mark();
          if (reasoning) {
            side.write(`${UNDIM}\n\n`);
            reasoning = false;
          }
          content += t;
          stdout.write(t);
        },
      });
      const end = performance.now();
      if (reasoning) side.write(`${UNDIM}\n`);
      else stdout.write('\n');
      const stopped = ac.signal.aborted || r.finish === 'abort';
      const parts = [
        ...(r.model && o.url !== undefined ? [r.model] : []),
        ...(r.tokens !== null ? [`${r.tokens} tokens`] : []),
        ...(r.tokens !== null && r.tokens > 1 && first !== null && end > first ? [`${((r.tokens - 1) / ((end - first) / 1000)).toFixed(1)} tokens/s`] : []),
        ...(first !== null ? [`first token ${((first - t0) / 1000).toFixed(2)} s`] : []),
        ...(stopped ? ['stopped'] : r.finish === 'length' ? ['cut at max tokens'] : []),
      ];
      side.write(dim(`[${parts.join(', ')}]\n`));
    } catch (e) {
      if (reasoning) side.write(`${UNDIM}\n`);
      else if (content) stdout.write('\n');
      if (ac.signal.aborted) side.write(dim('[stopped]\n'));
      else stderr.write(`error: ${(e as Error).message}\n`);
    } finally {
      running = null;
      if (content) history.push({ role: 'assistant', content });
    }
  };

  try {
    prompt();
    for await (const raw of rl) {
      const line = raw.trim();
      interrupted = false;
      if (line === '') {
        prompt();
        continue;
      }
      if (line.startsWith('/')) {
        if (!command(line)) break;
      } else await ask(line);
      prompt();
    }
  } finally {
    rl.close();
    process.removeListener('SIGINT', onInterrupt);
    await backend.close();
  }
  return exitCode;
}

export function parseChatArgs(argv: string[], env: Record<string, string | undefined>) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      model: { type: 'string' },
      context: { type: 'string' },
      url: { type: 'string' },
      'api-key': { type: 'string' },
      'model-name': { type: 'string' },
      system: { type: 'string' },
      effort: { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      'max-tokens': { type: 'string' },
      'hide-reasoning': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const help = values.help === true;
  if (!help && (values.model === undefined) === (values.url === undefined)) throw new Error('give either --model SPEC (in this process) or --url URL (a running server)');
  if (values.url !== undefined && values.context !== undefined) throw new Error('--context applies to --model, not --url');
  if (values.model !== undefined && values['model-name'] !== undefined) throw new Error('--model-name applies to --url; with --model the model is the one loaded');
  const effort = values.effort ?? 'medium';
  if (!EFFORTS.has(effort)) throw new Error(`--effort: "${effort}" is not low, medium or high`);
  return {
    help,
    model: values.model,
    url: values.url,
    context: number(values.context, 'context', 16, 1 << 20, true) ?? 8192,
    apiKey: values['api-key'] ?? (env['GPT_OSS_API_KEY'] || undefined),
    modelName: values['model-name'],
    system: values.system,
    effort: effort as Effort,
    temperature: number(values.temperature, 'temperature', 0, 2),
    topP: number(values['top-p'], 'top-p', 0, 1),
    maxTokens: number(values['max-tokens'], 'max-tokens', 1, 1 << 20, true),
    hideReasoning: values['hide-reasoning'] === true,
  };
}
