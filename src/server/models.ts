// The models one server serves. Each has its own host (loading, then ready) and its own queue in
// front of its engine. A request names one (by its name, or the spec it was loaded from), leaves
// `model` out (the first one), or names the routing model (`auto`), whose rule (routing.ts) picks
// the small or the large one.
import type { FastifyReply } from 'fastify';
import type { HarmonyTokenizer } from '../tokenizer/index.js';
import type { ServerContext } from './context.js';
import { modelNotFound } from './errors.js';
import type { ModelHost, ServingEngine } from './model-host.js';
import { route, type RouteReason } from './routing.js';
import type { GenerationScheduler } from './scheduler.js';

export interface ServedModel {
  /** The id clients use and responses carry. */
  readonly name: string;
  /** What it was loaded from (a folder, a hub id, synthetic:NAME); requests may use it too. */
  readonly spec: string | null;
  readonly host: ModelHost;
  readonly scheduler: GenerationScheduler;
  /** KV-cache positions the running sequence holds (0 when idle). */
  kvInUse: number;
}

export type ChoiceReason = 'pinned' | 'fallback' | RouteReason;

export interface Choice<P> {
  model: ServedModel;
  engine: ServingEngine;
  tokenizer: HarmonyTokenizer;
  /** The request's prompt, rendered with the chosen model's tokenizer. */
  prompt: P;
}

export interface ChoiceRequest<P> {
  /** The request's `model`. */
  model: unknown;
  effort: string | null | undefined;
  tools: number;
  /** Completion tokens asked for, if any. */
  maxTokens: number | null | undefined;
  /** The text the complexity score reads: the last user message (or the raw prompt). */
  lastUserText: (prompt: NoInfer<P>) => string;
}

/** The model a request `model` names: its name, the spec it came from, or null. */
export function findModel(ctx: ServerContext, name: string): ServedModel | null {
  return ctx.models.find((m) => m.name === name) ?? ctx.models.find((m) => m.spec === name) ?? null;
}

/** Every id a request may use: the models' names, then the routing name. */
export function servedIds(ctx: ServerContext): string[] {
  return [...ctx.models.map((m) => m.name), ...(ctx.routing ? [ctx.routing.name] : [])];
}

/**
 * Picks the model for a request and renders its prompt with that model's tokenizer. The choice
 * goes into the `x-gpt-oss-model` response header and the routing counter. Throws 404 for an
 * unknown model, 503 while the chosen one loads.
 */
export function chooseModel<P extends { tokenIds: readonly number[] }>(
  ctx: ServerContext,
  reply: FastifyReply,
  req: ChoiceRequest<P>,
  render: (tokenizer: HarmonyTokenizer) => P,
): Choice<P> {
  let chosen: ServedModel;
  let reason: ChoiceReason = 'pinned';
  let rendered: { tokenizer: HarmonyTokenizer; prompt: P } | null = null;
  const routing = ctx.routing;
  if (req.model === undefined || req.model === null) {
    chosen = ctx.models[0]!;
  } else if (typeof req.model === 'string' && routing && req.model === routing.name) {
    const small = findModel(ctx, routing.small)!;
    const large = findModel(ctx, routing.large)!;
    // The rule needs the prompt's length: rendered with whichever tokenizer is there already.
    const probe = small.host.status === 'ready' ? small : large.host.status === 'ready' ? large : small;
    const { tokenizer } = probe.host.ready();
    const prompt = render(tokenizer);
    rendered = { tokenizer, prompt };
    const smallContext = small.host.engine?.contextLength ?? Infinity;
    const decision = route(routing, {
      effort: req.effort ?? null,
      tools: req.tools,
      promptTokens: prompt.tokenIds.length,
      neededContext: prompt.tokenIds.length + Math.max(1, req.maxTokens ?? 1),
      smallContext,
      lastUserText: req.lastUserText(prompt),
    });
    chosen = decision.size === 'large' ? large : small;
    reason = decision.reason;
    const other = chosen === large ? small : large;
    if (routing.fallback && !chosen.scheduler.hasRoom() && other.scheduler.hasRoom() && other.host.status === 'ready') {
      chosen = other;
      reason = 'fallback';
    }
  } else {
    const found = typeof req.model === 'string' ? findModel(ctx, req.model) : null;
    if (!found) throw modelNotFound(String(req.model), servedIds(ctx));
    chosen = found;
  }
  const { engine, tokenizer } = chosen.host.ready();
  const prompt = rendered && rendered.tokenizer === tokenizer ? rendered.prompt : render(tokenizer);
  ctx.metrics.routed.inc({ model: chosen.name, reason });
  // On the raw response, so streams (which write their own head) carry it too.
  reply.raw.setHeader('x-gpt-oss-model', chosen.name);
  return { model: chosen, engine, tokenizer, prompt };
}

type Part = { type?: unknown; text?: unknown };
const textOf = (content: unknown): string =>
  typeof content === 'string'
    ? content
    : Array.isArray(content)
      ? content
          .filter((p: Part) => typeof p?.text === 'string')
          .map((p: Part) => p.text as string)
          .join('\n')
      : '';

/** The last user message of Chat `messages` or Responses `input` items, as text. */
export function lastUserText(items: unknown): string {
  if (typeof items === 'string') return items;
  if (!Array.isArray(items)) return '';
  for (let i = items.length - 1; i >= 0; i--) {
    const m = items[i] as { role?: unknown; type?: unknown; content?: unknown };
    if (m?.role === 'user' && (m.type === undefined || m.type === 'message')) return textOf(m.content);
  }
  return '';
}
