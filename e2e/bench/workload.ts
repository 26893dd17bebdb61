// The benchmark's cluster contents, as a deterministic model and a loader. Services are spread like
// real workloads (sizes follow a Zipf law: a few large Services, many small ones), across
// namespaces, with the labels, annotations and container specs real pods carry (so that what a
// cache keeps per pod is measured against a realistic object, not a stub).
//
// The loader is Node itself: concurrent creates and merge-patched statuses over a keep-alive pool,
// not KWOK. KWOK would add a Go build and a long-running process competing for the same two cores
// during the measurement, and the only input an endpoints controller sees, Pod objects with
// statuses, is written directly here.
import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';
import PQueue from 'p-queue';

export interface Workload {
  readonly namespaces: readonly string[];
  readonly services: readonly ServiceModel[];
  readonly pods: number;
}

export interface ServiceModel {
  readonly namespace: string;
  readonly name: string;
  /** Index of the first pod (pods are numbered across the workload) and how many. */
  readonly firstPod: number;
  readonly size: number;
}

/** Most pods per Service: beyond 1000 both controllers truncate Endpoints alike. */
const maxServiceSize = 1000;

export function workload(pods: number, services: number): Workload {
  const nsCount = Math.max(1, Math.min(50, Math.ceil(services / 100)));
  const namespaces = Array.from({ length: nsCount }, (_, i) => `bench-${String(i)}`);
  // Zipf weights 1/(i+1), every Service at least one pod, capped; the rest spread evenly.
  const weights = Array.from({ length: services }, (_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w) =>
    Math.max(1, Math.min(maxServiceSize, Math.floor((pods * w) / total))),
  );
  let left = pods - sizes.reduce((a, b) => a + b, 0);
  for (let i = services - 1; left > 0; i = i === 0 ? services - 1 : i - 1) {
    const room = maxServiceSize - (sizes[i] ?? 0);
    if (room <= 0) continue;
    const add = Math.min(room, Math.ceil(left / services), left);
    sizes[i] = (sizes[i] ?? 0) + add;
    left -= add;
  }
  for (let i = 0; left < 0 && i < services; i++) {
    const take = Math.min((sizes[i] ?? 1) - 1, -left);
    sizes[i] = (sizes[i] ?? 1) - take;
    left += take;
  }
  let firstPod = 0;
  const models = sizes.map((size, i) => {
    const m = {
      namespace: namespaces[i % nsCount] ?? '',
      name: `svc-${String(i)}`,
      firstPod,
      size,
    };
    firstPod += size;
    return m;
  });
  return { namespaces, services: models, pods: firstPod };
}

/** Pod IPs from 100.64.0.0/10 (shared address space): never routed, never sent a packet. */
export function podIP(i: number): string {
  return `100.${String(64 + (i >> 16))}.${String((i >> 8) & 255)}.${String(i & 255)}`;
}

/** Named like a Deployment's pods: <service>-<template hash>-<suffix>. */
export function podName(s: ServiceModel, k: number): string {
  return `${s.name}-7d9f8c6b5-${k.toString(36).padStart(5, '0')}`;
}

function podBody(s: ServiceModel, k: number): V1Pod {
  return {
    metadata: {
      name: podName(s, k),
      labels: {
        app: s.name,
        'app.kubernetes.io/name': s.name,
        'app.kubernetes.io/instance': `${s.name}-prod`,
        'app.kubernetes.io/part-of': 'bench',
        'pod-template-hash': '7d9f8c6b5',
        tier: k % 2 === 0 ? 'backend' : 'frontend',
      },
      annotations: {
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '9090',
        'kubectl.kubernetes.io/restartedAt': '2026-11-01T00:00:00Z',
        'checksum/config': 'a'.repeat(64),
      },
    },
    spec: {
      nodeName: `node-${String(k % 100)}`,
      containers: [
        {
          name: 'app',
          image: 'registry.example/app:1.2.3',
          ports: [
            { name: 'http', containerPort: 8080 },
            { name: 'metrics', containerPort: 9090 },
          ],
          env: Array.from({ length: 8 }, (_, e) => ({
            name: `ENV_${String(e)}`,
            value: 'x'.repeat(20),
          })),
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
          readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 5 },
          livenessProbe: { httpGet: { path: '/live', port: 'http' }, periodSeconds: 10 },
        },
        {
          name: 'sidecar',
          image: 'registry.example/proxy:4.5.6',
          ports: [{ name: 'admin', containerPort: 15000 }],
        },
      ],
    },
  };
}

export function statusBody(ip: string, ready: boolean, at = new Date()): object {
  return {
    status: {
      phase: 'Running',
      podIP: ip,
      podIPs: [{ ip }],
      conditions: [
        { type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: at.toISOString() },
      ],
    },
  };
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export async function setPodReady(
  core: CoreV1Api,
  namespace: string,
  name: string,
  ip: string,
  ready: boolean,
  at?: Date,
): Promise<void> {
  await core.patchNamespacedPodStatus(
    { namespace, name, body: statusBody(ip, ready, at) },
    mergePatch,
  );
}

/** Creates the namespaces, Services and ready pods; reports progress on stderr. */
export async function load(kc: KubeConfig, w: Workload, concurrency = 48): Promise<number> {
  const core = kc.makeApiClient(CoreV1Api);
  const started = Date.now();
  for (const ns of w.namespaces) await core.createNamespace({ body: { metadata: { name: ns } } });
  const pool = new PQueue({ concurrency });
  let done = 0;
  let failure: unknown;
  const run = (task: () => Promise<void>): void => {
    pool.add(task).catch((err: unknown) => {
      failure ??= err;
    });
  };
  const progress = setInterval(() => {
    process.stderr.write(`  loaded ${String(done)}/${String(w.pods)} pods\n`);
  }, 10_000);
  try {
    for (const s of w.services) {
      run(async () => {
        await core.createNamespacedService({
          namespace: s.namespace,
          body: {
            metadata: { name: s.name, labels: { 'app.kubernetes.io/part-of': 'bench' } },
            spec: {
              selector: { app: s.name },
              ports: [{ name: 'http', port: 80, targetPort: 'http' }],
            },
          },
        });
      });
      for (let k = 0; k < s.size; k++) {
        const i = s.firstPod + k;
        run(async () => {
          await core.createNamespacedPod({ namespace: s.namespace, body: podBody(s, k) });
          await setPodReady(core, s.namespace, podName(s, k), podIP(i), true);
          done++;
        });
      }
      // Bounded memory: do not queue 50k closures at once.
      if (pool.size > concurrency * 20) await pool.onSizeLessThan(concurrency * 10);
    }
    await pool.onIdle();
    if (failure !== undefined)
      throw failure instanceof Error ? failure : new Error(JSON.stringify(failure));
  } finally {
    clearInterval(progress);
  }
  return Date.now() - started;
}
