// Command-line entry: `gpt-oss-webgpu <command> [flags]`.

const HELP = `gpt-oss-webgpu: run OpenAI's gpt-oss models on any GPU through WebGPU

Usage: gpt-oss-webgpu <command> [flags]

Commands:
  serve      Serve an OpenAI-compatible API (chat completions, completions, responses)
               --model DIR|HUB_ID|synthetic:tiny  [--host 127.0.0.1] [--port 8000] [--api-key KEY]
               [--context N] [--max-queue N] [--served-model-name NAME]   (serve --help for more)
  chat       Chat in the terminal with a model in this process or a server  (chat --help for more)
               --model DIR|HUB_ID|synthetic:tiny | --url http://127.0.0.1:8000  [--hide-reasoning]
  generate   Generate tokens from prompt token ids                          (generate --help for more)
               --model DIR|HUB_ID|synthetic:SHAPE  --prompt-ids 1,2,3 | --prompt-ids-file FILE
               [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--json] [--stats]
  bench      Measure load, prefill and decode speed against the bandwidth roofline
               --model DIR|HUB_ID|synthetic:20b|120b|tiny|mini  --prompt-tokens N --gen-tokens M
               [--context C] [--json] [--profile]                             (bench --help for more)
  render     Render a request to harmony token ids, or parse output ids     (render --help for more)
               --request FILE | --responses FILE | --parse FILE
  selftest   Check the tensor-core (subgroup-matrix) kernels on this adapter against the f32 path
               and float64 references; time dependent dispatches  [--json]   (selftest --help)
  help       Show this help

Environment: GPT_OSS_WEBGPU_TOGGLES adds Dawn toggles ("enable-dawn-features=a,b").
`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return 0;
    case 'chat': {
      const { chatCommand } = await import('./cli/chat.js');
      return chatCommand(rest);
    }
    case 'generate': {
      const { generateCommand } = await import('./cli/generate.js');
      return generateCommand(rest);
    }
    case 'serve': {
      const { serveCommand } = await import('./server/serve-command.js');
      return serveCommand(rest, { exitAtDeadline: true });
    }
    case 'bench': {
      const { benchCommand } = await import('./bench/bench-command.js');
      return benchCommand(rest);
    }
    case 'selftest': {
      const { selftestCommand } = await import('./cli/selftest.js');
      return selftestCommand(rest);
    }
    case 'render': {
      const { renderCommand } = await import('./harmony/render-command.js');
      return renderCommand(rest);
    }
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
}

/** How long exiting waits for stdout and stderr to drain. */
const DRAIN_MS = 2000;

/**
 * Exits once stdout and stderr have drained: on a pipe, writes are asynchronous, and exiting
 * right after printing a large JSON object (a 131072-token prompt) would cut it short. Bounded:
 * a pipe nobody reads never drains, and exiting must not wait on it.
 */
async function exit(code: number): Promise<never> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const drained = Promise.all([process.stdout, process.stderr].map((s) => new Promise((done) => s.write('', done))));
  await Promise.race([drained, new Promise((done) => (timer = setTimeout(done, DRAIN_MS)))]);
  clearTimeout(timer);
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
