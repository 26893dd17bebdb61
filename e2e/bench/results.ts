// The benchmark's figures as a table with ratios and goals (printed, and put on the results page),
// and its charts. Pure: result objects in, text out.
import type { BenchResult, ControllerFigures, Latency } from './bench.ts';
import { svgChart, type Series } from '../soak/plot.ts';

const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits);

function ratio(o: number | undefined, u: number | undefined): string {
  if (o === undefined || u === undefined || Number.isNaN(o) || Number.isNaN(u)) return '—';
  if (u === 0) return o === 0 ? '—' : '∞';
  return `${(o / u).toFixed(2)}×`;
}

function verbs(r: Record<string, number>): string {
  const writes = Object.entries(r).filter(([v]) => !['LIST', 'WATCH', 'GET'].includes(v));
  return writes.length === 0 ? '0' : writes.map(([v, n]) => `${v} ${String(n)}`).join(', ');
}

function latencyAt(f: ControllerFigures | undefined, rate: number): Latency | undefined {
  return f?.churn.find((l) => l.rate === rate);
}

/** Markdown table rows: | what | upstream | outrigger | ratio | goal |. */
export function tableRows(r: BenchResult): string[][] {
  const u = r.upstream;
  const o = r.outrigger;
  const rows: string[][] = [];
  const row = (
    what: string,
    uv: number | undefined,
    ov: number | undefined,
    unit: string,
    goal = '',
    digits = 0,
  ): void => {
    rows.push([
      what,
      `${fmt(uv, digits)} ${unit}`.trim(),
      `${fmt(ov, digits)} ${unit}`.trim(),
      ratio(ov, uv),
      goal,
    ]);
  };
  row(
    'cold convergence, QPS 20 / burst 30 (both defaults)',
    u?.convergeMs,
    o?.convergeMs,
    'ms',
    '≤ 1.0×',
  );
  row('cold convergence, limiter off', u?.convergeUnlimitedMs, o?.convergeUnlimitedMs, 'ms');
  rows.push([
    'cold convergence, limiter off, against the raw-write floor',
    `${fmt(r.rawFloorMs)} ms (floor)`,
    ratio(o?.convergeUnlimitedMs, r.rawFloorMs),
    '',
    '≤ 1.2× the floor',
  ]);
  rows.push([
    'Endpoints requests to converge (by verb)',
    verbs(u?.convergeWrites ?? {}),
    verbs(o?.convergeWrites ?? {}),
    '',
    '',
  ]);
  row(
    'Endpoints writes in 5 s of quiet after converging',
    u?.idleWrites,
    o?.idleWrites,
    '',
    'no-op writes 0',
  );
  rows.push([
    'Endpoints requests during the churn (by verb)',
    verbs(u?.churnWrites ?? {}),
    verbs(o?.churnWrites ?? {}),
    '',
    '',
  ]);
  for (const l of u?.churn ?? o?.churn ?? []) {
    const ul = latencyAt(u, l.rate);
    const ol = latencyAt(o, l.rate);
    row(`Ready→Endpoints at ${String(l.rate)} flips/s, p50 (client watch)`, ul?.p50, ol?.p50, 'ms');
    row(
      `Ready→Endpoints at ${String(l.rate)} flips/s, p99 (client watch)`,
      ul?.p99,
      ol?.p99,
      'ms',
      '≤ upstream',
    );
    row(`Ready→Endpoints at ${String(l.rate)} flips/s, max`, ul?.max, ol?.max, 'ms');
    row(`  from the trigger-time annotation, p99`, ul?.triggerP99, ol?.triggerP99, 'ms');
    row(`  CPU per 1000 flips`, ul?.cpuPer1000, ol?.cpuPer1000, 's', '', 2);
  }
  row(
    'Ready→Endpoints at 50 flips/s, limiter off, p50',
    u?.churnUnlimited?.p50,
    o?.churnUnlimited?.p50,
    'ms',
  );
  row(
    'Ready→Endpoints at 50 flips/s, limiter off, p99',
    u?.churnUnlimited?.p99,
    o?.churnUnlimited?.p99,
    'ms',
    '< 100 ms at 10k',
  );
  row('peak RSS', u?.peakRssMiB, o?.peakRssMiB, 'MiB', '≤ 1.2×', 1);
  row('steady RSS after the churn', u?.steadyRssMiB, o?.steadyRssMiB, 'MiB', '', 1);
  row('JS heap used after the churn', undefined, o?.heapMiB, 'MiB', '', 1);
  // Runs before the scrape order was fixed read the histogram just after its reset: 0.
  if ((o?.eventLoopP99Ms ?? 0) > 0)
    row(
      'event-loop delay, max over the last scrape interval',
      undefined,
      o?.eventLoopP99Ms,
      'ms',
      '',
      1,
    );
  if (r.defaultModeRssMiB !== undefined) {
    const d = r.defaultModeRssMiB;
    rows.push([
      `outrigger default flags (one ExternalBackend), RSS at 0 → ${String(r.pods)} pods`,
      '',
      `${fmt(d.zero, 1)} → ${fmt(d.loaded, 1)} MiB`,
      ratio(d.loaded, d.zero),
      '≤ 1.1× of 0 pods',
    ]);
  }
  return rows;
}

export function probeRows(r: BenchResult): string[][] {
  const p = r.probes;
  if (p === undefined) return [];
  return [
    [
      'addresses probed (backends × addresses, every 10 s)',
      `${String(p.addresses)} (${String(p.backends)} × ${String(p.addresses / p.backends)})`,
      '',
    ],
    ['probes per second', fmt(p.probesPerSecond, 0), ''],
    ['CPU used by outrigger', `${fmt(p.cpuCores, 3)} cores`, '< 0.5 core'],
    [
      'probe schedule lag p50 / p99 (histogram bucket)',
      `≤ ${fmt(p.lagP50Seconds * 1000)} ms / ≤ ${fmt(p.lagP99Seconds * 1000)} ms`,
      'p99 < 1 s',
    ],
    ['status writes per minute, all healthy', fmt(p.statusWritesPerMinuteSteady, 1), '0'],
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
    ['time until every address was healthy after creation', `${fmt(p.readyMs / 1000, 1)} s`, ''],
    ['outrigger RSS', `${fmt(p.rssMiB, 1)} MiB`, ''],
  ];
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
    `${r.machine}; loaded in ${fmt(r.loadMs / 1000, 1)} s; ${r.date}; commit ${r.commit ?? 'not recorded'}`,
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
