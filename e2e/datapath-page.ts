// `npm run datapath:page [-- DIR]`: renders the chart of docs/data-path.md from the raw figures the
// Ingress data-path test writes when OUTRIGGER_DATAPATH_OUT=DIR is set (default docs/results):
// the share of failed requests per second after one of two servers dies, by hand and with
// outrigger. Writes docs/data-path-failures.svg and, with rsvg-convert, .png.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { svgChart, type Series } from './soak/plot.ts';

interface Recorded {
  readonly windowMs: number;
  readonly boundMs: number;
  readonly byHand: readonly (readonly [number, number])[];
  readonly outrigger: readonly (readonly [number, number])[];
}

const docs = fileURLToPath(new URL('../docs/', import.meta.url));
const dir = process.argv[2] ?? join(docs, 'results');
const r = JSON.parse(readFileSync(join(dir, 'datapath-ingress.json'), 'utf8')) as Recorded;

/** Failed share (%) of the requests sent in each second after the death. */
function perSecond(replies: readonly (readonly [number, number])[]): [number, number][] {
  const seconds = Math.floor(r.windowMs / 1000);
  return Array.from({ length: seconds }, (_, s) => {
    const inSecond = replies.filter(([t]) => t >= s * 1000 && t < (s + 1) * 1000);
    const failed = inSecond.filter(([, status]) => status !== 200).length;
    return [s + 0.5, inSecond.length === 0 ? 0 : (100 * failed) / inSecond.length];
  });
}

const series: Series[] = [
  { name: 'by hand', color: '#c0392b', points: perSecond(r.byHand) },
  { name: 'with outrigger', color: '#2471a3', points: perSecond(r.outrigger) },
];
const svg = svgChart(
  [
    {
      title: 'Requests through the Ingress that failed, after one of two servers died',
      yLabel: 'failed requests (%)',
      series,
      marker: { x: r.boundMs / 1000, label: 'bound the test asserts' },
    },
  ],
  r.windowMs / 1000,
  'seconds after the server died',
);
const svgPath = join(docs, 'data-path-failures.svg');
writeFileSync(svgPath, svg);
const png = spawnSync('rsvg-convert', ['-o', join(docs, 'data-path-failures.png'), svgPath]);
process.stdout.write(
  `wrote ${svgPath}${png.status === 0 ? ' and data-path-failures.png' : ' (no rsvg-convert: no PNG)'}\n`,
);
