// `npm run bench:memory`: outrigger's memory under the chart's own limit, as a kubelet runs it. The
// image is built without a daemon, the chart is installed with helm, and its Deployment's pod
// template (read back from the API server) is run with runc in a node's network namespace, with
// the template's memory limit as a cgroup (v1 here) limit. Three parts:
//
//   1. the V8 heap limit Node picks under different container memory limits (`node -e` in the
//      image, nothing else changed);
//   2. selector mode (`selectorMode: all`) with `--pods` pods in `--services` Services: cold start,
//      convergence, a readiness churn;
//   3. default flags with `--backends` × `--addresses-per-backend` TCP-checked addresses, each a
//      real listener (an AnyIP range in a backends' namespace): cold start until every address is
//      healthy, a steady window, then every server dies and comes back; once per `--limits` entry
//      (the chart's limit first), so a tighter limit shows how outrigger fails.
//
// Sampled every second: the cgroup's usage, peak and failcnt, the process's RSS, and the kubelet's
// probes as the template sets them (a liveness failure is a restart); from /metrics every 5 s,
// prom-client's heap and GC figures; every GC pause from `--trace-gc` (the only change to the pod
// template: the container's command line gets that one flag). Writes --out/memory.json; the page
// (docs/memory.md) and its chart come from e2e/bench/memory-page.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1PodSpec,
} from '@kubernetes/client-node';
import PQueue from 'p-queue';
import { group, version } from '../../src/api/externalbackend.ts';
import { policyKind, policyPlural } from '../../src/api/policy.ts';
import { ensureDataPlaneBinary, ensureHelm } from '../harness/binaries.ts';
import { startCluster, type Cluster } from '../harness/controlplane.ts';
import {
  dataPlaneUnavailable,
  publishApiServer,
  startNode,
  type Node,
} from '../harness/dataplane.ts';
import { createBackendNetwork, ip, type BackendNetwork } from '../harness/netns.ts';
import { provenance } from '../harness/provenance.ts';
import { runcUnavailable, runPod, type Container } from '../harness/runc.ts';
import { buildImage, unpackImage, type UnpackedImage } from '../image/build.ts';
import { createExternalBackend, waitFor } from '../helpers.ts';
import { gcFromTrace, type GcFigures } from './gc.ts';
import { EndpointsTracker } from './observe.ts';
import { load, podIP, podName, setPodReady, workload } from './workload.ts';

const { values: args } = parseArgs({
  options: {
    limits: { type: 'string', default: '' },
    variants: {
      type: 'string',
      default: '160Mi,160Mi|--max-old-space-size=80,512Mi|--max-semi-space-size=16',
    },
    append: { type: 'boolean', default: false },
    'heap-limits': {
      type: 'string',
      default:
        '128Mi,160Mi,256Mi,384Mi,512Mi,768Mi,1Gi,2Gi,4Gi,none,160Mi|--max-old-space-size=80,512Mi|--max-semi-space-size=16',
    },
    pods: { type: 'string', default: '10000' },
    services: { type: 'string', default: '1000' },
    backends: { type: 'string', default: '1000' },
    'addresses-per-backend': { type: 'string', default: '10' },
    'steady-seconds': { type: 'string', default: '120' },
    'churn-seconds': { type: 'string', default: '120' },
    'churn-rate': { type: 'string', default: '20' },
    skip: { type: 'string', default: '' },
    out: { type: 'string' },
  },
});
const skip = new Set(args.skip.split(',').filter(Boolean));
const chartDir = fileURLToPath(new URL('../../charts/outrigger', import.meta.url));
const releaseNs = 'outrigger-system';
const MiB = 1048576;
/** Taken at the start, so that edits made while it runs do not mark the result dirty. */
const measured = provenance('Node 24 in the image');

function log(msg: string): void {
  process.stderr.write(`[memory ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export interface HeapLimit {
  readonly limit: string;
  /** v8.getHeapStatistics().heap_size_limit, MiB. */
  readonly heapSizeLimitMiB: number;
  /** process.constrainedMemory(): what Node read from the cgroup, MiB (undefined: none). */
  readonly constrainedMiB: number | undefined;
  readonly nodeOptions: string;
}

export interface Sample {
  /** Seconds since the container started. */
  readonly t: number;
  readonly cgroupMiB: number;
  readonly rssMiB: number;
  readonly heapUsedMiB?: number;
  readonly heapTotalMiB?: number;
}

export interface Run {
  readonly scenario: 'selector' | 'default';
  readonly limit: string;
  readonly nodeOptions: string;
  /** The heap limit Node chose in this container (from part 1, or undefined). */
  readonly heapSizeLimitMiB: number | undefined;
  readonly what: string;
  /** Phases and the seconds since the container's start at which they began. */
  readonly phases: readonly { readonly name: string; readonly t: number }[];
  readonly readyAfterSeconds: number | undefined;
  readonly peakCgroupMiB: number;
  /** memory.limit_in_bytes of the container's cgroup, as runc set it (MiB). */
  readonly cgroupLimitMiB: number;
  readonly peakRssMiB: number;
  readonly endRssMiB: number;
  readonly peakHeapUsedMiB: number | undefined;
  readonly peakHeapTotalMiB: number | undefined;
  readonly endHeapUsedMiB: number | undefined;
  readonly failcnt: number;
  readonly oomKills: number;
  readonly gc: GcFigures;
  readonly livenessFailures: number;
  readonly wouldRestart: number;
  readonly healthzMaxMs: number;
  /** running, or how it ended: "heap exhausted", "OOM-killed", "exited". */
  readonly outcome: string;
  readonly logTail: string | undefined;
  readonly samples: readonly Sample[];
}

export interface MemoryResult {
  readonly date: string;
  /** The commit measured; absent in results from before it was recorded. */
  readonly commit?: string;
  readonly machine: string;
  readonly chartLimit: string;
  readonly chartRequest: string;
  readonly heapLimits: readonly HeapLimit[];
  readonly runs: readonly Run[];
  readonly pods: number;
  readonly services: number;
  readonly addresses: number;
}

function withContainer(spec: V1PodSpec, f: (c: V1PodSpec['containers'][0]) => void): V1PodSpec {
  const copy = structuredClone(spec);
  const c = copy.containers[0];
  if (c === undefined) throw new Error('the pod template has no container');
  f(c);
  return copy;
}

/** The container's memory cgroup directory (cgroup v1), from /proc/<pid>/cgroup. */
function memoryCgroup(pid: number): string | undefined {
  const line = readFileSync(`/proc/${String(pid)}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  const path = line?.slice(line.lastIndexOf(':') + 1);
  if (path === undefined) return undefined;
  const dir = join('/sys/fs/cgroup/memory', path);
  return existsSync(dir) ? dir : undefined;
}

function readNumber(file: string): number {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return NaN;
  }
}

function oomKills(cgroup: string | undefined): number {
  if (cgroup === undefined) return NaN;
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(join(cgroup, 'memory.oom_control'), 'utf8'));
    return Number(m?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

function rssOf(pid: number): { rss: number; hwm: number } {
  try {
    const s = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
    const kb = (f: string) => Number(new RegExp(`${f}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) / 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** Metric values by full series text (name{labels}), from a Prometheus text page. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function sumOf(m: Map<string, number>, name: string, labelFilter = ''): number {
  let n = 0;
  for (const [k, v] of m)
    if ((k === name || k.startsWith(`${name}{`)) && k.includes(labelFilter)) n += v;
  return n;
}

interface Env {
  readonly cluster: Cluster;
  readonly kc: KubeConfig;
  readonly node: Node;
  readonly image: UnpackedImage;
  readonly token: string;
  readonly caCrt: string;
  readonly seccompProfile: string;
}

let containerSeq = 0;

function startContainer(env: Env, spec: V1PodSpec, name: string): Container {
  containerSeq++;
  return runPod({
    dir: join(env.cluster.dir ?? '/tmp', `pod-${String(containerSeq)}`),
    id: `outrigger-mem-${String(process.pid)}-${String(containerSeq)}`,
    podName: `outrigger-6f7d8b9c5d-${name}`,
    podNamespace: releaseNs,
    podSpec: spec,
    image: env.image,
    netns: env.node.netns,
    serviceAccount: { token: env.token, caCrt: env.caCrt, namespace: releaseNs },
    seccompProfile: env.seccompProfile,
    kubernetesService: { host: '10.96.0.1', port: 443 },
  });
}

/** Part 1: the heap limit Node picks in the image under each container memory limit. */
async function heapLimits(
  env: Env,
  spec: V1PodSpec,
  variants: readonly { limit: string; nodeOptions: string }[],
): Promise<HeapLimit[]> {
  const out: HeapLimit[] = [];
  const script =
    'const v8=require("node:v8");console.log("HEAP "+JSON.stringify({limit:v8.getHeapStatistics().heap_size_limit,constrained:process.constrainedMemory()}))';
  for (const v of variants) {
    const s = withContainer(spec, (c) => {
      c.command = ['/usr/local/bin/node'];
      c.args = ['-e', script];
      c.env = [
        ...(c.env ?? []),
        ...(v.nodeOptions ? [{ name: 'NODE_OPTIONS', value: v.nodeOptions }] : []),
      ];
      const limits = { ...(c.resources?.limits ?? {}) };
      if (v.limit === 'none') delete limits.memory;
      else limits.memory = v.limit;
      c.resources = { ...(c.resources ?? {}), limits };
    });
    const ct = startContainer(env, s, `heap${String(out.length)}`);
    try {
      const line = await waitFor(
        `the heap figures under ${v.limit}`,
        () => {
          const m = /^HEAP (.*)$/m.exec(readFileSync(ct.logPath, 'utf8'));
          if (m === null && ct.status() !== 'running' && ct.status() !== 'created')
            throw new Error(`container ${ct.status()}: ${readFileSync(ct.logPath, 'utf8')}`);
          return Promise.resolve(m?.[1]);
        },
        30_000,
        100,
      );
      const j = JSON.parse(line) as { limit: number; constrained: number };
      // Without a limit, Node reports the machine's memory (or a huge number: no constraint).
      const constrained =
        j.constrained > 0 && j.constrained < 2 ** 50 ? j.constrained / MiB : undefined;
      out.push({
        limit: v.limit,
        heapSizeLimitMiB: j.limit / MiB,
        constrainedMiB: constrained,
        nodeOptions: v.nodeOptions,
      });
      log(
        `heap limit under ${v.limit}${v.nodeOptions ? ` (${v.nodeOptions})` : ''}: ${(j.limit / MiB).toFixed(0)} MiB (constrained memory ${constrained?.toFixed(0) ?? 'none'})`,
      );
    } finally {
      ct.remove();
    }
  }
  return out;
}

interface Monitor {
  phase(name: string): void;
  readonly t: () => number;
  /** Resolves when the container has died (rejects nothing). */
  readonly died: () => boolean;
  stop(): Promise<
    Omit<
      Run,
      'scenario' | 'limit' | 'nodeOptions' | 'heapSizeLimitMiB' | 'what' | 'readyAfterSeconds'
    >
  >;
}

async function scrape(url: string): Promise<Map<string, number> | undefined> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
    return parseMetrics(await r.text());
  } catch {
    return undefined;
  }
}

/** Samples a running container: cgroup and RSS every second, /metrics every 5 s, the kubelet's probes. */
function monitor(env: Env, ct: Container, spec: V1PodSpec): Monitor {
  const started = Date.now();
  const t = () => (Date.now() - started) / 1000;
  const pid = ct.pid();
  const cgroup = memoryCgroup(pid);
  if (cgroup === undefined) log('warning: no memory cgroup found for the container');
  const samples: Sample[] = [];
  const cgroupLimit = cgroup ? readNumber(join(cgroup, 'memory.limit_in_bytes')) / MiB : NaN;
  const phases: { name: string; t: number }[] = [{ name: 'start', t: 0 }];
  let peakCgroup = 0;
  let peakRss = 0;
  let failcnt = 0;
  let ooms = 0;
  // Mutated by the timers below, read by the loops: an object, so that narrowing keeps up.
  const state = { dead: false, scraping: true, probing: true };
  let lastHeap: { used: number; total: number } | undefined;
  let peakHeapUsed: number | undefined;
  let peakHeapTotal: number | undefined;
  let lastMetrics: Map<string, number> | undefined;
  const base = `http://${env.node.ip}`;
  const metricsPort =
    /--metrics-bind-address=:(\d+)/.exec((spec.containers[0]?.args ?? []).join(' '))?.[1] ?? '8080';
  const live = spec.containers[0]?.livenessProbe;
  const probePort =
    /--health-probe-bind-address=:(\d+)/.exec((spec.containers[0]?.args ?? []).join(' '))?.[1] ??
    '8081';
  let livenessFailures = 0;
  let consecutive = 0;
  let wouldRestart = 0;
  let healthzMax = 0;
  const tick = setInterval(() => {
    const s = ct.status();
    if (s !== 'running') {
      state.dead = true;
    }
    const usage = cgroup ? readNumber(join(cgroup, 'memory.usage_in_bytes')) / MiB : NaN;
    const max = cgroup ? readNumber(join(cgroup, 'memory.max_usage_in_bytes')) / MiB : NaN;
    const fc = cgroup ? readNumber(join(cgroup, 'memory.failcnt')) : NaN;
    const ok = oomKills(cgroup);
    if (Number.isFinite(max)) peakCgroup = Math.max(peakCgroup, max);
    if (Number.isFinite(fc)) failcnt = fc;
    if (Number.isFinite(ok)) ooms = ok;
    const r = state.dead ? { rss: NaN, hwm: NaN } : rssOf(pid);
    if (Number.isFinite(r.hwm)) peakRss = Math.max(peakRss, r.hwm);
    if (!state.dead)
      // One decimal is all a chart needs; the JSON is committed.
      samples.push({
        t: Math.round(t() * 10) / 10,
        cgroupMiB: Math.round(usage * 10) / 10,
        rssMiB: Math.round(r.rss * 10) / 10,
        ...(lastHeap
          ? {
              heapUsedMiB: Math.round(lastHeap.used * 10) / 10,
              heapTotalMiB: Math.round(lastHeap.total * 10) / 10,
            }
          : {}),
      });
    lastHeap = undefined;
  }, 1000);
  const scraper = (async () => {
    while (state.scraping) {
      const m = await scrape(`${base}:${metricsPort}/metrics`);
      if (m !== undefined) {
        lastMetrics = m;
        const used = sumOf(m, 'nodejs_heap_size_used_bytes') / MiB;
        const total = sumOf(m, 'nodejs_heap_size_total_bytes') / MiB;
        lastHeap = { used, total };
        peakHeapUsed = Math.max(peakHeapUsed ?? 0, used);
        peakHeapTotal = Math.max(peakHeapTotal ?? 0, total);
      }
      await delay(5000);
    }
  })();
  // The kubelet's liveness probe as the template sets it, and a finer /healthz poll for latency.
  const period = (live?.periodSeconds ?? 10) * 1000;
  const timeout = (live?.timeoutSeconds ?? 1) * 1000;
  const threshold = live?.failureThreshold ?? 3;
  const initial = (live?.initialDelaySeconds ?? 0) * 1000;
  const healthz = async (timeoutMs: number): Promise<{ ok: boolean; ms: number }> => {
    const t0 = Date.now();
    try {
      const r = await fetch(`${base}:${probePort}/healthz`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { ok: r.status >= 200 && r.status < 400, ms: Date.now() - t0 };
    } catch {
      return { ok: false, ms: Date.now() - t0 };
    }
  };
  const liveness = (async () => {
    await delay(initial);
    while (state.probing && !state.dead) {
      const r = await healthz(timeout);
      if (!r.ok) {
        livenessFailures++;
        consecutive++;
        if (consecutive >= threshold) {
          wouldRestart++;
          consecutive = 0;
          log(
            `liveness: ${String(threshold)} failures in a row at ${t().toFixed(0)} s: a kubelet would restart the container`,
          );
        }
      } else consecutive = 0;
      await delay(period);
    }
  })();
  const poll = (async () => {
    await delay(initial);
    while (state.probing && !state.dead) {
      const r = await healthz(10_000);
      if (r.ok) healthzMax = Math.max(healthzMax, r.ms);
      await delay(1000);
    }
  })();
  return {
    phase(name) {
      phases.push({ name, t: t() });
      log(`  phase ${name} at ${t().toFixed(0)} s`);
    },
    t,
    died: () => state.dead || ct.status() !== 'running',
    async stop() {
      clearInterval(tick);
      state.scraping = false;
      state.probing = false;
      await Promise.all([scraper, liveness, poll]);
      const logText = readFileSync(ct.logPath, 'utf8');
      const endRss = rssOf(pid).rss;
      const finalOoms = oomKills(cgroup);
      if (Number.isFinite(finalOoms)) ooms = finalOoms;
      const outcome =
        ct.status() === 'running'
          ? 'running'
          : /heap out of memory|Reached heap limit/.test(logText)
            ? 'heap exhausted'
            : ooms > 0
              ? 'OOM-killed'
              : 'exited';
      const promGc = lastMetrics ? sumOf(lastMetrics, 'nodejs_gc_duration_seconds_sum') : undefined;
      const lastSample = samples.at(-1);
      return {
        phases,
        peakCgroupMiB: peakCgroup,
        cgroupLimitMiB: cgroupLimit,
        peakRssMiB: peakRss,
        endRssMiB: Number.isFinite(endRss) ? endRss : (lastSample?.rssMiB ?? NaN),
        peakHeapUsedMiB: peakHeapUsed,
        peakHeapTotalMiB: peakHeapTotal,
        endHeapUsedMiB: lastMetrics
          ? sumOf(lastMetrics, 'nodejs_heap_size_used_bytes') / MiB
          : undefined,
        failcnt,
        oomKills: ooms,
        gc: { ...gcFromTrace(logText), promTotalSeconds: promGc },
        livenessFailures,
        wouldRestart,
        healthzMaxMs: healthzMax,
        outcome,
        logTail:
          outcome === 'running'
            ? undefined
            : logText
                .split('\n')
                .filter((l) => !/ ms: (Scavenge|Mark|Minor)/.test(l))
                .slice(-15)
                .join('\n'),
        samples,
      };
    },
  };
}

/** The template with the limit under test, `--trace-gc` on node's command line and extra NODE_OPTIONS. */
function specFor(
  spec: V1PodSpec,
  limit: string,
  nodeOptions: string,
  entrypoint: readonly string[],
): V1PodSpec {
  return withContainer(spec, (c) => {
    const [nodeBin = '/usr/local/bin/node', ...rest] = entrypoint;
    c.command = [nodeBin, '--trace-gc', ...rest];
    if (limit !== '')
      c.resources = {
        ...(c.resources ?? {}),
        limits: { ...(c.resources?.limits ?? {}), memory: limit },
      };
    if (nodeOptions !== '') {
      const env = (c.env ?? []).filter((e) => e.name !== 'NODE_OPTIONS');
      c.env = [...env, { name: 'NODE_OPTIONS', value: nodeOptions }];
    }
  });
}

async function readPodSpec(kc: KubeConfig): Promise<V1PodSpec> {
  const d = await kc
    .makeApiClient(AppsV1Api)
    .readNamespacedDeployment({ name: 'outrigger', namespace: releaseNs });
  const s = d.spec?.template.spec;
  if (s === undefined) throw new Error('the Deployment has no pod template');
  return s;
}

function helm(kubeconfig: string, verb: 'install' | 'upgrade', sets: readonly string[]): void {
  const r = spawnSync(
    ensureHelm(),
    [
      verb,
      'outrigger',
      chartDir,
      `--kubeconfig=${kubeconfig}`,
      `--namespace=${releaseNs}`,
      ...(verb === 'install' ? ['--create-namespace'] : ['--reuse-values']),
      ...sets.map((s) => `--set=${s}`),
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`helm ${verb} failed:\n${r.stdout}${r.stderr}`);
}

async function untilOrDeath(
  m: Monitor,
  what: string,
  fn: () => Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (m.died()) {
      log(`  the container died while waiting for ${what}`);
      return false;
    }
    if (await fn().catch(() => false)) return true;
    if (Date.now() > deadline) {
      log(`  timed out waiting for ${what}`);
      return false;
    }
    await delay(1000);
  }
}

async function waitOrDeath(m: Monitor, seconds: number): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end && !m.died()) await delay(1000);
}

/** Part 2: selector mode with the workload's pods. */
async function selectorRun(
  env: Env,
  limit: string,
  nodeOptions: string,
  heap: number | undefined,
): Promise<Run> {
  const w = workload(Number(args.pods), Number(args.services));
  if (!existsSync(join(env.cluster.dir ?? '/tmp', 'workload-loaded'))) {
    log(`loading ${String(w.pods)} pods in ${String(w.services.length)} Services`);
    const ms = await load(env.kc, w);
    writeFileSync(join(env.cluster.dir ?? '/tmp', 'workload-loaded'), String(ms));
    log(`loaded in ${String(ms)} ms`);
  }
  // Every run starts cold: no Endpoints, so the operator writes all of them.
  const core = env.kc.makeApiClient(CoreV1Api);
  for (const ns of w.namespaces) await core.deleteCollectionNamespacedEndpoints({ namespace: ns });
  helm(env.cluster.kubeconfigPath, 'upgrade', ['selectorMode=all']);
  const spec = specFor(
    await readPodSpec(env.kc),
    limit,
    nodeOptions,
    env.image.config.Entrypoint ?? [],
  );
  const tracker = new EndpointsTracker(w);
  await tracker.start(env.kc);
  const ct = startContainer(env, spec, 'sel');
  const m = monitor(env, ct, spec);
  let readyAfter: number | undefined;
  try {
    log(
      `selector mode, ${String(w.pods)} pods, limit ${limit}${nodeOptions ? `, ${nodeOptions}` : ''}`,
    );
    if (
      await untilOrDeath(m, 'every Endpoints', () => Promise.resolve(tracker.converged), 900_000)
    ) {
      readyAfter = m.t();
      m.phase('converged');
      await waitOrDeath(m, 30);
      m.phase(`churn ${args['churn-rate']}/s`);
      await churn(env.kc, w, m, Number(args['churn-rate']), Number(args['churn-seconds']));
      m.phase('settle');
      await untilOrDeath(
        m,
        'Endpoints to settle',
        () => Promise.resolve(tracker.converged),
        600_000,
      );
      await waitOrDeath(m, 30);
    }
  } finally {
    tracker.stop();
  }
  const r = await m.stop();
  ct.remove();
  return {
    scenario: 'selector',
    limit,
    nodeOptions,
    heapSizeLimitMiB: heap,
    what: `selector mode, ${String(w.pods)} pods in ${String(w.services.length)} Services`,
    readyAfterSeconds: readyAfter,
    ...r,
  };
}

/** Readiness flips at `rate` per second: a random pod goes not ready and comes back a second later. */
async function churn(
  kc: KubeConfig,
  w: ReturnType<typeof workload>,
  m: Monitor,
  rate: number,
  seconds: number,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const pool = new PQueue({ concurrency: 16 });
  let seed = 4242;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const end = Date.now() + seconds * 1000;
  let failures = 0;
  while (Date.now() < end && !m.died()) {
    const t0 = Date.now();
    for (let i = 0; i < rate; i++) {
      const s = w.services[Math.floor(random() * w.services.length)];
      if (s === undefined) continue;
      const k = Math.floor(random() * s.size);
      const name = podName(s, k);
      const ipAddr = podIP(s.firstPod + k);
      pool
        .add(async () => {
          await setPodReady(core, s.namespace, name, ipAddr, false);
          await delay(1000);
          await setPodReady(core, s.namespace, name, ipAddr, true);
        })
        .catch(() => {
          failures++;
        });
    }
    await delay(Math.max(0, 1000 - (Date.now() - t0)));
  }
  await pool.onIdle();
  if (failures > 0) log(`  ${String(failures)} status writes failed in the churn`);
}

interface Backends {
  readonly net: BackendNetwork;
  readonly total: number;
  server: Awaited<ReturnType<BackendNetwork['serveAll']>> | undefined;
  remove(): Promise<void>;
}

/** Addresses for the health checks: an IPv4 AnyIP range routed into a backends' namespace. */
async function createBackends(env: Env): Promise<Backends> {
  const backends = Number(args.backends);
  const per = Number(args['addresses-per-backend']);
  const total = backends * per;
  const net = createBackendNetwork(env.cluster.dir ?? '/tmp', 1, { fromNodes: true });
  // 10.251.0.0/18: 16 384 addresses outside the /24s other suites' namespaces take from 10.250/16.
  // The node reaches it through the host, which routes it to the namespace; a blackhole covers
  // it once the namespace is gone.
  const range = '10.251.0.0/18';
  const gw = net.ipv4[0] ?? '';
  ip(['route', 'add', 'blackhole', '10.251.0.0/16'], true);
  ip(['netns', 'exec', net.name, 'ip', 'route', 'add', 'local', range, 'dev', 'lo']);
  ip(['route', 'replace', range, 'via', gw]);
  ip(['netns', 'exec', env.node.netns, 'ip', 'route', 'add', range, 'via', env.node.hostIp]);
  const server = await net.serveAll(7000, 'tcp');
  const addr = (i: number) =>
    `10.251.${String(Math.floor((i + 1) / 256))}.${String((i + 1) % 256)}`;
  const core = env.kc.makeApiClient(CoreV1Api);
  const perNamespace = 100;
  const namespaces = Array.from(
    { length: Math.ceil(backends / perNamespace) },
    (_, i) => `probes-${String(i)}`,
  );
  for (const ns of namespaces) await core.createNamespace({ body: { metadata: { name: ns } } });
  await env.kc.makeApiClient(CustomObjectsApi).createClusterCustomObject({
    group,
    version,
    plural: policyPlural,
    body: {
      apiVersion: `${group}/${version}`,
      kind: policyKind,
      metadata: { name: 'memory-bench' },
      spec: {
        rules: [
          {
            name: 'probes',
            namespaceSelector: {
              matchExpressions: [
                { key: 'kubernetes.io/metadata.name', operator: 'In', values: namespaces },
              ],
            },
            cidrs: [range],
          },
        ],
      },
    },
  });
  const pool = new PQueue({ concurrency: 16 });
  let failures = 0;
  for (let b = 0; b < backends; b++) {
    const ns = namespaces[Math.floor(b / perNamespace)] ?? '';
    pool
      .add(() =>
        createExternalBackend(env.kc, ns, `b-${String(b)}`, {
          ports: [{ name: 'p', port: 7000 }],
          addresses: Array.from({ length: per }, (_, k) => ({ ip: addr(b * per + k) })),
          healthCheck: { tcp: { port: 'p' }, intervalSeconds: 10, timeoutSeconds: 2 },
        }),
      )
      .catch((err: unknown) => {
        if (failures++ === 0) log(`create failed: ${String(err)}`);
      });
  }
  await pool.onIdle();
  if (failures > 0) throw new Error(`${String(failures)} ExternalBackends could not be created`);
  log(`${String(backends)} ExternalBackends, ${String(total)} addresses, created`);
  const b: Backends = {
    net,
    total,
    server,
    async remove() {
      await b.server?.stop();
      await net.remove();
      ip(['route', 'del', range], true);
    },
  };
  return b;
}

/** Part 3: default flags, every address checked. */
async function defaultRun(
  env: Env,
  b: Backends,
  limit: string,
  nodeOptions: string,
  heap: number | undefined,
): Promise<Run> {
  helm(env.cluster.kubeconfigPath, 'upgrade', ['selectorMode=off']);
  const spec = specFor(
    await readPodSpec(env.kc),
    limit,
    nodeOptions,
    env.image.config.Entrypoint ?? [],
  );
  const ct = startContainer(env, spec, `def${String(containerSeq)}`);
  const m = monitor(env, ct, spec);
  const metricsUrl = `http://${env.node.ip}:8080/metrics`;
  const healthy = async () => {
    const mm = await scrape(metricsUrl);
    return mm === undefined ? -1 : sumOf(mm, 'outrigger_backend_addresses', 'state="healthy"');
  };
  log(
    `default flags, ${String(b.total)} checked addresses, limit ${limit}${nodeOptions ? `, ${nodeOptions}` : ''}`,
  );
  let readyAfter: number | undefined;
  if (
    await untilOrDeath(
      m,
      'every address healthy',
      async () => (await healthy()) === b.total,
      900_000,
    )
  ) {
    readyAfter = m.t();
    m.phase('all healthy');
    await waitOrDeath(m, Number(args['steady-seconds']));
    m.phase('servers die');
    await b.server?.stop();
    b.server = undefined;
    if (
      await untilOrDeath(m, 'every address unhealthy', async () => (await healthy()) === 0, 300_000)
    ) {
      m.phase('servers back');
      b.server = await b.net.serveAll(7000, 'tcp');
      if (
        await untilOrDeath(
          m,
          'every address healthy again',
          async () => (await healthy()) === b.total,
          300_000,
        )
      ) {
        m.phase('steady');
        await waitOrDeath(m, 60);
      }
    }
  }
  const r = await m.stop();
  ct.remove();
  b.server ??= await b.net.serveAll(7000, 'tcp');
  return {
    scenario: 'default',
    limit,
    nodeOptions,
    heapSizeLimitMiB: heap,
    what: `default flags, ${String(b.total)} TCP-checked addresses (${args.backends} × ${args['addresses-per-backend']})`,
    readyAfterSeconds: readyAfter,
    ...r,
  };
}

/** "512Mi" or "512Mi|--max-old-space-size=384": a limit and optional NODE_OPTIONS. */
function variants(text: string, chartLimit: string): { limit: string; nodeOptions: string }[] {
  const list = text === '' ? [chartLimit] : text.split(',');
  return list.map((v) => {
    const [limit = chartLimit, nodeOptions = ''] = v.split('|');
    return { limit, nodeOptions };
  });
}

async function main(): Promise<void> {
  const why = dataPlaneUnavailable() ?? runcUnavailable();
  if (why !== undefined) throw new Error(`cannot run: ${why}`);
  const cluster = await startCluster();
  const kc = cluster.kubeConfig();
  const dir = cluster.dir ?? '/tmp';
  let node: Node | undefined;
  let backends: Backends | undefined;
  try {
    log('building the image');
    const built = buildImage({ out: join(dir, 'image') });
    const image = unpackImage(built.layout, join(dir, 'unpacked'));
    node = await startNode(cluster, {
      dir: join(dir, 'node-a'),
      nodeName: 'node-a',
      coreDns: false,
    });
    await publishApiServer(cluster, node);
    const [repository, tag] = built.reference.split(':');
    helm(cluster.kubeconfigPath, 'install', [
      `image.repository=${repository ?? ''}`,
      `image.tag=${tag ?? ''}`,
      // Plain /metrics, scraped every 5 s without a token: what is measured is the operator's
      // memory under load, and the review caches of secure metrics are bounded (a few thousand
      // hashes) whatever the load.
      'metrics.secure=false',
    ]);
    const spec = await readPodSpec(kc);
    const chartLimit = spec.containers[0]?.resources?.limits?.memory ?? 'none';
    const chartRequest = spec.containers[0]?.resources?.requests?.memory ?? 'none';
    const token = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      name: spec.serviceAccountName ?? 'default',
      namespace: releaseNs,
      body: { spec: { audiences: [], expirationSeconds: 86400 } },
    });
    const env: Env = {
      cluster,
      kc,
      node,
      image,
      token: token.status?.token ?? '',
      caCrt: readFileSync(join(dir, 'ca.crt'), 'utf8'),
      seccompProfile: ensureDataPlaneBinary('seccomp-default'),
    };
    log(`the chart's memory: request ${chartRequest}, limit ${chartLimit}`);
    const heap = skip.has('heap')
      ? []
      : await heapLimits(env, spec, variants(args['heap-limits'], chartLimit));
    const heapFor = (limit: string, nodeOptions: string) =>
      heap.find((h) => h.limit === limit && h.nodeOptions === nodeOptions)?.heapSizeLimitMiB;
    const runs: Run[] = [];
    const file = join(args.out ?? '.', 'memory.json');
    // --append: runs made by separate invocations (e.g. a tighter limit) go into one file.
    const before =
      args.append && existsSync(file)
        ? (JSON.parse(readFileSync(file, 'utf8')) as MemoryResult)
        : undefined;
    const save = () => {
      const result: MemoryResult = {
        ...measured,
        chartLimit,
        chartRequest,
        heapLimits: heap.length > 0 ? heap : (before?.heapLimits ?? []),
        runs: [...(before?.runs ?? []), ...runs],
        pods: Number(args.pods),
        services: Number(args.services),
        addresses: Number(args.backends) * Number(args['addresses-per-backend']),
      };
      if (args.out !== undefined) {
        mkdirSync(args.out, { recursive: true });
        writeFileSync(file, `${JSON.stringify(result, null, 1)}\n`);
      }
      return result;
    };
    const report = (r: Run) => {
      log(
        `  → ${r.outcome}; ready after ${r.readyAfterSeconds?.toFixed(0) ?? '—'} s; peak cgroup ${r.peakCgroupMiB.toFixed(0)} MiB, peak RSS ${r.peakRssMiB.toFixed(0)} MiB, end RSS ${r.endRssMiB.toFixed(0)} MiB; heap used peak ${r.peakHeapUsedMiB?.toFixed(0) ?? '—'} / total peak ${r.peakHeapTotalMiB?.toFixed(0) ?? '—'} MiB; GC ${String(r.gc.count)} pauses, ${r.gc.totalMs.toFixed(0)} ms total, max ${r.gc.maxMs.toFixed(1)} ms (${r.gc.maxKind}); failcnt ${String(r.failcnt)}, OOM kills ${String(r.oomKills)}; liveness failures ${String(r.livenessFailures)}, restarts ${String(r.wouldRestart)}`,
      );
      if (r.logTail !== undefined) log(`  log tail:\n${r.logTail}`);
    };
    const record = (r: Run): void => {
      report(r);
      runs.push(r);
      save();
    };
    const runDefault = async (v: { limit: string; nodeOptions: string }): Promise<void> => {
      backends ??= await createBackends(env);
      record(
        await defaultRun(env, backends, v.limit, v.nodeOptions, heapFor(v.limit, v.nodeOptions)),
      );
    };
    for (const v of skip.has('chart-limit') ? [] : variants(args.limits, chartLimit)) {
      if (!skip.has('selector'))
        record(await selectorRun(env, v.limit, v.nodeOptions, heapFor(v.limit, v.nodeOptions)));
      if (!skip.has('default')) await runDefault(v);
    }
    // Default flags only: how outrigger fails under a limit that is too small, and what NODE_OPTIONS
    // change (see docs/memory.md).
    if (!skip.has('default') && !skip.has('tight'))
      for (const v of variants(args.variants, chartLimit)) await runDefault(v);
    save();
    if (args.out !== undefined) log(`wrote ${join(args.out, 'memory.json')}`);
  } finally {
    await backends?.remove().catch(() => undefined);
    await node?.stop().catch(() => undefined);
    await cluster.stop();
  }
}

await main();
