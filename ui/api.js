// The server's own API, as the page uses it: GET /v1/models and a streamed POST
// /v1/chat/completions read as server-sent events. Errors carry the server's message, its
// status and Retry-After.

export class ApiError extends Error {
  constructor(message, status = 0, retryAfter = null, code = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
    this.code = code;
  }
}

const headers = (key) => ({ 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) });

async function failure(res) {
  let message = `${res.status} ${res.statusText}`;
  let code = null;
  try {
    const body = await res.json();
    if (body?.error?.message) message = body.error.message;
    code = body?.error?.code ?? null;
  } catch {
    // not JSON: the status line says it
  }
  return new ApiError(message, res.status, res.headers.get('retry-after'), code);
}

export async function listModels(key) {
  const res = await fetch('/v1/models', { headers: headers(key) });
  if (!res.ok) throw await failure(res);
  return (await res.json()).data;
}

/**
 * Streams one chat completion. onDelta({ content, reasoning }) for each chunk that adds text;
 * resolves with { model, finish, usage } (usage from stream_options.include_usage). An abort
 * through `signal` rejects with the AbortError.
 */
export async function streamChat(body, { key, signal, onDelta, onModel }) {
  const res = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: headers(key),
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  if (!res.ok) throw await failure(res);
  const routed = res.headers.get('x-gpt-oss-model');
  if (routed) onModel?.(routed);
  const out = { model: routed, finish: null, usage: null };
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data === '' ) continue;
      if (data === '[DONE]') return out;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new ApiError(chunk.error.message ?? 'the server reported an error', 0, null, chunk.error.code ?? null);
      if (chunk.model && !out.model) {
        out.model = chunk.model;
        onModel?.(chunk.model);
      }
      if (chunk.usage) out.usage = chunk.usage;
      const choice = chunk.choices?.[0];
      if (!choice) continue;
      if (choice.finish_reason) out.finish = choice.finish_reason;
      const d = choice.delta ?? {};
      const reasoning = d.reasoning ?? d.reasoning_content ?? '';
      const content = d.content ?? '';
      if (reasoning || content) onDelta({ reasoning, content });
    }
  }
  return out;
}
