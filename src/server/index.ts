// The OpenAI-compatible server: `createServer` for embedding and tests, `serveCommand` for the CLI.
export { closeGracefully, createServer, DEFAULT_BODY_LIMIT, DEFAULT_MAX_QUEUE, DEFAULT_MAX_TOKENS, type ServerOptions } from './app.js';
export type { ServerContext } from './context.js';
export { ApiError, type ErrorBody } from './errors.js';
export type { ServingEngine } from './model-host.js';
export type { ModelOptions } from './model-loader.js';
export { ModelRegistry, type ServedModel } from './models.js';
export { parseServeArgs, serveCommand, SERVE_USAGE, type ServeConfig, type ServeIo } from './serve-command.js';
