// The prober alone, against the floor Node sets: the ExternalBackend controller's own scheduler
// (its fair pool, health state and metrics included) checks N TCP targets on loopback, under the
// chart's memory limit as in a pod, and so does the least a Node process can do for the same
// checks (a timer, `net.connect`, a reset: no pool, no state, no metrics). Each run measures both,
// one after the other, in fresh processes; the CPU of each is read over a window once every target
// has been probed. The servers run in a process of their own, so only the probing side is counted.
// It answers in two minutes what the full benchmark's health-check phase needs twenty for: how much
// of a probe's CPU is outrigger's and how much is Node's socket.
//
//   node e2e/bench/prober.ts [--targets=10000] [--interval-ms=10000] [--seconds=30] [--runs=3]
//     [--src=<other tree>/src]                 the scheduler of another checkout, for a before/after
//     [--node-args='--max-semi-space-size=16'] V8 flags for both probing processes
//     [--allocations]   also sample what a probe allocates (in a window of its own, after the CPU's)
//
// It sends packets to 127.0.0.1 only (a listener of its own on an ephemeral port).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { cpuUsage } from 'node:process';
import { parseArgs } from 'node:util';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { Session } from 'node:inspector/promises';
import { createMemoryCgroup, memoryCgroupUnavailable, quantityBytes } from '../harness/cgroup.ts';
import { topAllocators, totalAllocated, type AllocationProfile } from './inspector.ts';
import { chartMemoryLimit } from './limited.ts';
import { spread } from './results.ts';

const { values } = parseArgs({
  options: {
    targets: { type: 'string', default: '10000' },
    'interval-ms': { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '30' },
    runs: { type: 'string', default: '3' },
    src: { type: 'string' },
    'node-args': { type: 'string', default: '' },
    allocations: { type: 'boolean', default: false },
    role: { type: 'string' },
    port: { type: 'string' },
  },
});

const targets = Number(values.targets);
const intervalMs = Number(values['interval-ms']);
const seconds = Number(values.seconds);

interface Window {
  readonly probesPerSecond: number;
  readonly cores: number;
  readonly userCores: number;
  readonly systemCores: number;
  readonly microsecondsPerProbe: number;
  readonly gcCores: number;
  readonly gcPerSecond: number;
  readonly heapLimitMiB: number;
  readonly youngGenerationMiB: number;
  /** Sampled JS heap allocation per probe, garbage included, and who allocated it. */
  readonly allocatedPerProbe?: {
    readonly bytes: number;
    readonly top: readonly [string, number][];
  };
}

/** What the probes of a window allocate, sampled by V8 (collected objects included). */
async function allocations(prober: Prober): Promise<NonNullable<Window['allocatedPerProbe']>> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  const p0 = await prober.probes();
  await new Promise((r) => setTimeout(r, 10_000));
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as {
    profile: AllocationProfile;
  };
  const n = Math.max(1, (await prober.probes()) - p0);
  session.disconnect();
  return {
    bytes: totalAllocated(profile) / n,
    top: topAllocators(profile, 12).map((a) => [a.where, a.bytes / n]),
  };
}

async function serve(): Promise<void> {
  const server = createServer((s: Socket) => {
    // Every probe resets its connection; nothing is read or written.
    s.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  process.stdout.write(`${String(address.port)}\n`);
}

interface Prober {
  upsert(i: number): void;
  stop(): Promise<void>;
  probes(): Promise<number>;
}

async function outriggerProber(src: string, port: number): Promise<Prober> {
  const { backendScheduler } = (await import(
    `${src}/controllers/externalbackend/wiring.ts`
  )) as typeof import('../../src/controllers/externalbackend/wiring.ts');
  const { createMetrics } = (await import(
    `${src}/runtime/metrics.ts`
  )) as typeof import('../../src/runtime/metrics.ts');
  const metrics = createMetrics();
  const scheduler = backendScheduler(
    {
      denyList: { denies: () => undefined, nodeAddress: () => undefined },
      concurrency: 100,
      metrics,
    },
    () => undefined,
  );
  return {
    upsert(i) {
      // Ten addresses a backend, twenty namespaces, as in the full benchmark.
      const ns = `ns-${String(i % 20)}`;
      const backend = `backend-${String(Math.floor(i / 10))}`;
      scheduler.upsert({
        key: `${ns}/${backend}/127.0.0.${String(i)}`,
        tenant: [ns, backend],
        spec: { kind: 'tcp', ip: '127.0.0.1', port },
        intervalMs,
        timeoutMs: 1000,
        thresholds: { healthyThreshold: 2, unhealthyThreshold: 2 },
      });
    },
    stop: () => scheduler.stop(),
    probes: async () =>
      (await metrics.probeTotal.get()).values.reduce((sum, v) => sum + v.value, 0),
  };
}

/** The same checks with nothing but a timer, a socket and its reset. */
function bareProber(port: number): Prober {
  const timers = new Set<NodeJS.Timeout>();
  let probes = 0;
  const every = (delay: number): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.resetAndDestroy();
        probes++;
      });
      socket.once('error', () => undefined);
      every(intervalMs * (0.9 + Math.random() * 0.2));
    }, delay);
    timers.add(timer);
  };
  return {
    upsert: () => {
      every(Math.random() * intervalMs);
    },
    stop: () => {
      for (const t of timers) clearTimeout(t);
      return Promise.resolve();
    },
    probes: () => Promise.resolve(probes),
  };
}

async function probeLoop(subject: string, src: string, port: number): Promise<void> {
  let gcMs = 0;
  let gcs = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMs += e.duration;
      gcs++;
    }
  }).observe({ entryTypes: ['gc'] });
  const prober = subject === 'bare' ? bareProber(port) : await outriggerProber(src, port);
  for (let i = 0; i < targets; i++) prober.upsert(i);
  // Every target has had its first probe (and its timers and sockets their first allocation).
  await new Promise((r) => setTimeout(r, intervalMs + 2000));
  const p0 = await prober.probes();
  const [gcMs0, gcs0] = [gcMs, gcs];
  const c0 = cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const c = cpuUsage(c0);
  const wall = (performance.now() - t0) / 1000;
  const n = (await prober.probes()) - p0;
  const young = getHeapSpaceStatistics().find((sp) => sp.space_name === 'new_space');
  const w: Window = {
    probesPerSecond: n / wall,
    cores: (c.user + c.system) / 1e6 / wall,
    userCores: c.user / 1e6 / wall,
    systemCores: c.system / 1e6 / wall,
    microsecondsPerProbe: (c.user + c.system) / n,
    gcCores: (gcMs - gcMs0) / 1000 / wall,
    gcPerSecond: (gcs - gcs0) / wall,
    heapLimitMiB: getHeapStatistics().heap_size_limit / 2 ** 20,
    youngGenerationMiB: (young?.space_size ?? 0) / 2 ** 20,
    ...(values.allocations && { allocatedPerProbe: await allocations(prober) }),
  };
  process.stdout.write(`${JSON.stringify(w)}\n`);
  await prober.stop();
  process.exit(0);
}

async function firstLine(child: ChildProcess): Promise<string> {
  const out = child.stdout;
  if (out === null) throw new Error('no stdout');
  out.setEncoding('utf8');
  let buf = '';
  for await (const chunk of out as AsyncIterable<string>) {
    buf += chunk;
    const i = buf.indexOf('\n');
    if (i >= 0) return buf.slice(0, i);
  }
  throw new Error(`the child exited without a line (${buf})`);
}

const why = memoryCgroupUnavailable();
const limit = chartMemoryLimit();

async function measure(subject: 'outrigger' | 'bare', src: string, port: string): Promise<Window> {
  const cgroup =
    why === undefined
      ? createMemoryCgroup(
          `outrigger-prober-${String(process.pid)}-${subject}`,
          quantityBytes(limit),
        )
      : undefined;
  const nodeArgs = values['node-args'] === '' ? [] : values['node-args'].split(' ');
  const argv = [
    process.execPath,
    ...nodeArgs,
    new URL(import.meta.url).pathname,
    `--role=${subject}`,
    `--src=${src}`,
    `--port=${port}`,
    `--targets=${String(targets)}`,
    `--interval-ms=${String(intervalMs)}`,
    `--seconds=${String(seconds)}`,
    ...(values.allocations ? ['--allocations'] : []),
  ];
  const full = cgroup?.wrap(argv) ?? argv;
  const child = spawn(full[0] ?? '', full.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    return JSON.parse(await firstLine(child)) as Window;
  } finally {
    if (child.exitCode === null) await once(child, 'exit');
    cgroup?.remove();
  }
}

const show = (w: Window): string =>
  (w.allocatedPerProbe === undefined
    ? ''
    : `${(w.allocatedPerProbe.bytes / 1024).toFixed(1)} KiB allocated a probe, of it:\n${w.allocatedPerProbe.top.map(([where, b]) => `      ${(b / 1024).toFixed(2)} KiB  ${where}`).join('\n')}\n    `) +
  `${w.cores.toFixed(3)} cores (user ${w.userCores.toFixed(3)}, system ${w.systemCores.toFixed(3)}), ` +
  `${w.microsecondsPerProbe.toFixed(1)} µs a probe at ${w.probesPerSecond.toFixed(0)}/s, ` +
  `GC ${w.gcCores.toFixed(3)} cores in ${w.gcPerSecond.toFixed(1)} pauses/s`;

async function main(): Promise<void> {
  if (values.role === 'server') return serve();
  if (values.role === 'outrigger' || values.role === 'bare')
    return probeLoop(values.role, values.src ?? '', Number(values.port));
  const src = values.src ?? new URL('../../src', import.meta.url).pathname;
  const server = spawn(process.execPath, [new URL(import.meta.url).pathname, '--role=server'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await firstLine(server);
  const ours: Window[] = [];
  const bare: Window[] = [];
  try {
    for (let run = 1; run <= Number(values.runs); run++) {
      const o = await measure('outrigger', src, port);
      const b = await measure('bare', src, port);
      ours.push(o);
      bare.push(b);
      process.stdout.write(
        `run ${String(run)}\n  outrigger's scheduler: ${show(o)}\n  bare Node loop:        ${show(b)}\n`,
      );
    }
  } finally {
    server.kill();
  }
  const first = ours[0];
  const where =
    first === undefined
      ? ''
      : why === undefined
        ? `under ${limit} (V8 heap limit ${first.heapLimitMiB.toFixed(0)} MiB, young generation ${first.youngGenerationMiB.toFixed(1)} MiB)`
        : `without a memory limit (${why})`;
  const line = (name: string, xs: readonly number[], unit: string, digits: number): string => {
    const s = spread(xs);
    if (s === undefined) return `  ${name}: —\n`;
    return `  ${name.padEnd(22)} ${s.median.toFixed(digits)}${unit} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})\n`;
  };
  process.stdout.write(
    `\n${String(targets)} TCP checks every ${String(intervalMs / 1000)} s on loopback, ${where}; medians of ${String(ours.length)} runs (range):\n` +
      line(
        "outrigger's scheduler",
        ours.map((w) => w.cores),
        ' cores',
        3,
      ) +
      line(
        'bare Node loop',
        bare.map((w) => w.cores),
        ' cores',
        3,
      ) +
      line(
        'ratio',
        ours.map((o, i) => o.cores / (bare[i]?.cores ?? NaN)),
        '×',
        2,
      ),
  );
}

await main();
