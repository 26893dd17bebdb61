// `node e2e/bench/memory-page.ts` (the second half of `npm run bench:memory`): puts the figures of
// docs/results/memory.json into docs/memory.md between its `<!-- memory:results -->` markers (the
// prose around them is written by hand) and draws docs/memory.svg (and .png with rsvg-convert).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { svgChart, type Panel } from '../soak/plot.ts';
import type { MemoryResult, Run } from './memory.ts';
import { writeFormatted } from '../harness/markdown.ts';

const docs = fileURLToPath(new URL('../../docs/', import.meta.url));

const f = (n: number | undefined, digits = 0): string =>
  n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits);

function runTitle(r: Run): string {
  return `${r.scenario === 'selector' ? 'selector mode' : 'default flags'}, limit ${r.limit}${r.nodeOptions ? ` + ${r.nodeOptions}` : ''}`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, header.map(() => '---'), ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r, j) =>
      j === 1
        ? `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`
        : `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`,
    )
    .join('\n');
}

export function renderMemory(m: MemoryResult): string {
  const out: string[] = [];
  out.push(
    `${m.machine}; ${m.date}; commit ${m.commit ?? 'not recorded'}. The chart's memory limit: ${m.chartLimit}.`,
    '',
    '### The V8 heap limit Node picks under a container memory limit',
    '',
    table(
      [
        'container memory limit',
        'NODE_OPTIONS',
        'Node reads (process.constrainedMemory())',
        'V8 heap_size_limit',
      ],
      m.heapLimits.map((h) => [
        h.limit,
        h.nodeOptions || '—',
        h.constrainedMiB === undefined ? 'no limit' : `${f(h.constrainedMiB)} MiB`,
        `${f(h.heapSizeLimitMiB)} MiB`,
      ]),
    ),
    '',
    '### Runs',
    '',
  );
  const rows: [string, (r: Run) => string][] = [
    ['workload', (r) => r.what],
    ['outcome', (r) => r.outcome],
    ['cgroup memory.limit_in_bytes', (r) => `${f(r.cgroupLimitMiB)} MiB`],
    [
      'V8 heap limit (part 1)',
      (r) => (r.heapSizeLimitMiB === undefined ? '—' : `${f(r.heapSizeLimitMiB)} MiB`),
    ],
    [
      'ready after (every Endpoints right / every address healthy)',
      (r) => (r.readyAfterSeconds === undefined ? 'never' : `${f(r.readyAfterSeconds)} s`),
    ],
    ['peak cgroup usage (memory.max_usage_in_bytes)', (r) => `${f(r.peakCgroupMiB)} MiB`],
    ['peak RSS (VmHWM)', (r) => `${f(r.peakRssMiB)} MiB`],
    ['RSS at the end', (r) => `${f(r.endRssMiB)} MiB`],
    ['JS heap used, peak (nodejs_heap_size_used_bytes)', (r) => `${f(r.peakHeapUsedMiB)} MiB`],
    ['JS heap used at the end', (r) => `${f(r.endHeapUsedMiB)} MiB`],
    ['JS heap total, peak (nodejs_heap_size_total_bytes)', (r) => `${f(r.peakHeapTotalMiB)} MiB`],
    [
      'GC pauses (--trace-gc)',
      (r) => `${String(r.gc.count)}, ${f(r.gc.totalMs / 1000, 1)} s in all`,
    ],
    ['longest GC pause', (r) => `${f(r.gc.maxMs, 1)} ms (${r.gc.maxKind})`],
    [
      'major GCs (mark-compact), longest',
      (r) => `${String(r.gc.majorCount)}, ${f(r.gc.majorMaxMs, 1)} ms`,
    ],
    ['GC pauses ≥ 100 ms', (r) => String(r.gc.over100ms)],
    ['nodejs_gc_duration_seconds_sum (all kinds)', (r) => `${f(r.gc.promTotalSeconds, 2)} s`],
    ['seconds sampled', (r) => f(r.samples.at(-1)?.t)],
    ['memory.failcnt (hits of the limit)', (r) => String(r.failcnt)],
    ['OOM kills (memory.oom_control)', (r) => String(r.oomKills)],
    [
      'liveness failures / restarts a kubelet would make',
      (r) => `${String(r.livenessFailures)} / ${String(r.wouldRestart)}`,
    ],
    ['slowest /healthz answer', (r) => `${f(r.healthzMaxMs)} ms`],
  ];
  out.push(
    table(
      ['', ...m.runs.map(runTitle)],
      rows.map(([name, get]) => [name, ...m.runs.map(get)]),
    ),
  );
  for (const r of m.runs) {
    if (r.logTail === undefined) continue;
    const lines = r.logTail.split('\n').filter(Boolean);
    const fatal = lines.find((l) => l.includes('FATAL'));
    out.push(
      '',
      fatal !== undefined
        ? `"${runTitle(r)}" ended with: \`${fatal.trim()}\``
        : `"${runTitle(r)}" ended without a word in its log (killed by the kernel); its last line: \`${(lines.at(-1) ?? '').slice(0, 160)}…\``,
    );
  }
  return out.join('\n');
}

export function memoryChart(m: MemoryResult): string {
  const flat = (r: Run, v: number): [number, number][] => [
    [0, v],
    [r.samples.at(-1)?.t ?? 0, v],
  ];
  const panels: Panel[] = m.runs.map((r) => ({
    title: runTitle(r),
    yLabel: 'MiB',
    markers: r.phases.filter((p) => p.name !== 'start').map((p) => ({ x: p.t, label: p.name })),
    series: [
      { name: 'container limit', color: '#000000', points: flat(r, r.cgroupLimitMiB) },
      ...(r.heapSizeLimitMiB !== undefined
        ? [
            {
              name: 'V8 heap limit',
              color: '#7f7f7f',
              dashed: true,
              points: flat(r, r.heapSizeLimitMiB),
            },
          ]
        : []),
      {
        name: 'cgroup usage',
        color: '#d62728',
        points: r.samples.map((s) => [s.t, s.cgroupMiB] as [number, number]),
      },
      {
        name: 'RSS',
        color: '#ff7f0e',
        dashed: true,
        points: r.samples.map((s) => [s.t, s.rssMiB] as [number, number]),
      },
      {
        name: 'JS heap total',
        color: '#1f77b4',
        dashed: true,
        points: r.samples.flatMap((s) =>
          s.heapTotalMiB === undefined ? [] : [[s.t, s.heapTotalMiB] as [number, number]],
        ),
      },
      {
        name: 'JS heap used',
        color: '#1f77b4',
        points: r.samples.flatMap((s) =>
          s.heapUsedMiB === undefined ? [] : [[s.t, s.heapUsedMiB] as [number, number]],
        ),
      },
    ],
  }));
  const xMax = Math.max(1, ...m.runs.map((r) => r.samples.at(-1)?.t ?? 0));
  return svgChart(panels, xMax, 'seconds since the container started');
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const result = JSON.parse(readFileSync(`${docs}results/memory.json`, 'utf8')) as MemoryResult;
  const file = `${docs}memory`;
  writeFileSync(`${file}.svg`, memoryChart(result));
  const png = spawnSync('rsvg-convert', ['-b', 'white', '-o', `${file}.png`, `${file}.svg`]);
  process.stderr.write(
    png.status === 0
      ? `wrote ${file}.{svg,png}\n`
      : `wrote ${file}.svg (no rsvg-convert: no PNG)\n`,
  );
  const page = `${docs}memory.md`;
  let text = readFileSync(page, 'utf8');
  const open = '<!-- memory:results -->';
  const close = '<!-- /memory:results -->';
  const a = text.indexOf(open);
  const b = text.indexOf(close);
  if (a < 0 || b < a) throw new Error(`docs/memory.md has no ${open} … ${close}`);
  text = `${text.slice(0, a + open.length)}\n\n${renderMemory(result)}\n\n${text.slice(b)}`;
  await writeFormatted(page, text);
  process.stderr.write(`wrote ${page}\n`);
}
