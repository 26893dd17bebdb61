// `npm run bench:page`: puts the figures of the committed benchmark runs (docs/results/bench-*.json)
// into docs/performance.md, between its `<!-- bench:N -->` and `<!-- /bench:N -->` markers (the
// prose around them is written by hand), and draws the charts next to it (SVG, and PNG when
// rsvg-convert is installed).
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { writeFormatted } from '../harness/markdown.ts';
import type { BenchResult } from './bench.ts';
import { latencyChart, renderResults, rssChart } from './results.ts';

const docs = fileURLToPath(new URL('../../docs/', import.meta.url));
const results = `${docs}results/`;
const page = `${docs}performance.md`;

const runs: BenchResult[] = readdirSync(results)
  .filter((f) => /^bench-\d+\.json$/.test(f))
  .map((f) => JSON.parse(readFileSync(`${results}${f}`, 'utf8')) as BenchResult)
  .sort((a, b) => a.pods - b.pods);
if (runs.length === 0) throw new Error(`no docs/results/bench-*.json to render`);

function draw(name: string, svg: string): void {
  const file = `${docs}${name}`;
  writeFileSync(`${file}.svg`, svg);
  const png = spawnSync('rsvg-convert', ['-b', 'white', '-o', `${file}.png`, `${file}.svg`]);
  process.stderr.write(
    png.status === 0
      ? `wrote ${file}.{svg,png}\n`
      : `wrote ${file}.svg (no rsvg-convert: no PNG)\n`,
  );
}

draw('performance-rss', rssChart(runs));
const largest = runs.at(-1);
if (largest !== undefined) draw('performance-latency', latencyChart(largest));

let text = readFileSync(page, 'utf8');
for (const r of runs) {
  const open = `<!-- bench:${String(r.pods)} -->`;
  const close = `<!-- /bench:${String(r.pods)} -->`;
  const a = text.indexOf(open);
  const b = text.indexOf(close);
  if (a < 0 || b < a) {
    process.stderr.write(`docs/performance.md has no ${open} … ${close}; not placed\n`);
    continue;
  }
  text = `${text.slice(0, a + open.length)}\n${renderResults(r)}\n${text.slice(b)}`;
}
await writeFormatted(page, text);
process.stderr.write(`wrote ${page}\n`);
