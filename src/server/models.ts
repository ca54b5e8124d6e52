// The models one server serves, and how a request's `model` resolves to one of them. Each model
// has its own host (loading, then ready) and its own admission queue in front of its engine. A
// request names one (by its name, or the spec it was loaded from), leaves `model` out (the first
// one), or names the routing model (`auto`), whose rule (routing.ts) picks the small or the large
// one.
import { basename } from 'node:path';
import type { FastifyReply } from 'fastify';
import type { HarmonyTokenizer } from '../tokenizer/index.js';
import type { AdmissionQueue } from './admission-queue.js';
import { modelNotFound } from './errors.js';
import type { Counter, ModelGauges } from './metrics.js';
import type { ModelHost, ServingEngine } from './model-host.js';
import { defaultRouting, route, type RouteReason, type RoutingConfig } from './routing.js';

export interface ServedModel {
  /** The id clients use and responses carry. */
  readonly name: string;
  /** What it was loaded from (a folder, a hub id, synthetic:NAME); requests may use it too. */
  readonly spec: string | null;
  readonly host: ModelHost;
  readonly queue: AdmissionQueue;
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

/** The id of a model given without a name: the hub id or synthetic name, a folder's base name. */
export function defaultModelName(spec: string | undefined): string {
  if (!spec) return 'gpt-oss';
  if (spec.startsWith('synthetic:') || /^[\w.-]+\/[\w.-]+(@[\w./-]+)?$/.test(spec)) return spec.replace(/@.*$/, '');
  return basename(spec.replace(/[\\/]+$/, '')) || spec;
}

/** Model ids: the same rule for `--model NAME=SPEC` and for ServerOptions.models. */
export const MODEL_NAME = /^[A-Za-z0-9][\w.:-]{0,127}$/;

/** The first name given twice, or null: the one check of model names (serve flags and createServer). */
export function duplicateName(names: readonly string[]): string | null {
  return names.find((n, i) => names.indexOf(n) !== i) ?? null;
}

/** Throws when the routing rule does not name two served models (and a name of its own). */
export function checkRouting(routing: RoutingConfig, names: readonly string[]): void {
  if (!names.includes(routing.small) || !names.includes(routing.large) || names.includes(routing.name)) {
    throw new Error(`routing: small "${routing.small}" and large "${routing.large}" must be served models, and "${routing.name}" none of them`);
  }
}

export class ModelRegistry {
  constructor(
    /** In the order given; the first serves requests that name no model. */
    readonly all: readonly ServedModel[],
    /** `model: "auto"` (or the configured name); null with a single model. */
    readonly routing: RoutingConfig | null,
    /** Counts each choice by model and reason. */
    private readonly routed: Counter,
  ) {}

  /**
   * Checks the names of the models to serve (before any loads): at least one, each once. Returns
   * the routing rule: the one given (checked against the names), else the default with two or
   * more models, else null.
   */
  static routingFor(names: readonly string[], given: RoutingConfig | undefined): RoutingConfig | null {
    if (names.length === 0) throw new Error('a server needs at least one model');
    const dup = duplicateName(names);
    if (dup) throw new Error(`two models are named "${dup}"; give them names (NAME=SOURCE)`);
    if (given && names.length < 2) throw new Error('routing needs at least two models');
    const routing = names.length > 1 ? (given ?? defaultRouting(names[0]!, names[1]!)) : null;
    if (routing) checkRouting(routing, names);
    return routing;
  }

  /** The model a request `model` names: its name, the spec it came from, or null. */
  find(name: string): ServedModel | null {
    return this.all.find((m) => m.name === name) ?? this.all.find((m) => m.spec === name) ?? null;
  }

  /** Every id a request may use: the models' names, then the routing name. */
  ids(): string[] {
    return [...this.all.map((m) => m.name), ...(this.routing ? [this.routing.name] : [])];
  }

  /** Checks a request's `model` early (absent: the first model); a 404 lists what is served. */
  check(model: unknown): void {
    if (model === undefined || model === null) return;
    if (typeof model === 'string' && (this.find(model) || model === this.routing?.name)) return;
    throw modelNotFound(String(model), this.ids());
  }

  /**
   * Picks the model for a request and renders its prompt with that model's tokenizer. The choice
   * goes into the `x-gpt-oss-model` response header and the routing counter. Throws 404 for an
   * unknown model, 503 while the chosen one loads.
   */
  choose<P extends { tokenIds: readonly number[] }>(reply: FastifyReply, req: ChoiceRequest<P>, render: (tokenizer: HarmonyTokenizer) => P): Choice<P> {
    let chosen: ServedModel;
    let reason: ChoiceReason = 'pinned';
    let rendered: { tokenizer: HarmonyTokenizer; prompt: P } | null = null;
    const routing = this.routing;
    if (req.model === undefined || req.model === null) {
      chosen = this.all[0]!;
    } else if (typeof req.model === 'string' && routing && req.model === routing.name) {
      const small = this.find(routing.small)!;
      const large = this.find(routing.large)!;
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
      if (routing.fallback && !chosen.queue.hasRoom() && other.queue.hasRoom() && other.host.status === 'ready') {
        chosen = other;
        reason = 'fallback';
      }
    } else {
      const found = typeof req.model === 'string' ? this.find(req.model) : null;
      if (!found) throw modelNotFound(String(req.model), this.ids());
      chosen = found;
    }
    const { engine, tokenizer } = chosen.host.ready();
    const prompt = rendered && rendered.tokenizer === tokenizer ? rendered.prompt : render(tokenizer);
    this.routed.inc({ model: chosen.name, reason });
    // On the raw response, so streams (which write their own head) carry it too.
    reply.raw.setHeader('x-gpt-oss-model', chosen.name);
    return { model: chosen, engine, tokenizer, prompt };
  }
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

/**
 * A model's live state for /health and /metrics. Sequences running and KV use are the engine's
 * own batching state (its page pool is the one truth about KV); an engine without it (a stand-in)
 * shows the requests the queue has let onto it and no KV use.
 */
export function modelGauges(m: ServedModel): ModelGauges {
  const engine = m.host.engine;
  const batching = engine?.batching?.() ?? null;
  return {
    name: m.name,
    queueDepth: m.queue.queueDepth,
    running: m.queue.running,
    kvInUse: batching ? batching.kvPagesUsed * batching.kvPageSize : 0,
    batching,
    context: engine?.contextLength ?? 0,
    ready: m.host.status === 'ready',
  };
}
