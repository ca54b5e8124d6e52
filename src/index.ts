// The package's programmatic API: load a model and generate, render and parse harmony, or embed
// the OpenAI-compatible server.
export { Engine, type EngineOptions, type GenerateOptions, type GenerateResult, type MemoryPlan } from './engine/engine.js';
export { loadEngine, type LoadedEngine, type LoadEngineOptions } from './engine/load-model.js';
export { openCheckpoint, type Checkpoint } from './model/checkpoint.js';
export type { ModelConfig } from './model/config.js';
export { syntheticConfig, syntheticGpuSource, writeSyntheticCheckpoint } from './model/synthetic.js';
export { acquireGpu, type Gpu } from './gpu/device.js';
export { loadModelTokenizer, HarmonyTokenizer } from './tokenizer/index.js';
export * as harmony from './harmony/index.js';
export { createServer, type ServerOptions } from './server/index.js';
