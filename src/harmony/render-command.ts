// `gpt-oss-webgpu render`: shows the prompt a request renders to, or parses model output tokens.

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadModelTokenizer, type HarmonyTokenizer } from '../tokenizer/index.js';
import { HARMONY_TOKENS } from '../tokenizer/special-tokens.js';
import { renderChatCompletion } from './chat-completions.js';
import { HarmonyParseError, HarmonyRequestError } from './errors.js';
import { renderResponsesInput } from './responses.js';
import { parseHarmonyTokens } from './stream-parser.js';
import type { ParsedMessage } from './types.js';

const USAGE = `usage: render --request FILE      Chat Completions request body (JSON) -> {"token_ids", "text"}
       render --responses FILE    Responses request body (JSON) -> {"token_ids", "text"}
       render --parse FILE        JSON array of output token ids -> parsed messages
options:
  --tokenizer DIR   folder with tokenizer.json (default: the generated o200k_harmony one)
  --date YYYY-MM-DD the prompt's "Current date" (default: today, UTC)
  --strict          parse: fail on malformed output instead of recovering
`;

export interface RenderCommandContext {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** How `--tokenizer DIR` (undefined: the generated one) becomes a tokenizer. */
  loadTokenizer?: (dir: string | undefined) => Promise<HarmonyTokenizer>;
}

/** Runs `render` with the arguments that follow it; returns the exit code. */
export async function renderCommand(argv: string[], io: RenderCommandContext = process): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        request: { type: 'string' },
        responses: { type: 'string' },
        parse: { type: 'string' },
        tokenizer: { type: 'string' },
        date: { type: 'string' },
        strict: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    io.stderr.write(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const modes = [values.request, values.responses, values.parse].filter((v) => v !== undefined);
  if (modes.length !== 1) {
    io.stderr.write(USAGE);
    return 2;
  }

  try {
    const input: unknown = JSON.parse(await readFile((values.parse ?? values.request ?? values.responses)!, 'utf8'));
    const tokenizer = await (io.loadTokenizer ?? loadModelTokenizer)(values.tokenizer);
    if (values.parse !== undefined) {
      if (!Array.isArray(input) || !input.every((t) => Number.isInteger(t))) throw new Error(`${values.parse}: expected a JSON array of token ids`);
      const tokens = input as number[];
      // Output sampled after `<|start|>assistant` starts in the header; a full transcript with <|start|>.
      const role = tokens[0] === HARMONY_TOKENS.start ? null : 'assistant';
      const result = parseHarmonyTokens(tokenizer, tokens, { role, strict: values.strict ?? false });
      io.stdout.write(
        `${JSON.stringify({ messages: result.messages.map(messageJson), warnings: result.warnings, finish_reason: result.finishReason }, null, 2)}\n`,
      );
      return 0;
    }
    const options = { tokenizer, ...(values.date !== undefined ? { currentDate: values.date } : {}) };
    const prompt = values.request !== undefined ? renderChatCompletion(input, options) : renderResponsesInput(input, options);
    io.stdout.write(`${JSON.stringify({ token_ids: prompt.tokenIds, text: prompt.text })}\n`);
    return 0;
  } catch (e) {
    if (e instanceof HarmonyRequestError) io.stderr.write(`${JSON.stringify(e.toJSON())}\n`);
    else if (e instanceof HarmonyParseError) io.stderr.write(`parse error: ${e.message}\n`);
    else io.stderr.write(`${(e as Error).message}\n`);
    return 1;
  }
}

/** A parsed message with the API's snake_case field names. */
function messageJson(m: ParsedMessage): Record<string, string> {
  return {
    role: m.role,
    ...(m.name !== undefined ? { name: m.name } : {}),
    ...(m.channel !== undefined ? { channel: m.channel } : {}),
    ...(m.recipient !== undefined ? { recipient: m.recipient } : {}),
    ...(m.contentType !== undefined ? { content_type: m.contentType } : {}),
    content: m.content,
  };
}
