// The benchmark's figures as a table with ratios and goals (printed, and put on the results page),
// and its charts. Pure: result objects in, text out.
import type { BenchResult, BenchRun, ControllerFigures, Latency } from './bench.ts';
import { svgChart, type Series } from '../soak/plot.ts';

const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits);

/** Every run of a result: results from before --runs hold one, at the top level. */
export const runsOf = (r: BenchResult): readonly BenchRun[] => r.runs ?? [r];

interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

/** The median (the lower middle of an even count) and range of the finite values. */
export function spread(values: readonly (number | undefined)[]): Spread | undefined {
  const v = values
    .filter((x): x is number => x !== undefined && Number.isFinite(x))
    .sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  return {
    median: v[Math.floor((v.length - 1) / 2)] ?? NaN,
    min: v[0] ?? NaN,
    max: v.at(-1) ?? NaN,
    n: v.length,
  };
}

/** "12.3 ms (11.0–14.1)": the median, and the range when there was more than one run. */
function show(s: Spread | undefined, unit: string, digits: number, suffix = ''): string {
  if (s === undefined) return '—';
  const u = unit === '' ? '' : ` ${unit}`;
  const main = `${s.median.toFixed(digits)}${suffix}${u}`;
  return s.n > 1 && s.max > s.min
    ? `${main} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`
    : main;
}

function ratioOf(o: number | undefined, u: number | undefined): number | undefined {
  if (o === undefined || u === undefined || !Number.isFinite(o) || !Number.isFinite(u) || u === 0)
    return undefined;
  return o / u;
}

/** A goal on the median: its text, and whether the median meets it. */
interface Goal {
  readonly text: string;
  readonly met: (median: number) => boolean;
  /** Judged on outrigger's figure even where there is a ratio. */
  readonly onFigure?: boolean;
}
const atMost = (limit: number, text: string): Goal => ({ text, met: (m) => m <= limit });

function judged(goal: Goal | undefined, s: Spread | undefined): string {
  if (goal === undefined) return '';
  if (s === undefined) return goal.text;
  return `${goal.text}: ${goal.met(s.median) ? 'met' : 'missed'}`;
}

function verbs(r: Record<string, number> | undefined): string {
  if (r === undefined) return '—';
  const writes = Object.entries(r).filter(([v]) => !['LIST', 'WATCH', 'GET'].includes(v));
  return writes.length === 0 ? '0' : writes.map(([v, n]) => `${v} ${String(n)}`).join(', ');
}

function latencyAt(f: ControllerFigures | undefined, rate: number): Latency | undefined {
  return f?.churn.find((l) => l.rate === rate);
}

type Pick = (f: ControllerFigures | undefined, run: BenchRun) => number | undefined;

/** Markdown table rows: | what | upstream | outrigger | ratio | goal |, medians over the runs. */
export function tableRows(r: BenchResult): string[][] {
  const runs = runsOf(r);
  const rows: string[][] = [];
  const row = (
    what: string,
    pick: Pick,
    unit: string,
    goal?: Goal,
    digits = 0,
    upstreamToo = true,
  ): void => {
    const u = spread(runs.map((x) => (upstreamToo ? pick(x.upstream, x) : undefined)));
    const o = spread(runs.map((x) => pick(x.outrigger, x)));
    const q = spread(runs.map((x) => ratioOf(pick(x.outrigger, x), pick(x.upstream, x))));
    rows.push([
      what,
      upstreamToo ? show(u, unit, digits) : '',
      show(o, unit, digits),
      upstreamToo ? show(q, '', 2, '×') : '',
      // A ratio goal is judged on the ratio; a figure of outrigger's alone, on the figure.
      judged(goal, upstreamToo && goal?.onFigure !== true ? q : o),
    ]);
  };
  row(
    'cold convergence, QPS 20 / burst 30 (both defaults)',
    (f) => f?.convergeMs,
    'ms',
    atMost(1.0, '≤ 1.0×'),
  );
  row('cold convergence, limiter off', (f) => f?.convergeUnlimitedMs, 'ms');
  if (runs.some((x) => x.outrigger?.convergeUnlimitedPhases !== undefined)) {
    const phase = (k: 'startMs' | 'listMs' | 'writeMs'): string =>
      show(spread(runs.map((x) => x.outrigger?.convergeUnlimitedPhases?.[k])), 'ms', 0);
    rows.push([
      '  of it: Node starting, the lists until the caches synced, the writes (outrigger’s log)',
      '',
      `${phase('startMs')}; ${phase('listMs')}; ${phase('writeMs')}`,
      '',
      '',
    ]);
  }
  const floor = spread(runs.map((x) => x.rawFloorMs));
  const toFloor = spread(runs.map((x) => ratioOf(x.outrigger?.convergeUnlimitedMs, x.rawFloorMs)));
  rows.push([
    'cold convergence, limiter off, against the raw-write floor',
    `${show(floor, 'ms', 0)} (floor)`,
    show(toFloor, '', 2, '×'),
    '',
    judged(atMost(1.2, '≤ 1.2× the floor'), toFloor),
  ]);
  rows.push([
    'Endpoints requests to converge (by verb, first run)',
    verbs(r.upstream?.convergeWrites),
    verbs(r.outrigger?.convergeWrites),
    '',
    '',
  ]);
  row('Endpoints writes in 5 s of quiet after converging', (f) => f?.idleWrites, '', {
    ...atMost(0, 'no-op writes 0'),
    onFigure: true,
  });
  rows.push([
    'Endpoints requests during the churn (by verb, first run)',
    verbs(r.upstream?.churnWrites),
    verbs(r.outrigger?.churnWrites),
    '',
    '',
  ]);
  for (const l of r.upstream?.churn ?? r.outrigger?.churn ?? []) {
    const at = (f: ControllerFigures | undefined): Latency | undefined => latencyAt(f, l.rate);
    const main = l.rate === 20;
    row(
      `Ready→Endpoints at ${String(l.rate)} flips/s, p50 (client watch)`,
      (f) => at(f)?.p50,
      'ms',
    );
    row(
      `Ready→Endpoints at ${String(l.rate)} flips/s, p99 (client watch)`,
      (f) => at(f)?.p99,
      'ms',
      main ? atMost(1.0, '≤ upstream') : undefined,
    );
    row(`Ready→Endpoints at ${String(l.rate)} flips/s, max`, (f) => at(f)?.max, 'ms');
    row(`  from the trigger-time annotation, p99`, (f) => at(f)?.triggerP99, 'ms');
    row(
      `  CPU per 1000 flips`,
      (f) => at(f)?.cpuPer1000,
      's',
      main ? atMost(1.2, '≤ 1.2×') : undefined,
      2,
    );
  }
  row('Ready→Endpoints at 50 flips/s, limiter off, p50', (f) => f?.churnUnlimited?.p50, 'ms');
  row(
    'Ready→Endpoints at 50 flips/s, limiter off, p99',
    (f) => f?.churnUnlimited?.p99,
    'ms',
    undefined,
  );
  const rssGoal = r.pods >= 50_000 ? 1.0 : 1.5;
  row(
    'peak RSS',
    (f) => f?.peakRssMiB,
    'MiB',
    atMost(rssGoal, `≤ ${rssGoal.toFixed(1)}× under the chart's limit`),
    1,
  );
  row('steady RSS after the churn', (f) => f?.steadyRssMiB, 'MiB', undefined, 1);
  const limit = r.outrigger?.underLimit;
  if (limit !== undefined) {
    const only =
      (p: (l: NonNullable<ControllerFigures['underLimit']>) => number): Pick =>
      (f) =>
        f?.underLimit !== undefined ? p(f.underLimit) : undefined;
    rows.push([
      `outrigger's memory limit (the chart's), as Node saw it`,
      '',
      `${limit.limit} (${fmt(limit.constrainedMiB)} MiB)`,
      '',
      '',
    ]);
    row(
      '  peak cgroup usage',
      only((l) => l.cgroupPeakMiB),
      'MiB',
      undefined,
      1,
      false,
    );
    row(
      '  times the limit was hit / OOM kills',
      only((l) => l.failcnt + l.oomKills),
      '',
      atMost(0, '0'),
      0,
      false,
    );
    row(
      '  JS heap after a full GC, after the churn',
      only((l) => l.liveHeapMiB),
      'MiB',
      undefined,
      1,
      false,
    );
    row(
      '  GC pause p99 (--trace-gc)',
      only((l) => l.gc.p99Ms),
      'ms',
      undefined,
      1,
      false,
    );
    row(
      '  GC pause max',
      only((l) => l.gc.maxMs),
      'ms',
      undefined,
      1,
      false,
    );
    row(
      '  GC time, cold start to the end of the churns',
      only((l) => l.gc.totalMs / 1000),
      's',
      undefined,
      1,
      false,
    );
  }
  row('JS heap used after the churn', (f) => f?.heapMiB, 'MiB', undefined, 1, false);
  // Runs before the scrape order was fixed read the histogram just after its reset: 0.
  if ((r.outrigger?.eventLoopP99Ms ?? 0) > 0)
    row(
      'event-loop delay, max over the last scrape interval',
      (f) => f?.eventLoopP99Ms,
      'ms',
      undefined,
      1,
      false,
    );
  if (r.defaultModeRssMiB !== undefined) {
    const zero = spread(runs.map((x) => x.defaultModeRssMiB?.zero));
    const loaded = spread(runs.map((x) => x.defaultModeRssMiB?.loaded));
    const q = spread(
      runs.map((x) => ratioOf(x.defaultModeRssMiB?.loaded, x.defaultModeRssMiB?.zero)),
    );
    rows.push([
      `outrigger default flags (one ExternalBackend), RSS at 0 → ${String(r.pods)} pods`,
      '',
      `${show(zero, 'MiB', 1)} → ${show(loaded, 'MiB', 1)}`,
      show(q, '', 2, '×'),
      judged(atMost(1.1, '≤ 1.1× of 0 pods'), q),
    ]);
  }
  return rows;
}

export function probeRows(r: BenchResult): string[][] {
  const runs = runsOf(r).filter((x) => x.probes !== undefined);
  const p = runs[0]?.probes;
  if (p === undefined) return [];
  const of = (f: (q: NonNullable<BenchRun['probes']>) => number | undefined): Spread | undefined =>
    spread(runs.map((x) => (x.probes !== undefined ? f(x.probes) : undefined)));
  const rss = of((q) => q.peakRssMiB ?? q.rssMiB);
  const cores = of((q) => q.cpuCores);
  const live = of((q) => q.liveHeapMiB);
  const idle = of((q) => q.liveHeapIdleMiB);
  const perAddress = of((q) =>
    q.liveHeapMiB !== undefined && q.liveHeapIdleMiB !== undefined
      ? ((q.liveHeapMiB - q.liveHeapIdleMiB) * 1024) / q.addresses
      : undefined,
  );
  const rows: string[][] = [
    [
      'addresses probed (backends × addresses, every 10 s)',
      `${String(p.addresses)} (${String(p.backends)} × ${String(p.addresses / p.backends)})`,
      '',
    ],
    [
      'probes per second',
      show(
        of((q) => q.probesPerSecond),
        '',
        0,
      ),
      '',
    ],
    ['CPU used by outrigger', show(cores, 'cores', 3), judged(atMost(0.15, '≤ 0.15 cores'), cores)],
  ];
  if (p.cpuSplit !== undefined) {
    const helpers = of((q) =>
      q.cpuSplit === undefined
        ? undefined
        : Object.values(q.cpuSplit.others).reduce((a, b) => a + b, 0),
    );
    const cores = (f: (q: NonNullable<BenchRun['probes']>) => number | undefined): string =>
      show(of(f), 'cores', 3);
    rows.push(
      [
        '  user / system time',
        `${cores((q) => q.cpuSplit?.userSeconds)} / ${cores((q) => q.cpuSplit?.systemSeconds)}`,
        '',
      ],
      [
        '  JavaScript thread (of it, GC pauses) / other threads (V8 helpers, libuv)',
        `${cores((q) => q.cpuSplit?.mainSeconds)} (${cores((q) => q.gcCores)}) / ${show(helpers, 'cores', 3)}`,
        '',
      ],
    );
  }
  const softirq = of((q) => q.softirqCores);
  if (softirq !== undefined)
    rows.push([
      "  the machine's softirq time (packets of both ends; charged to whichever task it interrupts)",
      show(softirq, 'cores', 3),
      '',
    ]);
  const allocated = of((q) =>
    q.allocatedPerProbeBytes !== undefined ? q.allocatedPerProbeBytes / 1024 : undefined,
  );
  if (allocated !== undefined)
    rows.push([
      '  JS heap allocated per probe (sampled, garbage included)',
      show(allocated, 'KiB', 1),
      '',
    ]);
  rows.push(
    [
      'probe schedule lag p50 / p99 (histogram bucket)',
      `≤ ${fmt(p.lagP50Seconds * 1000)} ms / ≤ ${fmt(p.lagP99Seconds * 1000)} ms`,
      'p99 < 1 s',
    ],
    [
      'status writes per minute, all healthy',
      show(
        of((q) => q.statusWritesPerMinuteSteady),
        '',
        1,
      ),
      '0',
    ],
    ['every server dies and returns: address transitions', String(p.outageTransitions), ''],
    [
      '  status writes for them',
      `${String(p.outageStatusWrites)} (${fmt(p.outageStatusWrites / p.outageTransitions, 2)} per transition)`,
      '',
    ],
    [
      '  EndpointSlice writes for them',
      `${String(p.outageSliceWrites)} (${fmt(p.outageSliceWrites / p.outageTransitions, 2)} per transition)`,
      '',
    ],
    [
      'time until every address was healthy after creation',
      show(
        of((q) => q.readyMs / 1000),
        's',
        1,
      ),
      '',
    ],
  );
  if (p.readyFloorMs !== undefined)
    rows.push([
      p.readyPacedOnly === true
        ? "  the client-side limiter's floor for the writes it paced (QPS 20, burst 30)"
        : "  the limiter's time for every request made meanwhile (QPS 20, burst 30; more than its floor: reads and Events are not paced by it)",
      `${show(
        of((q) => (q.readyFloorMs ?? NaN) / 1000),
        's',
        1,
      )} for ${show(
        of((q) => q.readyRequests),
        p.readyPacedOnly === true ? 'writes' : 'requests',
        0,
      )}`,
      '',
    ]);
  rows.push([
    p.peakRssMiB !== undefined ? 'outrigger peak RSS' : 'outrigger RSS',
    show(rss, 'MiB', 1),
    judged(atMost(250, '≤ 250 MiB'), rss),
  ]);
  if (p.cgroupPeakMiB !== undefined)
    rows.push([
      '  peak cgroup usage',
      show(
        of((q) => q.cgroupPeakMiB),
        'MiB',
        1,
      ),
      '',
    ]);
  if (live !== undefined)
    rows.push(
      [
        'JS heap after a full GC: no backend → every address healthy',
        `${show(idle, 'MiB', 1)} → ${show(live, 'MiB', 1)}`,
        '',
      ],
      ['  per checked address (backend and its objects included)', show(perAddress, 'KiB', 2), ''],
    );
  if (p.gc !== undefined)
    rows.push([
      'GC pause p99 / max (--trace-gc)',
      `${show(
        of((q) => q.gc?.p99Ms),
        'ms',
        1,
      )} / ${show(
        of((q) => q.gc?.maxMs),
        'ms',
        1,
      )}`,
      '',
    ]);
  return rows;
}

export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The whole printed report. */
export function renderResults(r: BenchResult): string {
  const parts = [
    `## ${String(r.pods)} pods, ${String(r.services)} Services`,
    '',
    `${r.machine}; loaded in ${fmt(r.loadMs / 1000, 1)} s; ${r.date}; commit ${r.commit ?? 'not recorded'}${r.main !== undefined ? `; outrigger from ${r.main}` : ''}${r.nodeArgs !== undefined ? `; node ${r.nodeArgs.join(' ')}` : ''}; ${runsOf(r).length > 1 ? `the median of ${String(runsOf(r).length)} runs, their range in brackets` : 'one run'}`,
    '',
    markdownTable(['', 'kube-controller-manager', 'outrigger', 'ratio', 'goal'], tableRows(r)),
  ];
  const p = probeRows(r);
  if (p.length > 0)
    parts.push('', markdownTable(['health checks at scale', 'outrigger', 'goal'], p));
  return parts.join('\n');
}

/** RSS against pod count, from several runs (one per size). */
export function rssChart(runs: readonly BenchResult[]): string {
  const sorted = [...runs].sort((a, b) => a.pods - b.pods);
  const pts = (f: (r: BenchResult) => number | undefined): [number, number][] =>
    sorted.flatMap((r) => {
      const v = f(r);
      return v === undefined || Number.isNaN(v) ? [] : [[r.pods / 1000, v] as [number, number]];
    });
  const series: Series[] = [
    {
      name: 'upstream',
      color: '#1f77b4',
      points: pts((r) => r.upstream?.peakRssMiB),
    },
    {
      name: 'outrigger selector',
      color: '#d62728',
      points: pts((r) => r.outrigger?.peakRssMiB),
    },
    {
      name: 'outrigger default',
      color: '#2ca02c',
      dashed: true,
      points: [
        ...(sorted[0]?.defaultModeRssMiB
          ? [[0, sorted[0].defaultModeRssMiB.zero] as [number, number]]
          : []),
        ...pts((r) => r.defaultModeRssMiB?.loaded),
      ],
    },
  ];
  const xMax = Math.max(...sorted.map((r) => r.pods / 1000), 1);
  return svgChart(
    [{ title: 'Peak RSS against pods in the cluster', yLabel: 'MiB', series }],
    xMax,
    'thousands of pods',
  );
}

/** Ready→Endpoints p50 and p99 against churn rate, for the largest run. */
export function latencyChart(r: BenchResult): string {
  const pts = (f: ControllerFigures | undefined, k: 'p50' | 'p99'): [number, number][] =>
    (f?.churn ?? []).map((l) => [l.rate, l[k]] as [number, number]);
  const series: Series[] = [
    { name: 'upstream p99', color: '#1f77b4', points: pts(r.upstream, 'p99') },
    { name: 'upstream p50', color: '#1f77b4', dashed: true, points: pts(r.upstream, 'p50') },
    { name: 'outrigger p99', color: '#d62728', points: pts(r.outrigger, 'p99') },
    { name: 'outrigger p50', color: '#d62728', dashed: true, points: pts(r.outrigger, 'p50') },
  ];
  const xMax = Math.max(...(r.outrigger?.churn ?? r.upstream?.churn ?? []).map((l) => l.rate), 1);
  return svgChart(
    [
      {
        title: `Ready→Endpoints latency against churn (${String(r.pods)} pods, QPS 20)`,
        yLabel: 'ms',
        series,
      },
    ],
    xMax,
    'readiness flips per second',
  );
}
