// Types of local-redis.mjs, for the TypeScript tests.
export function freePort(): Promise<number>;
export interface LocalRedis {
  port: number;
  url: string;
  readonly pid: number | null;
  pause(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}
export function startRedis(opts?: { port?: number; bin?: string; maxmemory?: string }): Promise<LocalRedis>;
