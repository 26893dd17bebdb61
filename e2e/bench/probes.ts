// Health checks at scale: `backends` ExternalBackends of `addressesPerBackend` addresses each,
// probed every 10 s by outrigger (default flags) against one real TCP listener inside a network
// namespace this run creates (its addresses are an AnyIP range routed there). Measures the CPU
// outrigger uses, how late probes start (schedule lag), and status writes per minute when all is
// well and when every backend's servers die at once and come back; and what the addresses cost in
// memory: the live heap after a full GC before the first backend and with every address healthy.
// The caller starts outrigger (under the chart's memory limit in `npm run bench`).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import PQueue from 'p-queue';
import { startCluster } from '../harness/controlplane.ts';
import { installCrd } from '../harness/crd.ts';
import { createBackendNetwork, netnsUnavailable } from '../harness/netns.ts';
import type { OperatorProcess } from '../harness/operator.ts';
import { apiServerMetrics } from './apiserver.ts';
import { gcFromTrace, type GcFigures } from './gc.ts';
import { topAllocators, totalAllocated } from './inspector.ts';
import type { Limited } from './limited.ts';
import {
  machineSoftirqSeconds,
  sampleProcess,
  sampleThreads,
  threadCoresBetween,
  type ThreadCpu,
} from './observe.ts';

export interface ProbeFigures {
  readonly backends: number;
  readonly addresses: number;
  readonly intervalSeconds: number;
  readonly readyMs: number;
  readonly windowSeconds: number;
  readonly probesPerSecond: number;
  readonly cpuCores: number;
  /** Upper bounds of the histogram buckets the 50th and 99th percentile fall in. */
  readonly lagP50Seconds: number;
  readonly lagP99Seconds: number;
  readonly statusWritesPerMinuteSteady: number;
  /** Every server dies, then comes back: status writes per address transition. */
  readonly outageTransitions: number;
  readonly outageStatusWrites: number;
  readonly outageSliceWrites: number;
  readonly rssMiB: number;
  /**
   * Paced writes outrigger made until every address was healthy (Events, on a budget of their
   * own, and reads left out; before 2026-12-06 every request was counted), and the time the
   * limiter needs for them.
   */
  readonly readyRequests?: number;
  /** Whether readyRequests counts the paced writes only (absent: every request). */
  readonly readyPacedOnly?: boolean;
  readonly readyFloorMs?: number;
  /** Peak RSS (VmHWM) over the whole run. */
  readonly peakRssMiB?: number;
  readonly cgroupPeakMiB?: number;
  /** The live heap after a full GC: with no backend, and with every address healthy. */
  readonly liveHeapIdleMiB?: number;
  readonly liveHeapMiB?: number;
  readonly gc?: Omit<GcFigures, 'promTotalSeconds'>;
  /** cpuCores split: user and system time, the JavaScript thread and the others by name. */
  readonly cpuSplit?: ThreadCpu;
  /** Time the JavaScript thread spent in GC pauses in the window, per second. */
  readonly gcCores?: number;
  /**
   * The whole machine's softirq time in the window, per second: the kernel's packet processing of
   * both ends of every probe (the servers are on this machine), charged to whichever task it
   * interrupted, outrigger's threads included.
   */
  readonly softirqCores?: number;
  /** What one probe allocates on the JS heap (sampled, garbage included), in bytes. */
  readonly allocatedPerProbeBytes?: number;
}

export type Started = Limited;

const perNamespace = 100;
const intervalSeconds = 10;

async function histogram(op: OperatorProcess, name: string): Promise<Map<number, number>> {
  const text = await (await fetch(op.metricsUrl)).text();
  const out = new Map<number, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`).exec(line);
    if (m !== null) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  }
  return out;
}

function quantile(before: Map<number, number>, after: Map<number, number>, q: number): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  for (const le of bounds) if ((after.get(le) ?? 0) - (before.get(le) ?? 0) >= q * total) return le;
  return Infinity;
}

async function statusPatches(
  kc: Parameters<typeof apiServerMetrics>[0],
  resource: string,
  subresource: string,
): Promise<number> {
  const text = await apiServerMetrics(kc);
  let n = 0;
  for (const line of text.split('\n'))
    if (
      line.startsWith('apiserver_request_total{') &&
      line.includes(`resource="${resource}"`) &&
      line.includes(`subresource="${subresource}"`) &&
      /verb="(PATCH|UPDATE|CREATE|APPLY|DELETE)"/.test(line)
    )
      n += Number(line.slice(line.lastIndexOf(' ') + 1));
  return n;
}

export async function probeScale(o: {
  backends: number;
  addressesPerBackend: number;
  seconds: number;
  log: (msg: string) => void;
  start: (kubeconfig: string, logPath: string) => Promise<Started>;
  /** Where to write a CPU profile of 20 s of steady probing, taken after the measured window. */
  profileOut?: string;
  /** The client-side limiter's rate and burst outrigger runs with (its defaults). */
  qps?: number;
  burst?: number;
}): Promise<ProbeFigures | undefined> {
  const why = netnsUnavailable();
  if (why !== undefined) {
    o.log(`probes at scale skipped: ${why}`);
    return undefined;
  }
  const total = o.backends * o.addressesPerBackend;
  o.log(`probes: ${String(o.backends)} backends × ${String(o.addressesPerBackend)} addresses`);
  const cluster = await startCluster();
  const net = createBackendNetwork(cluster.dir ?? '/tmp', 1);
  let started: Started | undefined;
  try {
    const kc = cluster.kubeConfig();
    const ips = net.routed(total);
    let server = await net.serveAll(7000, 'tcp');
    await installCrd(cluster.kubeconfigPath, { allowAllAddresses: true });
    const core = kc.makeApiClient(CoreV1Api);
    const objects = kc.makeApiClient(CustomObjectsApi);
    const namespaces = Array.from(
      { length: Math.ceil(o.backends / perNamespace) },
      (_, i) => `probes-${String(i)}`,
    );
    for (const ns of namespaces) await core.createNamespace({ body: { metadata: { name: ns } } });
    const logPath = join(cluster.dir ?? '/tmp', 'outrigger-probes.log');
    started = await o.start(cluster.kubeconfigPath, logPath);
    const op = started.op;
    const liveHeapIdleMiB = await started.inspector.liveHeapMiB();
    // The limiter paces outrigger's writes; reads are not paced, and Events have a budget of their
    // own (events.ts), so neither counts toward the floor.
    const paced = async (): Promise<number> => {
      let n = 0;
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'])
        n += await op.metric('rest_client_requests_total', { method });
      return n - (await op.metric('outrigger_events_total', { result: 'sent' }));
    };
    const requests0 = await paced();
    const t0 = Date.now();
    const pool = new PQueue({ concurrency: 16 });
    for (let b = 0; b < o.backends; b++) {
      const namespace = namespaces[Math.floor(b / perNamespace)] ?? '';
      const addresses = ips.slice(b * o.addressesPerBackend, (b + 1) * o.addressesPerBackend);
      pool
        .add(() =>
          objects.createNamespacedCustomObject({
            group: 'outrigger.dev',
            version: 'v1alpha1',
            namespace,
            plural: 'externalbackends',
            body: {
              apiVersion: 'outrigger.dev/v1alpha1',
              kind: 'ExternalBackend',
              metadata: { name: `b-${String(b)}` },
              spec: {
                ports: [{ name: 'p', port: 7000 }],
                addresses: addresses.map((ip) => ({ ip })),
                healthCheck: { tcp: { port: 'p' }, intervalSeconds, timeoutSeconds: 2 },
              },
            },
          }),
        )
        .catch((err: unknown) => {
          o.log(`create failed: ${String(err)}`);
        });
    }
    await pool.onIdle();
    const readyCount = async (): Promise<number> => {
      let n = 0;
      for (const namespace of namespaces) {
        const list = (await objects.listNamespacedCustomObject({
          group: 'outrigger.dev',
          version: 'v1alpha1',
          namespace,
          plural: 'externalbackends',
        })) as {
          items: { status?: { readyAddresses?: number; addresses?: { state?: string }[] } }[];
        };
        for (const x of list.items)
          n += (x.status?.addresses ?? []).filter((a) => a.state === 'Healthy').length;
      }
      return n;
    };
    const waitHealthy = async (want: (n: number) => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 600_000;
      for (;;) {
        const n = await readyCount();
        if (want(n)) return;
        if (Date.now() > deadline) throw new Error(`${what}: ${String(n)} healthy`);
        await delay(2000);
      }
    };
    await waitHealthy((n) => n === total, 'every address healthy');
    const readyMs = Date.now() - t0;
    const readyRequests = (await paced()) - requests0;
    // The limiter lets the burst through at once, then one request per 1/qps.
    const readyFloorMs = (Math.max(0, readyRequests - (o.burst ?? 30)) / (o.qps ?? 20)) * 1000;
    o.log(
      `probes: all ${String(total)} addresses healthy after ${String(readyMs)} ms (${String(readyRequests)} paced writes: ${readyFloorMs.toFixed(0)} ms at the limiter's rate)`,
    );

    const lag0 = await histogram(op, 'outrigger_probe_schedule_lag_seconds');
    const probes0 = await op.metric('outrigger_probe_total');
    const gc0 = await op.metric('nodejs_gc_duration_seconds_sum');
    const cpu0 = sampleProcess(op.pid).cpuSeconds;
    const threads0 = sampleThreads(op.pid);
    const softirq0 = machineSoftirqSeconds();
    const status0 = await statusPatches(kc, 'externalbackends', 'status');
    const w0 = Date.now();
    await delay(o.seconds * 1000);
    const windowSeconds = (Date.now() - w0) / 1000;
    const threads1 = sampleThreads(op.pid);
    const softirqCores = (machineSoftirqSeconds() - softirq0) / windowSeconds;
    const cpu1 = sampleProcess(op.pid).cpuSeconds;
    const lag1 = await histogram(op, 'outrigger_probe_schedule_lag_seconds');
    const probes1 = await op.metric('outrigger_probe_total');
    const gc1 = await op.metric('nodejs_gc_duration_seconds_sum');
    const cpuSplit = threadCoresBetween(threads0, threads1, windowSeconds);
    o.log(
      `probes: ${((cpu1 - cpu0) / windowSeconds).toFixed(3)} cores (user ${cpuSplit.userSeconds.toFixed(3)}, system ${cpuSplit.systemSeconds.toFixed(3)}; JavaScript thread ${cpuSplit.mainSeconds.toFixed(3)}, of it GC pauses ${((gc1 - gc0) / windowSeconds).toFixed(3)}; ${Object.entries(
        cpuSplit.others,
      )
        .filter(([, c]) => c >= 0.0005)
        .map(([n, c]) => `${n} ${c.toFixed(3)}`)
        .join(
          ', ',
        )}); the machine's softirq time (packets, both ends of every connection) ${softirqCores.toFixed(3)}`,
    );
    const status1 = await statusPatches(kc, 'externalbackends', 'status');
    let allocatedPerProbeBytes: number | undefined;
    if (o.profileOut !== undefined) {
      // Outside the window above: the sampling profiler's cost is in no figure.
      await started.inspector.startProfile();
      await delay(20_000);
      const profile = await started.inspector.stopProfile();
      mkdirSync(o.profileOut, { recursive: true });
      const file = join(o.profileOut, `probes-${String(total)}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      o.log(`probes: CPU profile of 20 s of steady probing: ${file}`);
    }

    o.log('probes: every server dies');
    const slices0 = await statusPatches(kc, 'endpointslices', '');
    await server.stop();
    await waitHealthy((n) => n === 0, 'every address unhealthy');
    o.log('probes: every server is back');
    server = await net.serveAll(7000, 'tcp');
    await waitHealthy((n) => n === total, 'every address healthy again');
    await delay(5000);
    const status2 = await statusPatches(kc, 'externalbackends', 'status');
    const slices1 = await statusPatches(kc, 'endpointslices', '');
    const sample = sampleProcess(op.pid);
    const gc = gcFromTrace(readFileSync(logPath, 'utf8'));
    const cgroupPeakMiB = started.cgroup?.stats().peakMiB;
    const liveHeapMiB = await started.inspector.liveHeapMiB();
    if (o.profileOut !== undefined) {
      // What a probe allocates: under the chart's limit V8's young generation is small (it is
      // sized from the heap limit), so allocation is what the collector's share follows. Taken
      // last: the profiler keeps every sample, which no figure above should count.
      await started.inspector.startAllocations();
      const a0 = await op.metric('outrigger_probe_total');
      await delay(20_000);
      const allocations = await started.inspector.stopAllocations();
      const probed = (await op.metric('outrigger_probe_total')) - a0;
      const allocFile = join(o.profileOut, `probes-${String(total)}.heapprofile`);
      writeFileSync(allocFile, JSON.stringify(allocations));
      const top = topAllocators(allocations, 12);
      const sampled = totalAllocated(allocations);
      allocatedPerProbeBytes = sampled / Math.max(1, probed);
      o.log(
        `probes: sampled allocations in 20 s of steady probing (${String(probed)} probes), ${allocFile}; the largest allocators, bytes per probe:\n${top
          .map((t) => `  ${(t.bytes / Math.max(1, probed)).toFixed(0).padStart(6)}  ${t.where}`)
          .join(
            '\n',
          )}\n  (everything sampled: ${(sampled / Math.max(1, probed)).toFixed(0)} bytes per probe)`,
      );
    }
    await server.stop();
    return {
      backends: o.backends,
      addresses: total,
      intervalSeconds,
      readyMs,
      windowSeconds,
      probesPerSecond: (probes1 - probes0) / windowSeconds,
      cpuCores: (cpu1 - cpu0) / windowSeconds,
      cpuSplit,
      gcCores: (gc1 - gc0) / windowSeconds,
      softirqCores,
      ...(allocatedPerProbeBytes !== undefined && { allocatedPerProbeBytes }),
      lagP50Seconds: quantile(lag0, lag1, 0.5),
      lagP99Seconds: quantile(lag0, lag1, 0.99),
      statusWritesPerMinuteSteady: ((status1 - status0) / windowSeconds) * 60,
      outageTransitions: total * 2,
      outageStatusWrites: status2 - status1,
      outageSliceWrites: slices1 - slices0,
      rssMiB: sample.rssMiB,
      readyRequests,
      readyPacedOnly: true,
      readyFloorMs,
      peakRssMiB: sample.peakRssMiB,
      ...(cgroupPeakMiB !== undefined ? { cgroupPeakMiB } : {}),
      liveHeapIdleMiB,
      liveHeapMiB,
      gc,
    };
  } finally {
    await started?.stop();
    await net.remove();
    await cluster.stop();
  }
}
