// deploy/kubernetes against the Kubernetes OpenAPI schemas (kubernetes-models and its KEDA and
// prometheus-operator packages: types, required fields, enums, formats), plus unknown fields (a
// misspelt `readinesProbe` is valid to the schemas but silently ignored by a cluster: the
// package's TypeScript types reject it as an excess property), and against what the Dockerfile
// and `serve` really use: image name, port, user, environment, memory. The model replicas share
// the Redis Deployment (the Responses store) and one Secret (the reasoning-sealing key).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Service } from 'kubernetes-models/v1/Service';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { hfHubCacheDir } from '../../src/model/hub.js';
import { syntheticConfig } from '../../src/model/synthetic.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import { planModel } from '../../src/server/model-loader.js';
import { FLAGS, parseServeArgs } from '../../src/server/serve-command.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const DIR = path.join(ROOT, 'deploy', 'kubernetes');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
const IMAGE = `gpt-oss-webgpu:${pkg.version}`;

/** kind -> the model class that validates it, and the module its TypeScript type comes from. */
const KINDS: Record<string, { model: { new (data: never): { validate(): void } }; module: string }> = {
  'apps/v1 Deployment': { model: Deployment, module: 'kubernetes-models/apps/v1/Deployment' },
  'v1 Service': { model: Service, module: 'kubernetes-models/v1/Service' },
  'v1 PersistentVolumeClaim': { model: PersistentVolumeClaim, module: 'kubernetes-models/v1/PersistentVolumeClaim' },
  'policy/v1 PodDisruptionBudget': { model: PodDisruptionBudget, module: 'kubernetes-models/policy/v1/PodDisruptionBudget' },
  'keda.sh/v1alpha1 ScaledObject': { model: ScaledObject, module: '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject' },
  'monitoring.coreos.com/v1 ServiceMonitor': {
    model: ServiceMonitor,
    module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
  },
};

interface Doc {
  file: string;
  obj: { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec: any };
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(path.join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [path.join(dir, e.name)] : [],
  );
}

const docs: Doc[] = yamlFiles(DIR).flatMap((file) =>
  parseAllDocuments(readFileSync(file, 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0]!.message}`);
    return { file: path.relative(DIR, file), obj: d.toJS() as Doc['obj'] };
  }),
);
const ofKind = (kind: string) => docs.filter((d) => d.obj.kind === kind);
const isModel = (d: Doc) => d.obj.metadata.labels?.['app.kubernetes.io/name'] === 'gpt-oss-webgpu';
const isRedis = (d: Doc) => d.obj.metadata.labels?.['app.kubernetes.io/name'] === 'gpt-oss-redis';
/** The model servers' Deployments (Redis's is apart). */
const deployments = ofKind('Deployment').filter(isModel).map((d) => d.obj as unknown as IDeployment);
const modelServices = ofKind('Service').filter(isModel);
const hfCache = ofKind('PersistentVolumeClaim').find((d) => d.obj.metadata.name === 'gpt-oss-hf-cache')!;
/** GPT_OSS_* variables read outside serve's flag table: the reasoning-sealing key (src/server's encrypted reasoning). */
const READ_OUTSIDE_FLAGS = new Set(['GPT_OSS_REASONING_KEY']);
const serverContainer = (d: IDeployment): IContainer => d.spec!.template.spec!.containers.find((c) => c.name === 'server')!;
const envOf = (c: IContainer): Record<string, string> => Object.fromEntries((c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));

/** The Dockerfile's instructions of one stage, continuation lines joined, comments dropped. */
function dockerfileStage(stage: string): Array<{ op: string; args: string }> {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const start = lines.findIndex((l) => new RegExp(`^FROM \\S+ AS ${stage}$`, 'i').test(l));
  expect(start, `stage ${stage} in the Dockerfile`).toBeGreaterThanOrEqual(0);
  const end = lines.findIndex((l, i) => i > start && /^FROM /i.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end).map((l) => {
    const m = /^(\w+)\s+(.*)$/.exec(l)!;
    return { op: m[1]!.toUpperCase(), args: m[2]! };
  });
}

const runtime = dockerfileStage('runtime');
const dockerEnv: Record<string, string> = Object.fromEntries(
  runtime.filter((i) => i.op === 'ENV').flatMap((i) => [...i.args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
);
const dockerArgs = (op: string) => runtime.filter((i) => i.op === op).map((i) => i.args);

describe('deploy/kubernetes', () => {
  it('has both models, each with a Deployment, Service and PodDisruptionBudget, plus the PVC, ScaledObjects, a ServiceMonitor and Redis', () => {
    expect(deployments.map((d) => d.metadata!.name).sort()).toEqual(['gpt-oss-120b', 'gpt-oss-20b']);
    expect(modelServices.map((d) => d.obj.metadata.name).sort()).toEqual(['gpt-oss-120b', 'gpt-oss-20b']);
    for (const kind of ['PodDisruptionBudget', 'ScaledObject']) {
      expect(ofKind(kind).map((d) => d.obj.metadata.name).sort(), kind).toEqual(['gpt-oss-120b', 'gpt-oss-20b']);
    }
    expect(docs.filter(isRedis).map((d) => `${d.obj.kind}/${d.obj.metadata.name}`).sort()).toEqual([
      'Deployment/gpt-oss-redis',
      'PersistentVolumeClaim/gpt-oss-redis-data',
      'Service/gpt-oss-redis',
    ]);
    expect(ofKind('PersistentVolumeClaim').map((d) => d.obj.metadata.name).sort()).toEqual(['gpt-oss-hf-cache', 'gpt-oss-redis-data']);
    expect(ofKind('ServiceMonitor')).toHaveLength(1);
    // `kubectl apply -f deploy/kubernetes/` (not recursive) needs no CRD: those live in subfolders.
    for (const d of docs.filter((x) => !x.file.includes('/'))) expect(['v1', 'apps/v1', 'policy/v1'], d.file).toContain(d.obj.apiVersion);
  });

  it('every object validates against its OpenAPI schema', () => {
    for (const d of docs) {
      const entry = KINDS[`${d.obj.apiVersion} ${d.obj.kind}`];
      expect(entry, `${d.file}: ${d.obj.apiVersion} ${d.obj.kind} has a schema here`).toBeDefined();
      expect(() => new entry!.model(d.obj as never).validate(), `${d.file} ${d.obj.kind}/${d.obj.metadata.name}`).not.toThrow();
    }
    // The validator does catch what a cluster rejects.
    const broken = structuredClone(deployments[0]!);
    serverContainer(broken).ports![0]!.containerPort = '8000' as unknown as number;
    expect(() => new Deployment(broken).validate()).toThrow(/containerPort must be integer/);
  });

  it('no object has a field its type does not know (misspellings)', () => {
    const check = (all: Doc[]) => {
      const lines = all.map((d, i) => {
        const entry = KINDS[`${d.obj.apiVersion} ${d.obj.kind}`]!;
        return `import type { I${d.obj.kind} as T${i} } from '${entry.module}';\nexport const d${i}: T${i} = ${JSON.stringify(d.obj)};`;
      });
      const file = path.join(ROOT, 'test', 'deploy', '__manifests__.ts');
      const source = lines.join('\n');
      const host = ts.createCompilerHost({});
      const { readFile, fileExists } = host;
      host.readFile = (f) => (f === file ? source : readFile(f));
      host.fileExists = (f) => f === file || fileExists(f);
      const program = ts.createProgram(
        [file],
        { noEmit: true, strict: true, skipLibCheck: true, types: [], module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022 },
        host,
      );
      return ts.getPreEmitDiagnostics(program).map((diag) => {
        // Each object is on one line pair: the diagnostic's line tells which one.
        const line = diag.file && diag.start !== undefined ? diag.file.getLineAndCharacterOfPosition(diag.start).line : -1;
        const d = all[Math.floor(line / 2)];
        return `${d ? `${d.file} ${d.obj.kind}/${d.obj.metadata.name}: ` : ''}${ts.flattenDiagnosticMessageText(diag.messageText, ' ')}`;
      });
    };
    const misspelt = structuredClone(docs.find((d) => d.obj.kind === 'Deployment')!);
    misspelt.obj.spec.template.spec.containers[0].readinesProbe = misspelt.obj.spec.template.spec.containers[0].readinessProbe;
    const problems = check([...docs, misspelt]);
    // Only the planted misspelling: every real object is clean.
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/'"?readinesProbe"?' does not exist in type 'IContainer'/);
  });

  it('the image, user, port and environment are the ones the Dockerfile builds and `serve` reads', () => {
    const port = Number(dockerArgs('EXPOSE')[0]);
    const uid = Number(dockerArgs('USER')[0]!.split(':')[0]);
    expect(port).toBe(8000);
    expect(Number(dockerEnv['GPT_OSS_PORT'])).toBe(port);
    expect(dockerArgs('ENTRYPOINT')[0]).toBe('["node", "/app/bin/gpt-oss-webgpu.js"]');
    // The build commands (Dockerfile header, README) tag the image the manifests run.
    for (const doc of ['Dockerfile', 'README.md']) {
      expect(readFileSync(path.join(ROOT, doc), 'utf8').includes(`build -t ${IMAGE} .`), `${doc} builds ${IMAGE}`).toBe(true);
    }
    for (const d of deployments) {
      const name = d.metadata!.name!;
      const pod = d.spec!.template.spec!;
      const c = serverContainer(d);
      expect(c.image, name).toBe(IMAGE);
      expect(pod.securityContext?.runAsUser, name).toBe(uid);
      expect(c.ports, name).toEqual([{ name: 'http', containerPort: port, protocol: 'TCP' }]);
      for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) expect(probe?.httpGet, name).toEqual({ path: '/health', port: 'http' });
      expect(d.spec!.template.metadata!.annotations?.['prometheus.io/port'], name).toBe(String(port));
      // Every GPT_OSS_* variable is one serve reads; the rest are the image's own.
      const env = envOf(c);
      const known = new Set<string>([...Object.values(FLAGS), ...READ_OUTSIDE_FLAGS]);
      for (const key of (c.env ?? []).map((e) => e.name)) {
        if (key.startsWith('GPT_OSS_')) expect(known, `${name}: ${key} is read by the server`).toContain(key);
        else expect(Object.keys(dockerEnv), `${name}: ${key} is set by the Dockerfile too`).toContain(key);
      }
      // What serve makes of the container's args and environment over the image's.
      expect(c.args?.[0]).toBe('serve');
      const config = parseServeArgs(c.args!.slice(1), { ...dockerEnv, ...env });
      expect(config, name).toMatchObject({ host: '0.0.0.0', port, models: [{ spec: `openai/${name}` }], servedModelName: name });
      // The Hugging Face cache: where the image says, where the volume is, where downloads go.
      expect(env['HF_HOME'], name).toBe(dockerEnv['HF_HOME']);
      expect(dockerArgs('VOLUME')).toEqual([JSON.stringify([dockerEnv['HF_HOME']])]);
      const mount = c.volumeMounts?.find((m) => m.mountPath === env['HF_HOME']);
      expect(pod.volumes?.find((v) => v.name === mount?.name)?.persistentVolumeClaim?.claimName, name).toBe(hfCache.obj.metadata.name);
      const before = process.env['HF_HOME'];
      process.env['HF_HOME'] = env['HF_HOME'];
      try {
        expect(hfHubCacheDir().startsWith(`${env['HF_HOME']}/`), name).toBe(true);
      } finally {
        if (before === undefined) delete process.env['HF_HOME'];
        else process.env['HF_HOME'] = before;
      }
    }
  });

  it('one GPU each, and the model at its context fits an 80 GB GPU by the engine memory plan', async () => {
    for (const d of deployments) {
      const name = d.metadata!.name!;
      const c = serverContainer(d);
      expect(c.resources?.limits?.['nvidia.com/gpu'], name).toBe(1);
      const env = envOf(c);
      // synthetic:20b and synthetic:120b have the real models' configurations.
      const spec = `synthetic:${name.replace('gpt-oss-', '')}`;
      const context = env['GPT_OSS_CONTEXT'] ? Number(env['GPT_OSS_CONTEXT']) : syntheticConfig(name.replace('gpt-oss-', '')).maxPositionEmbeddings;
      const plan = await planModel(spec, { context });
      expect(plan.context, name).toBe(context);
      expect(plan.total, `${name}: ${plan.total} bytes planned`).toBeLessThan(80e9 * 0.97);
    }
  });

  it('shutdown: the grace period covers preStop, the server drain and the exit; readiness drops a draining pod', () => {
    for (const d of deployments) {
      const name = d.metadata!.name!;
      const c = serverContainer(d);
      const preStop = c.lifecycle?.preStop?.exec?.command;
      expect(preStop?.[0], name).toBe('sleep');
      const grace = Number(envOf(c)['GPT_OSS_SHUTDOWN_GRACE_SECONDS']);
      expect(grace, name).toBeGreaterThan(0);
      expect(d.spec!.template.spec!.terminationGracePeriodSeconds, name).toBeGreaterThanOrEqual(Number(preStop![1]) + grace + 10);
      // The startup probe allows a long first download and load before liveness takes over.
      const s = c.startupProbe!;
      expect((s.periodSeconds ?? 10) * (s.failureThreshold ?? 3), name).toBeGreaterThanOrEqual(20 * 60);
    }
  });

  it('autoscaling and monitoring point at what exists: Deployments, Service labels and ports, a metric the server exports', () => {
    const metrics = new ServerMetrics(() => [{ name: 'm', queueDepth: 0, running: 0, kvInUse: 0, context: 0, ready: true, batching: null }]).render();
    for (const { obj } of ofKind('ScaledObject')) {
      const target = deployments.find((d) => d.metadata!.name === obj.spec.scaleTargetRef.name);
      expect(target, obj.metadata.name).toBeDefined();
      expect(obj.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
      const trigger = obj.spec.triggers[0];
      expect(trigger.type).toBe('prometheus');
      const metric = /^sum\((\w+)\{service="([\w-]+)"\}\)$/.exec(trigger.metadata.query);
      expect(metric, trigger.metadata.query).not.toBeNull();
      expect(metrics).toContain(`# TYPE ${metric![1]} gauge`);
      expect(metric![1]).toBe('gpt_oss_queue_depth');
      expect(ofKind('Service').map((s) => s.obj.metadata.name)).toContain(metric![2]);
    }
    const monitor = ofKind('ServiceMonitor')[0]!.obj;
    for (const { obj: svc } of modelServices) {
      for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels as Record<string, string>)) expect(svc.metadata.labels?.[k], svc.metadata.name).toBe(v);
      expect(svc.spec.ports.map((p: { name: string }) => p.name)).toContain(monitor.spec.endpoints[0].port);
      const d = deployments.find((x) => x.metadata!.name === svc.metadata.name)!;
      for (const [k, v] of Object.entries(svc.spec.selector as Record<string, string>)) expect(d.spec!.template.metadata!.labels?.[k]).toBe(v);
    }
    expect(monitor.spec.endpoints[0].path).toBe('/metrics');
  });

  it('the replicas share the Redis Service as their Responses store, and one Secret as the reasoning key', () => {
    const redis = ofKind('Deployment').find(isRedis)!.obj as unknown as IDeployment;
    const redisService = ofKind('Service').find(isRedis)!.obj;
    const redisContainer = redis.spec!.template.spec!.containers[0]!;
    // The Service selects the Redis pods and reaches the container's port.
    for (const [k, v] of Object.entries(redisService.spec.selector as Record<string, string>)) expect(redis.spec!.template.metadata!.labels?.[k]).toBe(v);
    const port = redisService.spec.ports[0];
    expect(redisContainer.ports?.find((p) => p.name === port.targetPort)?.containerPort).toBe(6379);
    // The data volume is the Redis PVC, mounted where redis writes its append-only file.
    expect(redis.spec!.template.spec!.volumes?.[0]?.persistentVolumeClaim?.claimName).toBe('gpt-oss-redis-data');
    expect(redisContainer.volumeMounts?.[0]?.mountPath).toBe('/data');
    expect(redisContainer.args).toEqual(expect.arrayContaining(['--appendonly', 'yes', '--maxmemory-policy', 'volatile-lru']));
    const secrets = new Set<string>();
    for (const d of deployments) {
      const name = d.metadata!.name!;
      const c = serverContainer(d);
      const config = parseServeArgs(c.args!.slice(1), { ...dockerEnv, ...envOf(c) });
      // What serve makes of it: a Redis URL naming the Service, its port, database 0.
      const url = new URL(config.responseStore!);
      expect(url.protocol, name).toBe('redis:');
      expect(url.hostname, name).toBe(redisService.metadata.name);
      expect(Number(url.port), name).toBe(port.port);
      expect(config.responseTtlSeconds, name).toBe(30 * 24 * 3600);
      expect(config.onDeviceLost, name).toBe('reload');
      const key = (c.env ?? []).find((e) => e.name === 'GPT_OSS_REASONING_KEY');
      expect(key?.valueFrom?.secretKeyRef, name).toEqual({ name: 'gpt-oss-reasoning-key', key: 'key' });
      secrets.add(JSON.stringify(key?.valueFrom?.secretKeyRef));
    }
    // One Secret for all: a reply sealed by one pod opens on any other.
    expect(secrets.size).toBe(1);
    // The Secret is not in the repository (no key in git): the README says how to create it.
    expect(ofKind('Secret')).toHaveLength(0);
    expect(readFileSync(path.join(ROOT, 'README.md'), 'utf8')).toContain('create secret generic gpt-oss-reasoning-key --from-literal=key=');
  });
});
