// Where `gpt-oss-webgpu chat` gets its answers: an engine loaded in this process (the server's
// own pieces: the harmony renderer, the output parser, its stop tokens, sampling defaults and
// token budget, no HTTP), or a running server's streaming /v1/chat/completions.
import { renderChatCompletion, type ChatMessage } from '../harmony/index.js';
import { stderrProgressBar } from '../model/hub.js';
import { DEFAULT_MAX_TOKENS } from '../server/app.js';
import { AssistantOutput, type OutputEvent } from '../server/assistant-output.js';
import { completionBudget, samplingOptions, stopTokens } from '../server/generation.js';
import { loadModel } from '../server/model-loader.js';

export type Effort = 'low' | 'medium' | 'high';

export interface AskOptions {
  effort: Effort;
  temperature?: number;
  topP?: number;
  maxTokens?: number;
}

export interface AnswerSink {
  reasoning(text: string): void;
  content(text: string): void;
}

export interface AnswerResult {
  /** Completion tokens (null when the stream was cut before its usage). */
  tokens: number | null;
  finish: string;
  /** The model that answered (a server may route `auto`). */
  model?: string;
}

export interface ChatBackend {
  /** What the banner says it talks to. */
  readonly label: string;
  answer(messages: ChatMessage[], o: AskOptions, signal: AbortSignal, sink: AnswerSink): Promise<AnswerResult>;
  close(): Promise<void>;
}

/** Output events -> the sink; messages after the first of a kind start on a new line, as the server joins them. */
function sinkEvents(sink: AnswerSink): (events: OutputEvent[]) => void {
  let content = false;
  let reasoning = false;
  let newContent = false;
  let newReasoning = false;
  return (events) => {
    for (const e of events) {
      if (e.type === 'reasoning_start') newReasoning = reasoning;
      else if (e.type === 'text_start') newContent = content;
      else if (e.type === 'reasoning_delta') {
        sink.reasoning((newReasoning ? '\n' : '') + e.text);
        reasoning = true;
        newReasoning = false;
      } else if (e.type === 'text_delta') {
        sink.content((newContent ? '\n' : '') + e.text);
        content = true;
        newContent = false;
      }
    }
  };
}

/** An engine in this process. */
export async function localBackend(spec: string, context: number, log: (m: string) => void): Promise<ChatBackend> {
  const { engine, tokenizer, dispose } = await loadModel(spec, { context, maxNumSeqs: 1, onDownloadProgress: stderrProgressBar(), log });
  const limits = { maxTokensDefault: DEFAULT_MAX_TOKENS, maxPromptTokens: null };
  return {
    label: `${spec} (in this process, context ${engine.contextLength})`,
    async answer(messages, o, signal, sink) {
      const prompt = renderChatCompletion({ messages, reasoning_effort: o.effort }, { tokenizer }).tokenIds;
      const maxTokens = completionBudget(limits, o.maxTokens, prompt.length, engine.contextLength, { prompt: 'messages', maxTokens: '--max-tokens' });
      const output = new AssistantOutput({ tokenizer, tools: null });
      const emit = sinkEvents(sink);
      const r = await engine.generate(prompt, {
        maxTokens,
        ...samplingOptions({ temperature: o.temperature, top_p: o.topP }),
        stopTokens: stopTokens(engine),
        signal,
        onToken: (t) => emit(output.push(t)),
      });
      emit(output.end());
      return { tokens: r.tokens.length, finish: r.finishReason };
    },
    async close() {
      dispose();
    },
  };
}

/** The server's error message, from its OpenAI-shaped JSON body. */
export class ServerError extends Error {}

/** A running server (its base URL, with or without /v1). */
export function httpBackend(url: string, apiKey: string | undefined, model: string | undefined): ChatBackend {
  const base = url.replace(/\/+$/, '').replace(/\/v1$/, '');
  const headers = { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) };
  return {
    label: base,
    async answer(messages, o, signal, sink) {
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers,
        signal,
        body: JSON.stringify({
          ...(model ? { model } : {}),
          messages,
          reasoning_effort: o.effort,
          ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
          ...(o.topP !== undefined ? { top_p: o.topP } : {}),
          ...(o.maxTokens !== undefined ? { max_tokens: o.maxTokens } : {}),
          stream: true,
          stream_options: { include_usage: true },
        }),
      });
      if (!res.ok) {
        const text = await res.text();
        let message = `${res.status} ${res.statusText}`;
        try {
          message = `${res.status}: ${(JSON.parse(text) as { error: { message: string } }).error.message}`;
        } catch {
          // not JSON: the status line says it
        }
        const retry = res.headers.get('retry-after');
        throw new ServerError(retry ? `${message} (retry after ${retry} s)` : message);
      }
      const out: AnswerResult = { tokens: null, finish: 'unknown', model: res.headers.get('x-gpt-oss-model') ?? undefined };
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(bytes, { stream: true });
        let end: number;
        while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
          const data = event
            .split(/\r?\n/)
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).replace(/^ /, ''))
            .join('\n');
          if (data === '') continue;
          if (data === '[DONE]') return out;
          const chunk = JSON.parse(data) as {
            error?: { message?: string };
            model?: string;
            usage?: { completion_tokens: number } | null;
            choices?: Array<{ finish_reason: string | null; delta?: { content?: string | null; reasoning?: string | null } }>;
          };
          if (chunk.error) throw new ServerError(chunk.error.message ?? 'the server reported an error');
          out.model ??= chunk.model;
          if (chunk.usage) out.tokens = chunk.usage.completion_tokens;
          const choice = chunk.choices?.[0];
          if (!choice) continue;
          if (choice.finish_reason) out.finish = choice.finish_reason;
          if (choice.delta?.reasoning) sink.reasoning(choice.delta.reasoning);
          if (choice.delta?.content) sink.content(choice.delta.content);
        }
      }
      return out;
    },
    async close() {},
  };
}
