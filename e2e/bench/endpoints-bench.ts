// `npm run bench`: outrigger's endpoints controller side by side with kube-controller-manager's, on
// fresh local control planes, one after the other so they never share the CPUs. Prints figures and
// ratios; asserts nothing. Scale with BENCH_SERVICES, BENCH_PODS (per Service), BENCH_FLIPS.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CoreV1Api, Watch, type KubeConfig, type V1Endpoints } from '@kubernetes/client-node';
import PQueue from 'p-queue';
import { startCluster, type Cluster } from '../harness/controlplane.ts';
import { startOperator, type OperatorProcess } from '../harness/operator.ts';
import { createRunningPod, writePodStatus } from '../helpers.ts';
import { writesTo } from './apiserver.ts';

const services = Number(process.env.BENCH_SERVICES ?? 100);
const podsPerService = Number(process.env.BENCH_PODS ?? 10);
const flips = Number(process.env.BENCH_FLIPS ?? 200);
const ns = 'bench';

interface Figures {
  convergeMs: number;
  writesToConverge: number;
  flipP50Ms: number;
  flipP99Ms: number;
  flipSamples: number;
  writesDuringStorm: number;
  peakRssMiB: number;
  restartWrites: number;
  restartConvergeMs: number;
}

interface ControllerUnderTest {
  readonly name: string;
  start(cluster: Cluster): Promise<{ pid: number; stop: () => Promise<void> }>;
}

const upstream: ControllerUnderTest = {
  name: 'kube-controller-manager',
  async start(cluster) {
    await cluster.startControllerManager(['endpoints-controller']);
    const pid = cluster.pids().at(-1) ?? 0;
    return { pid, stop: () => cluster.stopControllerManager() };
  },
};

const outrigger: ControllerUnderTest = {
  name: 'outrigger',
  async start(cluster) {
    const op: OperatorProcess = await startOperator(
      cluster.kubeconfigPath,
      ['--selector-mode=all'],
      join(cluster.dir ?? '/tmp', 'outrigger.log'),
    );
    return {
      pid: op.pid,
      stop: async () => {
        await op.stop();
      },
    };
  },
};

/** RSS (MiB) of a fresh Node process after running `code`, to put the controller's figure in scale. */
function nodeRss(code: string): string {
  const r = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `${code} console.log(Math.round(process.memoryUsage().rss / 1048576));`,
    ],
    { encoding: 'utf8' },
  );
  return r.stdout.trim() || '?';
}

function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const podName = (s: number, p: number): string => `svc-${s}-pod-${p}`;
const podIP = (s: number, p: number): string =>
  `10.${200 + Math.floor(s / 250)}.${s % 250}.${p + 1}`;

async function load(kc: KubeConfig): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  const pool = new PQueue({ concurrency: 16 });
  const tasks: (() => Promise<void>)[] = [];
  for (let s = 0; s < services; s++) {
    tasks.push(async () => {
      await core.createNamespacedService({
        namespace: ns,
        body: {
          metadata: { name: `svc-${s}` },
          spec: {
            selector: { svc: String(s) },
            ports: [{ name: 'http', port: 80, targetPort: 'http' }],
          },
        },
      });
    });
    for (let p = 0; p < podsPerService; p++) {
      tasks.push(async () => {
        await createRunningPod(core, ns, podName(s, p), {
          labels: { svc: String(s) },
          ip: podIP(s, p),
          ready: true,
          ports: [{ name: 'http', port: 8080 }],
        });
      });
    }
  }
  await pool.addAll(tasks);
}

async function waitConverged(
  kc: KubeConfig,
  readyPerService: (s: number) => number,
  timeoutMs = 300_000,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const list = await core.listNamespacedEndpoints({ namespace: ns });
    const ok = new Map<string, boolean>();
    for (const ep of list.items) {
      const s = Number(ep.metadata?.name?.slice(4));
      const ready = (ep.subsets ?? []).reduce((n, x) => n + (x.addresses?.length ?? 0), 0);
      const notReady = (ep.subsets ?? []).reduce(
        (n, x) => n + (x.notReadyAddresses?.length ?? 0),
        0,
      );
      ok.set(
        ep.metadata?.name ?? '',
        ready === readyPerService(s) && ready + notReady === podsPerService,
      );
    }
    let all = true;
    for (let s = 0; s < services && all; s++) all = ok.get(`svc-${s}`) === true;
    if (all) return;
    if (Date.now() > deadline) throw new Error('endpoints did not converge');
    await delay(50);
  }
}

/** Flips `flips` pods to not ready and back; returns per-flip latency to the Endpoints showing it. */
async function flipStorm(kc: KubeConfig): Promise<number[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const targets = Array.from({ length: flips }, (_, i) => ({
    s: i % services,
    p: Math.floor(i / services) % podsPerService,
  }));
  const sentAt = new Map<string, { t: number; ready: boolean }>();
  const latencies: number[] = [];
  const watch = new Watch(kc);
  const seen = (ep: V1Endpoints): void => {
    const now = Date.now();
    const ready = new Set((ep.subsets ?? []).flatMap((x) => (x.addresses ?? []).map((a) => a.ip)));
    const notReady = new Set(
      (ep.subsets ?? []).flatMap((x) => (x.notReadyAddresses ?? []).map((a) => a.ip)),
    );
    for (const [ip, sent] of sentAt) {
      if ((sent.ready && ready.has(ip)) || (!sent.ready && notReady.has(ip))) {
        latencies.push(now - sent.t);
        sentAt.delete(ip);
      }
    }
  };
  const req = await watch.watch(
    `/api/v1/namespaces/${ns}/endpoints`,
    {},
    (type: string, obj: V1Endpoints) => {
      if (type === 'MODIFIED' || type === 'ADDED') seen(obj);
    },
    () => undefined,
  );
  await delay(500);
  for (const ready of [false, true]) {
    const pool = new PQueue({ concurrency: 10 });
    await pool.addAll(
      targets.map(({ s, p }) => async () => {
        sentAt.set(podIP(s, p), { t: Date.now(), ready });
        await writePodStatus(core, ns, podName(s, p), podIP(s, p), ready);
      }),
    );
    const deadline = Date.now() + 60_000;
    while (sentAt.size > 0 && Date.now() < deadline) await delay(20);
    sentAt.clear();
  }
  req.abort();
  return latencies.sort((a, b) => a - b);
}

async function measure(c: ControllerUnderTest): Promise<Figures> {
  process.stderr.write(
    `\n[${c.name}] starting a fresh control plane and loading ${services} Services × ${podsPerService} Pods...\n`,
  );
  const cluster = await startCluster();
  try {
    const kc = cluster.kubeConfig();
    await load(kc);
    const writes0 = await writesTo(kc, 'endpoints');
    const t0 = Date.now();
    let ctl = await c.start(cluster);
    await waitConverged(kc, () => podsPerService);
    const convergeMs = Date.now() - t0;
    await delay(2000);
    const writes1 = await writesTo(kc, 'endpoints');
    process.stderr.write(
      `[${c.name}] converged in ${convergeMs} ms; readiness storm of ${flips} flips × 2...\n`,
    );
    const lat = await flipStorm(kc);
    await delay(2000);
    const writes2 = await writesTo(kc, 'endpoints');
    const rss = peakRssMiB(ctl.pid);
    process.stderr.write(`[${c.name}] restarting on the synced cluster...\n`);
    await ctl.stop();
    const t1 = Date.now();
    ctl = await c.start(cluster);
    const restartConvergeMs = Date.now() - t1;
    await delay(5000);
    const writes3 = await writesTo(kc, 'endpoints');
    await ctl.stop();
    return {
      convergeMs,
      writesToConverge: writes1 - writes0,
      flipP50Ms: percentile(lat, 50),
      flipP99Ms: percentile(lat, 99),
      flipSamples: lat.length,
      writesDuringStorm: writes2 - writes1,
      peakRssMiB: rss,
      restartWrites: writes3 - writes2,
      restartConvergeMs,
    };
  } finally {
    await cluster.stop();
  }
}

function row(label: string, u: number, o: number, unit: string, digits = 0): string {
  const ratio = u === 0 ? (o === 0 ? '—' : '∞') : `${(o / u).toFixed(2)}×`;
  return `${label.padEnd(44)} ${u.toFixed(digits).padStart(10)} ${o.toFixed(digits).padStart(10)} ${ratio.padStart(8)}  ${unit}`;
}

const u = await measure(upstream);
const o = await measure(outrigger);
const lines = [
  '',
  `Endpoints controller benchmark: ${services} Services × ${podsPerService} Pods, ${flips} pods flipped unready and back`,
  `${''.padEnd(44)} ${'upstream'.padStart(10)} ${'outrigger'.padStart(10)} ${'ratio'.padStart(8)}`,
  row('time to converge from controller start', u.convergeMs, o.convergeMs, 'ms'),
  row('Endpoints writes to converge', u.writesToConverge, o.writesToConverge, 'requests'),
  row('Ready transition → Endpoints, p50', u.flipP50Ms, o.flipP50Ms, 'ms'),
  row('Ready transition → Endpoints, p99', u.flipP99Ms, o.flipP99Ms, 'ms'),
  row('  (samples)', u.flipSamples, o.flipSamples, ''),
  row('Endpoints writes during the storm', u.writesDuringStorm, o.writesDuringStorm, 'requests'),
  row('peak RSS of the controller process', u.peakRssMiB, o.peakRssMiB, 'MiB', 1),
  row(
    'restart on a synced cluster: probe OK after (*)',
    u.restartConvergeMs,
    o.restartConvergeMs,
    'ms',
  ),
  row('restart on a synced cluster: writes', u.restartWrites, o.restartWrites, 'requests'),
  '',
  'upstream = kube-controller-manager --controllers=endpoints-controller (a Go binary that also runs',
  'its shared informers and HTTPS server); outrigger = the outrigger process, --selector-mode=all.',
  'Both pace their API calls at their defaults: --kube-api-qps=20, --kube-api-burst=30.',
  "(*) upstream's /healthz answers before its caches sync; outrigger's /readyz only after.",
  `For scale: a bare Node process is ${nodeRss('')} MiB RSS; after importing @kubernetes/client-node, ${nodeRss("await import('@kubernetes/client-node');")} MiB.`,
];
process.stdout.write(`${lines.join('\n')}\n`);
