// `npm run bench -- --pods=N --services=M`: outrigger's endpoints controller against
// kube-controller-manager's on the same workload, each on a fresh local control plane, one after
// the other so that they never share the two cores; then outrigger's health checks at scale.
// Prints figures with ratios and writes them as JSON (--out) for the results page. Asserts
// nothing: goals are printed next to the figures, not enforced. The whole is repeated --runs times
// (3 by default) and every figure is printed as the median with the spread of the runs.
//
// outrigger runs as the chart runs it: inside a memory cgroup with the chart's
// `resources.limits.memory`, so that Node sizes its heap as in a pod; with --trace-gc (every GC
// pause) and the inspector on loopback (the live heap after a full GC, and a CPU profile of an
// extra churn at 20 flips/s that no figure is taken from). --main=<tree>/src/main.ts measures
// another tree's outrigger with this harness: the before side of a before-and-after.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import PQueue from 'p-queue';
import type { MemoryCgroup } from '../harness/cgroup.ts';
import { startCluster, type Cluster } from '../harness/controlplane.ts';
import { installCrd } from '../harness/crd.ts';
import { provenance } from '../harness/provenance.ts';
import { gcFromTrace, type GcFigures } from './gc.ts';
import type { Inspector } from './inspector.ts';
import { cgroupWhyNot, memoryLimit, startLimited } from './limited.ts';
import {
  EndpointsTracker,
  diffVerbs,
  percentile,
  requestsByVerb,
  sampleProcess,
} from './observe.ts';
import { probeScale, type ProbeFigures } from './probes.ts';
import { renderResults } from './results.ts';
import { load, podIP, podName, setPodReady, workload, type Workload } from './workload.ts';

const { values: args } = parseArgs({
  options: {
    pods: { type: 'string', default: '10000' },
    services: { type: 'string', default: '1000' },
    churn: { type: 'string', default: '20,50,100' },
    'churn-seconds': { type: 'string', default: '30' },
    backends: { type: 'string', default: '1000' },
    'addresses-per-backend': { type: 'string', default: '10' },
    'probe-seconds': { type: 'string', default: '60' },
    out: { type: 'string' },
    skip: { type: 'string', default: '' },
    runs: { type: 'string', default: '3' },
    main: { type: 'string' },
    // Flags for outrigger's node, space-separated: `--node-args=--max-semi-space-size=16`.
    'node-args': { type: 'string', default: '' },
  },
});
const podsWanted = Number(args.pods);
const servicesWanted = Number(args.services);
const churnRates = args.churn.split(',').filter(Boolean).map(Number);
const churnSeconds = Number(args['churn-seconds']);
const skip = new Set(args.skip.split(',').filter(Boolean));
const runCount = Math.max(1, Number(args.runs));

const mainOverride = args.main;
const nodeArgs = args['node-args'].split(' ').filter(Boolean);

const unlimited = ['--kube-api-qps=100000', '--kube-api-burst=100000'];
/** Both controllers run 5 workers by default; the raw-write floor uses as many. */
const workers = 5;

export interface Latency {
  readonly rate: number;
  readonly samples: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly triggerP50: number;
  readonly triggerP99: number;
  readonly cpuPer1000: number;
  /** Readiness changes written (absent in results from before it was recorded). */
  readonly flips?: number;
}

/** outrigger under the chart's limit: what the kernel charged, what V8 kept, and its pauses. */
export interface LimitFigures {
  readonly limit: string;
  /** process.constrainedMemory() inside the process: proves Node saw the limit. */
  readonly constrainedMiB: number;
  readonly cgroupPeakMiB: number;
  readonly failcnt: number;
  readonly oomKills: number;
  /** The JS heap in use after a full GC, once the churn is over. */
  readonly liveHeapMiB: number;
  /** Every GC pause from cold start to the end of the churns (--trace-gc). */
  readonly gc: Omit<GcFigures, 'promTotalSeconds'>;
}

export interface ControllerFigures {
  readonly name: string;
  readonly convergeMs: number;
  readonly convergeWrites: Record<string, number>;
  readonly idleWrites: number;
  readonly convergeUnlimitedMs: number;
  /**
   * Where outrigger's cold start with the limiter off went, from its own log: until its first line
   * (Node starting and loading the code), from there until its caches synced (the lists), and from
   * there until the client-side watch saw every Endpoints right (the writes). Absent for
   * kube-controller-manager and in older results.
   */
  readonly convergeUnlimitedPhases?: {
    readonly startMs: number;
    readonly listMs: number;
    readonly writeMs: number;
  };
  readonly churn: readonly Latency[];
  readonly churnUnlimited: Latency | undefined;
  readonly churnWrites: Record<string, number>;
  readonly peakRssMiB: number;
  readonly steadyRssMiB: number;
  readonly heapMiB: number | undefined;
  readonly eventLoopP99Ms: number | undefined;
  /** Absent for kube-controller-manager, and in results from before outrigger ran under a limit. */
  readonly underLimit?: LimitFigures;
}

/** One run's figures. */
export interface BenchRun {
  readonly loadMs: number;
  readonly rawFloorMs: number | undefined;
  readonly upstream: ControllerFigures | undefined;
  readonly outrigger: ControllerFigures | undefined;
  /** outrigger with default flags (ExternalBackends only): RSS at 0 pods and at `pods`. */
  readonly defaultModeRssMiB: { readonly zero: number; readonly loaded: number } | undefined;
  readonly probes: ProbeFigures | undefined;
}

/** The first run's figures at the top level (as results from before --runs had them), all in runs. */
export interface BenchResult extends BenchRun {
  readonly date: string;
  /** The commit measured; absent in results from before it was recorded. */
  readonly commit?: string;
  readonly machine: string;
  readonly pods: number;
  readonly services: number;
  /** The outrigger measured, when not this tree's (--main). */
  readonly main?: string;
  /** Flags outrigger's node ran with beyond the benchmark's own (--node-args). */
  readonly nodeArgs?: readonly string[];
  /** Every run, the first included; absent in results from before --runs (one run). */
  readonly runs?: readonly BenchRun[];
}

interface Running {
  readonly pid: number;
  stop(): Promise<void>;
  metric?(name: string): Promise<number>;
  readonly inspector?: Inspector;
  readonly cgroup?: MemoryCgroup;
  readonly logPath?: string;
}

interface UnderTest {
  readonly name: string;
  start(cluster: Cluster, extra: readonly string[]): Promise<Running>;
}

const upstream: UnderTest = {
  name: 'kube-controller-manager',
  async start(cluster, extra) {
    await cluster.startControllerManager(['endpoints-controller'], extra);
    const pid = cluster.pids().at(-1) ?? 0;
    return { pid, stop: () => cluster.stopControllerManager() };
  },
};

let starts = 0;

const outrigger: UnderTest = {
  name: 'outrigger',
  async start(cluster, extra) {
    const logPath = join(cluster.dir ?? '/tmp', `outrigger-${String(starts)}.log`);
    const { op, inspector, cgroup } = await startLimited(
      cluster.kubeconfigPath,
      ['--selector-mode=all', ...extra],
      logPath,
      { main: mainOverride, nodeArgs },
    );
    starts++;
    return {
      pid: op.pid,
      stop: async () => {
        inspector.close();
        await op.stop();
        cgroup?.remove();
      },
      metric: (name) => op.metric(name),
      inspector,
      ...(cgroup !== undefined ? { cgroup } : {}),
      logPath,
    };
  },
};

/** The phases of a cold start, from the times of outrigger's first log line and its cache sync. */
function coldStartPhases(
  logText: string,
  startedAt: number,
  convergedAt: number,
): ControllerFigures['convergeUnlimitedPhases'] {
  let first: number | undefined;
  let synced: number | undefined;
  for (const line of logText.split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry: { ts?: unknown; msg?: unknown };
    try {
      entry = JSON.parse(line) as { ts?: unknown; msg?: unknown };
    } catch {
      continue;
    }
    const at = typeof entry.ts === 'string' ? Date.parse(entry.ts) : NaN;
    if (Number.isNaN(at)) continue;
    first ??= at;
    if (entry.msg === 'caches synced; starting controllers') {
      synced = at;
      break;
    }
  }
  if (first === undefined || synced === undefined) return undefined;
  return {
    startMs: first - startedAt,
    listMs: synced - first,
    writeMs: convergedAt - synced,
  };
}

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function until(what: string, fn: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`timed out after ${String(timeoutMs)} ms: ${what}`);
    await delay(20);
  }
  return Date.now() - t0;
}

const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

/** Where the first run writes its CPU profile of a churn (--out/profiles); then undefined. */
let profileOut = args.out !== undefined ? join(args.out, 'profiles') : undefined;

/** What the limit did to a running outrigger: read before it stops (the full GC comes last). */
async function limitFigures(ctl: Running): Promise<LimitFigures | undefined> {
  if (ctl.inspector === undefined || ctl.logPath === undefined) return undefined;
  const constrained = await ctl.inspector.send<{ result: { value?: number } }>('Runtime.evaluate', {
    expression: 'process.constrainedMemory()',
    returnByValue: true,
  });
  // Read before the full GC below, which would count as a pause of its own.
  const gc = gcFromTrace(readFileSync(ctl.logPath, 'utf8'));
  const cg = ctl.cgroup?.stats();
  const liveHeapMiB = await ctl.inspector.liveHeapMiB();
  return {
    limit: ctl.cgroup !== undefined ? memoryLimit : 'none',
    constrainedMiB: (constrained.result.value ?? NaN) / 2 ** 20,
    cgroupPeakMiB: cg?.peakMiB ?? NaN,
    failcnt: cg?.failcnt ?? NaN,
    oomKills: cg?.oomKills ?? NaN,
    liveHeapMiB,
    gc,
  };
}

/**
 * `rate` readiness flips per second for `seconds`, spread over the workload's Services (every
 * Service equally likely, so small and large ones both show); each pod flipped goes not ready and
 * comes back in the next round. Resolves with the latencies and CPU per 1000 flips.
 */
async function churn(
  kc: KubeConfig,
  w: Workload,
  tracker: EndpointsTracker,
  pid: number,
  rate: number,
  seconds: number,
): Promise<Latency> {
  const core = kc.makeApiClient(CoreV1Api);
  tracker.resetLatencies();
  const pool = new PQueue({ concurrency: 32 });
  const down: { s: number; k: number; at: number }[] = [];
  const isDown = new Set<string>();
  // One pod's writes go in order: a pod brought back must not overtake its own going down.
  const lastWrite = new Map<string, Promise<unknown>>();
  let n = 0;
  let seed = 12345;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  let failures = 0;
  const flip = (s: number, k: number, ready: boolean): void => {
    const svc = w.services[s];
    if (svc === undefined) return;
    const at = new Date();
    tracker.flip(`${svc.namespace}/${svc.name}`, svc.firstPod + k, ready);
    const key = `${String(s)}/${String(k)}`;
    if (ready) isDown.delete(key);
    else isDown.add(key);
    const write = (lastWrite.get(key) ?? Promise.resolve())
      .then(() =>
        pool.add(() =>
          setPodReady(core, svc.namespace, podName(svc, k), podIP(svc.firstPod + k), ready, at),
        ),
      )
      .catch(() => {
        failures++;
      });
    lastWrite.set(key, write);
    n++;
  };
  const cpu0 = sampleProcess(pid).cpuSeconds;
  const started = Date.now();
  for (let tick = 0; Date.now() - started < seconds * 1000; tick++) {
    // Every 100 ms a tenth of the rate: half bring back a pod downed over a second ago, half take
    // a pod down (every Service equally likely, so small and large ones both show).
    const batch = Math.max(1, Math.round(rate / 10));
    for (let i = 0; i < batch; i++) {
      const oldest = down[0];
      if (oldest !== undefined && i % 2 === 1 && Date.now() - oldest.at > 1000) {
        down.shift();
        flip(oldest.s, oldest.k, true);
        continue;
      }
      const s = Math.floor(random() * w.services.length);
      const k = Math.floor(random() * (w.services[s]?.size ?? 1));
      if (isDown.has(`${String(s)}/${String(k)}`)) continue;
      down.push({ s, k, at: Date.now() });
      flip(s, k, false);
    }
    const next = started + (tick + 1) * 100;
    await delay(Math.max(0, next - Date.now()));
  }
  for (const d of down.splice(0)) flip(d.s, d.k, true);
  await Promise.all(lastWrite.values());
  await pool.onIdle();
  await until('Endpoints to settle after the churn', () => tracker.converged, 300_000).catch(
    (err: unknown) => {
      throw new Error(`${String(err)}; ${tracker.mismatches()}`, { cause: err });
    },
  );
  const cpu = sampleProcess(pid).cpuSeconds - cpu0;
  if (failures > 0) log(`${String(failures)} status writes failed during the churn`);
  const a = [...tracker.fromSend].sort((x, y) => x - y);
  const t = [...tracker.fromTrigger].sort((x, y) => x - y);
  return {
    rate,
    samples: a.length,
    p50: percentile(a, 50),
    p99: percentile(a, 99),
    max: a.at(-1) ?? NaN,
    triggerP50: percentile(t, 50),
    triggerP99: percentile(t, 99),
    cpuPer1000: (cpu / Math.max(1, n)) * 1000,
    flips: n,
  };
}

async function deleteAllEndpoints(kc: KubeConfig, w: Workload): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  for (const ns of w.namespaces) await core.deleteCollectionNamespacedEndpoints({ namespace: ns });
}

/** A minimal client writing the same Endpoints objects, with as many workers and no limiter. */
async function rawFloor(kc: KubeConfig, w: Workload, tracker: EndpointsTracker): Promise<number> {
  const core = kc.makeApiClient(CoreV1Api);
  tracker.forgetSeen();
  const pool = new PQueue({ concurrency: workers });
  const t0 = Date.now();
  for (const s of w.services) {
    pool
      .add(() =>
        core.createNamespacedEndpoints({
          namespace: s.namespace,
          body: {
            metadata: { name: s.name },
            subsets: [
              {
                addresses: Array.from({ length: s.size }, (_, k) => ({
                  ip: podIP(s.firstPod + k),
                  nodeName: `node-${String(k % 100)}`,
                  targetRef: { kind: 'Pod', namespace: s.namespace, name: podName(s, k) },
                })),
                ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
              },
            ],
          },
        }),
      )
      .catch((err: unknown) => {
        log(`raw write failed: ${String(err)}`);
      });
  }
  await pool.onIdle();
  await until('the raw writes to show', () => tracker.converged, 300_000);
  return Date.now() - t0;
}

/** RSS of outrigger with default flags and one ExternalBackend of 3 addresses, once synced. */
async function defaultModeRss(cluster: Cluster): Promise<number> {
  const started = await startLimited(
    cluster.kubeconfigPath,
    [],
    join(cluster.dir ?? '/tmp', 'outrigger-default.log'),
    { main: mainOverride, nodeArgs },
  );
  try {
    await delay(10_000);
    return sampleProcess(started.op.pid).rssMiB;
  } finally {
    await started.stop();
  }
}

async function createBackend(kc: KubeConfig): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'external' } } });
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: 'outrigger.dev',
    version: 'v1alpha1',
    namespace: 'external',
    plural: 'externalbackends',
    body: {
      apiVersion: 'outrigger.dev/v1alpha1',
      kind: 'ExternalBackend',
      metadata: { name: 'etcd' },
      // Documentation addresses and no health check: nothing is ever sent to them.
      spec: {
        ports: [{ name: 'client', port: 2379 }],
        addresses: [{ ip: '192.0.2.10' }, { ip: '192.0.2.11' }, { ip: '192.0.2.12' }],
      },
    },
  });
}

async function measure(
  c: UnderTest,
  w: Workload,
): Promise<{
  figures: ControllerFigures;
  loadMs: number;
  rawFloorMs?: number;
  defaultMode?: { zero: number; loaded: number };
}> {
  log(`[${c.name}] fresh control plane`);
  const cluster = await startCluster();
  const kc = cluster.kubeConfig();
  try {
    let defaultMode: { zero: number; loaded: number } | undefined;
    let zero = NaN;
    if (c === outrigger) {
      await installCrd(cluster.kubeconfigPath, { allowAllAddresses: true });
      await createBackend(kc);
      zero = await defaultModeRss(cluster);
      log(`[outrigger] default flags, 0 pods: RSS ${zero.toFixed(1)} MiB`);
    }
    log(`[${c.name}] loading ${String(w.pods)} pods in ${String(w.services.length)} Services`);
    const loadMs = await load(kc, w);
    log(`[${c.name}] loaded in ${String(loadMs)} ms`);
    if (c === outrigger) {
      const loaded = await defaultModeRss(cluster);
      defaultMode = { zero, loaded };
      log(`[outrigger] default flags, ${String(w.pods)} pods: RSS ${loaded.toFixed(1)} MiB`);
    }
    const tracker = new EndpointsTracker(w);
    await tracker.start(kc);
    const v0 = await requestsByVerb(kc, 'endpoints');
    const t0 = Date.now();
    let ctl = await c.start(cluster, []);
    await until('cold convergence', () => tracker.converged, 1_800_000);
    const convergeMs = Date.now() - t0;
    log(`[${c.name}] converged in ${String(convergeMs)} ms`);
    await delay(3000);
    const v1 = await requestsByVerb(kc, 'endpoints');
    await delay(5000);
    const v2 = await requestsByVerb(kc, 'endpoints');
    const latencies: Latency[] = [];
    for (const rate of skip.has('churn') ? [] : churnRates) {
      log(`[${c.name}] churn: ${String(rate)} flips/s for ${String(churnSeconds)} s`);
      latencies.push(await churn(kc, w, tracker, ctl.pid, rate, churnSeconds));
      const l = latencies.at(-1);
      log(
        `[${c.name}]   p50 ${String(l?.p50)} ms, p99 ${String(l?.p99)} ms, max ${String(l?.max)} ms`,
      );
    }
    const v3 = await requestsByVerb(kc, 'endpoints');
    const steady = sampleProcess(ctl.pid);
    // The event-loop histogram is reset by every scrape: read it first.
    const eld = ctl.metric
      ? (await ctl.metric('nodejs_eventloop_lag_max_seconds')) * 1000
      : undefined;
    const heap = ctl.metric
      ? (await ctl.metric('nodejs_heap_size_used_bytes')) / 1048576
      : undefined;
    let peak = steady.peakRssMiB;
    const underLimit = await limitFigures(ctl);
    if (ctl.inspector !== undefined && profileOut !== undefined && !skip.has('churn')) {
      // A churn of its own: the sampling profiler's cost stays out of every figure above.
      await ctl.inspector.startProfile();
      const l = await churn(kc, w, tracker, ctl.pid, 20, churnSeconds);
      const profile = await ctl.inspector.stopProfile();
      mkdirSync(profileOut, { recursive: true });
      const file = join(profileOut, `flip-${String(w.pods)}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      writeFileSync(
        join(profileOut, `flip-${String(w.pods)}.json`),
        `${JSON.stringify({ flips: l.flips, seconds: churnSeconds, rate: 20, main: mainOverride ?? 'this tree' })}\n`,
      );
      log(`[${c.name}] CPU profile of ${String(l.flips)} flips: ${file}`);
      profileOut = undefined;
    }
    await ctl.stop();

    log(`[${c.name}] limiter off: Endpoints deleted, cold start`);
    await deleteAllEndpoints(kc, w);
    tracker.forgetSeen();
    const t1 = Date.now();
    ctl = await c.start(cluster, unlimited);
    await until('cold convergence, limiter off', () => tracker.converged, 1_800_000);
    const convergeUnlimitedMs = Date.now() - t1;
    log(`[${c.name}] converged (limiter off) in ${String(convergeUnlimitedMs)} ms`);
    const phases =
      ctl.logPath === undefined
        ? undefined
        : coldStartPhases(readFileSync(ctl.logPath, 'utf8'), t1, t1 + convergeUnlimitedMs);
    if (phases !== undefined)
      log(
        `[${c.name}]   of it: start ${String(phases.startMs)} ms, lists until the caches synced ${String(phases.listMs)} ms, writes ${String(phases.writeMs)} ms`,
      );
    let churnUnlimited: Latency | undefined;
    if (!skip.has('churn')) {
      churnUnlimited = await churn(kc, w, tracker, ctl.pid, 50, churnSeconds);
      log(
        `[${c.name}]   limiter off, 50 flips/s: p50 ${String(churnUnlimited.p50)} ms, p99 ${String(churnUnlimited.p99)} ms`,
      );
    }
    peak = Math.max(peak, sampleProcess(ctl.pid).peakRssMiB);
    await ctl.stop();
    let rawFloorMs: number | undefined;
    if (c === upstream) {
      await deleteAllEndpoints(kc, w);
      rawFloorMs = await rawFloor(kc, w, tracker);
      log(`raw-write floor: ${String(rawFloorMs)} ms`);
    }
    tracker.stop();
    return {
      loadMs,
      ...(rawFloorMs !== undefined ? { rawFloorMs } : {}),
      ...(defaultMode !== undefined ? { defaultMode } : {}),
      figures: {
        name: c.name,
        convergeMs,
        convergeWrites: Object.fromEntries(diffVerbs(v0, v1)),
        idleWrites:
          sum(diffVerbs(v1, v2)) -
          (diffVerbs(v1, v2).get('LIST') ?? 0) -
          (diffVerbs(v1, v2).get('WATCH') ?? 0) -
          (diffVerbs(v1, v2).get('GET') ?? 0),
        convergeUnlimitedMs,
        ...(phases !== undefined ? { convergeUnlimitedPhases: phases } : {}),
        churn: latencies,
        churnUnlimited,
        churnWrites: Object.fromEntries(diffVerbs(v2, v3)),
        peakRssMiB: peak,
        steadyRssMiB: steady.rssMiB,
        heapMiB: heap,
        eventLoopP99Ms: eld,
        ...(underLimit !== undefined ? { underLimit } : {}),
      },
    };
  } finally {
    await cluster.stop();
  }
}

// Taken before the run so that edits made while it runs do not mark the result dirty.
const measured = provenance();
const w = workload(podsWanted, servicesWanted);
const sizes = w.services.map((s) => s.size);
log(
  `workload: ${String(w.pods)} pods, ${String(w.services.length)} Services in ${String(w.namespaces.length)} namespaces; largest ${String(Math.max(...sizes))}, median ${String(sizes.slice().sort((a, b) => a - b)[Math.floor(sizes.length / 2)])}`,
);
if (cgroupWhyNot !== undefined) log(`outrigger runs without a memory limit: ${cgroupWhyNot}`);
else log(`outrigger runs under the chart's memory limit, ${memoryLimit}`);
const runs: BenchRun[] = [];
for (let i = 0; i < runCount; i++) {
  if (runCount > 1) log(`run ${String(i + 1)} of ${String(runCount)}`);
  const u = skip.has('upstream') ? undefined : await measure(upstream, w);
  const o = skip.has('outrigger') ? undefined : await measure(outrigger, w);
  const probes = skip.has('probes')
    ? undefined
    : await probeScale({
        backends: Number(args.backends),
        addressesPerBackend: Number(args['addresses-per-backend']),
        seconds: Number(args['probe-seconds']),
        log,
        start: (kubeconfig, logPath) =>
          startLimited(kubeconfig, [], logPath, { main: mainOverride, nodeArgs }),
        ...(i === 0 && args.out !== undefined ? { profileOut: join(args.out, 'profiles') } : {}),
      });
  runs.push({
    loadMs: o?.loadMs ?? u?.loadMs ?? NaN,
    rawFloorMs: u?.rawFloorMs,
    upstream: u?.figures,
    outrigger: o?.figures,
    defaultModeRssMiB: o?.defaultMode,
    probes,
  });
}
const [first] = runs;
if (first === undefined) throw new Error('no run');
const result: BenchResult = {
  ...measured,
  pods: w.pods,
  services: w.services.length,
  ...(mainOverride !== undefined ? { main: mainOverride } : {}),
  ...(nodeArgs.length > 0 ? { nodeArgs } : {}),
  ...first,
  runs,
};
process.stdout.write(`${renderResults(result)}\n`);
if (args.out !== undefined) {
  mkdirSync(args.out, { recursive: true });
  const file = join(args.out, `bench-${String(w.pods)}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${file}`);
}
