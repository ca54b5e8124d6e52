// Answers to what Node's HTTP parser rejects before fastify sees a request (fastify's
// clientErrorHandler): broken framing (a bad chunk size, a body cut short of its Content-Length,
// bad header bytes), headers over the size limit, headers that arrive too slowly. The client gets
// the OpenAI error shape every other error has, when a response can still be written, and the
// connection is closed (its framing is lost).
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.js';

/** The answer to a parser error code. */
export function clientErrorAnswer(code: string | undefined): ApiError {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError(408, 'The request did not arrive in time (its headers or its body came too slowly).', 'invalid_request_error', null, 'request_timeout');
    case 'HPE_HEADER_OVERFLOW':
      return new ApiError(431, 'The request headers are too large.', 'invalid_request_error', null, 'request_header_fields_too_large');
    case 'HPE_INVALID_EOF_STATE':
      return new ApiError(400, 'The connection ended before the whole request arrived (a body shorter than its Content-Length?).', 'invalid_request_error', null, 'incomplete_request');
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return new ApiError(400, `The chunked request body is malformed (${code}).`, 'invalid_request_error', null, 'invalid_chunked_encoding');
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
      return new ApiError(400, `The request's Content-Length is invalid (${code}).`, 'invalid_request_error', null, 'invalid_content_length');
    default:
      return new ApiError(400, `The request is not valid HTTP/1.1${code ? ` (${code})` : ''}.`, 'invalid_request_error', null, 'invalid_http');
  }
}

export function openAiClientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  // A reset connection has no one to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const answer = clientErrorAnswer(err.code);
  this.log.info({ code: err.code, status: answer.status }, 'malformed HTTP request refused');
  // Not in the middle of a response already on the wire (a pipelined request after a good one).
  const inProgress = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inProgress?.headersSent) {
    const body = JSON.stringify(answer.toJSON());
    const extra = Object.entries(answer.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(
      `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroySoon();
}
