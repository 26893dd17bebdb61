// The soak run's results page: soak.json (every figure), soak.svg and soak.png (the chart) and
// soak.md (the page that shows them), all from one SoakResult so that they cannot disagree.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Minute, Verdict } from './analysis.ts';
import { svgChart } from './plot.ts';

export interface SoakResult {
  readonly minutes: number;
  readonly warmup: number;
  readonly rate: number;
  readonly scale: Record<string, number>;
  readonly verdict: Verdict;
  readonly churn: { ops: number; failed: number; byKind: Record<string, number> };
  readonly endConvergedMs: number;
  readonly lost: readonly string[];
  readonly unhandledErrors: number;
  readonly setUpMs: number;
  readonly machine: string;
  readonly date: string;
  /** The commit measured; absent in results from before it was recorded. */
  readonly commit?: string;
  /** What else ran on the machine meanwhile. */
  readonly note?: string;
  readonly perMinute: readonly Minute[];
}

function chart(r: SoakResult): string {
  const at = (f: (m: Minute) => number) => r.perMinute.map((m) => [m.minute + 1, f(m)] as const);
  return svgChart(
    [
      {
        title: 'outrigger memory under churn',
        yLabel: 'MiB',
        marker: { x: r.warmup, label: 'end of warm-up' },
        series: [
          { name: 'RSS', color: '#d62728', points: at((m) => m.rssMiB) },
          { name: 'heap (max)', color: '#ff7f0e', points: at((m) => m.heapMaxMiB), dashed: true },
          { name: 'heap (floor)', color: '#1f77b4', points: at((m) => m.heapFloorMiB) },
        ],
      },
      {
        title: 'largest event-loop delay per minute',
        yLabel: 'ms',
        series: [{ name: 'max delay', color: '#2ca02c', points: at((m) => m.lagMaxMs) }],
      },
    ],
    Math.max(1, r.perMinute.length),
    'minutes',
  );
}

function page(r: SoakResult): string {
  const v = r.verdict;
  const kinds = Object.entries(r.churn.byKind)
    .map(([k, n]) => `${k} ${String(n)}`)
    .join(', ');
  const rows = r.perMinute.map(
    (m) =>
      `| ${String(m.minute)} | ${m.heapFloorMiB.toFixed(1)} | ${m.heapMaxMiB.toFixed(1)} | ${m.rssMiB.toFixed(1)} | ${m.lagMaxMs.toFixed(0)} | ${m.cpuPercent.toFixed(1)} |`,
  );
  return `# Soak run: ${String(r.minutes)} minutes of churn

Produced by \`npm run soak -- --minutes=${String(r.minutes)} --out=docs/results\` on ${r.date}
(${r.machine}; commit ${r.commit ?? 'not recorded'}).${r.note ? ` ${r.note}` : ''} Re-render this page from \`soak.json\` with \`npm run soak -- --from=docs/results/soak.json --out=docs/results\`.

**Verdict: ${v.growing ? 'FAIL — the heap keeps growing' : 'PASS'}.** After a ${String(r.warmup)}-minute
warm-up the heap floor (the lowest heap seen each minute, close to what survives garbage collection)
moves **${v.heapSlopeMiBPerHour.toFixed(2)} MiB per hour** around a baseline of
${v.baselineHeapMiB.toFixed(1)} MiB; the run fails above ${v.limitMiBPerHour.toFixed(1)} MiB per hour
(10% of the baseline, at least 8 MiB). RSS moves ${v.rssSlopeMiBPerHour.toFixed(2)} MiB per hour.
The largest event-loop stall was **${v.largestStallMs.toFixed(0)} ms** (minute
${String(v.largestStallMinute)}).

![heap, RSS and event-loop delay per minute](soak.png)

## What ran

- One outrigger process with \`--selector-mode=all\`, on a local kube-apiserver and etcd.
- ${Object.entries(r.scale)
    .map(([k, n]) => `${k}: ${String(n)}`)
    .join(', ')}; every ExternalBackend health-checked over TCP every second against a backend farm
  in a network namespace.
- Churn at ${String(r.rate)} changes per second: ${String(r.churn.ops)} changes (${kinds});
  ${String(r.churn.failed)} were refused by the API server (409s of the churn's own races).
- outrigger's own \`/metrics\` scraped every 5 s: \`nodejs_heap_size_used_bytes\`,
  \`process_resident_memory_bytes\`, \`nodejs_eventloop_lag_max_seconds\` (reset at every scrape),
  \`process_cpu_seconds_total\`.
- At the end, churn stopped and every Endpoints, EndpointSlice and ExternalBackend status was
  compared with the state computed from scratch: ${r.lost.length === 0 ? `all equal ${String(r.endConvergedMs)} ms after churn stopped` : `${String(r.lost.length)} objects wrong`}.
  Unhandled errors counted by outrigger: ${String(r.unhandledErrors)}.

## Per minute

| minute | heap floor MiB | heap max MiB | RSS MiB | max event-loop delay ms | CPU % of a core |
| -----: | -------------: | -----------: | ------: | ----------------------: | --------------: |
${rows.join('\n')}
`;
}

/** Writes soak.json, soak.svg, soak.png (when rsvg-convert is installed) and soak.md to `out`. */
export function writeReport(out: string, r: SoakResult): string[] {
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'soak.json'), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(join(out, 'soak.svg'), chart(r));
  // PNG for viewers that show no SVG: rsvg-convert from librsvg2-bin, when present.
  const png = spawnSync('rsvg-convert', ['-o', join(out, 'soak.png'), join(out, 'soak.svg')]);
  writeFileSync(join(out, 'soak.md'), page(r));
  return ['soak.json', 'soak.svg', ...(png.status === 0 ? ['soak.png'] : []), 'soak.md'];
}
