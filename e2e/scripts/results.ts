// `npm run results [-- --only=claims,bench,...] [--soak-minutes=60]`: regenerates the results pages
// from a run of the code as it is, so that no page quotes a figure older than the code it
// describes. Each step writes its page with the date and commit it measured:
//
//   claims    the e2e files that measure a figure the docs state (e2e/claims.ts), each figure
//             held to its bound → docs/results/claims.md; the Ingress run's raw replies →
//             docs/data-path-failures.{svg,png}                                     about 15 min
//   bench     10 000 pods against kube-controller-manager → docs/performance.md    about 20 min
//   bench50k  50 000 pods (no health-check scale step) → docs/performance.md       about 30 min
//   memory    the image under the chart's memory limit → docs/memory.md            about 25 min
//   faults    the full fault matrix → docs/results/faults.md                        about 20 min
//   soak      churn for --soak-minutes (default 60) → docs/results/soak.md
//
// `--render-claims` writes claims.md again from claims.json (after a change to e2e/claims.ts's
// words); the benchmark pages re-render with `npm run bench:page` and `npm run bench:memory`'s page
// script, the soak page with `npm run soak -- --from=docs/results/soak.json --out=docs/results`.
//
// The prose around the generated tables (what the figures say) is written by hand; read it
// against the new figures before committing them.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { claims, type ClaimId } from '../claims.ts';
import type { Figure } from '../harness/claims.ts';
import { provenance, type Provenance } from '../harness/provenance.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const results = join(root, 'docs', 'results');
const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: 'claims,bench,bench50k,memory,faults,soak' },
    'soak-minutes': { type: 'string', default: '60' },
    /** Re-render docs/results/claims.md from docs/results/claims.json, the last run's figures. */
    'render-claims': { type: 'boolean', default: false },
    /** What else ran on the machine, said on the pages this run writes. */
    note: { type: 'string' },
  },
});

const jest = (env: Record<string, string>, files: readonly string[]): boolean =>
  run('npx', ['jest', '--selectProjects', 'e2e', '--runInBand', '--forceExit', ...files], {
    TEST_SUITE: 'e2e',
    NODE_OPTIONS: '--experimental-vm-modules',
    ...env,
  });

const npm = (...script: string[]): boolean => run('npm', ['run', ...script], {});

function run(cmd: string, argv: readonly string[], env: Record<string, string>): boolean {
  process.stderr.write(
    `\n[results] ${Object.entries(env)
      .map(([k, v]) => `${k}=${v} `)
      .join('')}${cmd} ${argv.join(' ')}\n`,
  );
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  return r.status === 0;
}

/** The claims table: each figure, what the docs say, the bound, what this run measured. */
export function claimsPage(
  figures: readonly Figure[],
  at: Provenance & { readonly note?: string },
): string {
  const byId = new Map<ClaimId, Figure[]>();
  for (const f of figures) byId.set(f.id, [...(byId.get(f.id) ?? []), f]);
  const ids = Object.keys(claims) as ClaimId[];
  const missing = ids.filter((id) => !byId.has(id));
  const fmt = (n: number, unit: string) => `${String(n)} ${unit}`;
  const rows = ids.map((id) => {
    const c = claims[id];
    const got = byId.get(id) ?? [];
    const measured =
      got.length === 0 ? 'not measured' : got.map((f) => String(f.measured)).join(', ');
    const worst = Math.max(...got.map((f) => f.measured));
    // A bound of 0 (no failed call) or a figure at or under 0 (as fast as alone) has no share.
    const share =
      got.length === 0
        ? ''
        : c.bound <= 0 || worst <= 0
          ? 'within'
          : `${String(Math.round((100 * worst) / c.bound))} %`;
    return `| ${id} | ${c.doc}: “${c.says.replace(/\|/g, '\\|')}” | ${measured} ${got.length === 0 ? '' : c.unit} | ${fmt(c.bound, c.unit)} | ${share} | \`${c.test}\` |`;
  });
  return `# Figures the docs state, held to bounds

Written by \`npm run results -- --only=claims\` on ${at.date.slice(0, 10)}, commit ${at.commit} (${at.machine}).${at.note ? ` ${at.note}` : ''}
Each row is a figure README or a docs page states, the bound its e2e test holds every run to (a
run above it fails, in CI too), and what this run measured; "of bound" is the largest measurement
as a share of the bound. The registry, with each bound's derivation, is \`e2e/claims.ts\`; a unit
test keeps its words and the docs' in step. Every e2e run prints the same figures at its end.

| figure | the docs say | measured | bound | of bound | test |
|---|---|--:|--:|--:|---|
${rows.join('\n')}
${missing.length === 0 ? '' : `\nNot measured in this run: ${missing.join(', ')}.\n`}
## How each bound was derived

${ids.map((id) => `- **${id}**: ${claims[id].why}.`).join('\n')}
`;
}

function readFigures(file: string): Figure[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Figure);
}

const steps: Record<string, () => boolean> = {
  claims: () => {
    const file = join(tmpdir(), `outrigger-claims-${String(process.pid)}.jsonl`);
    const at = { ...provenance(), ...(args.note ? { note: args.note } : {}) };
    const files = [...new Set(Object.values(claims).map((c) => c.test))];
    const ok = jest({ OUTRIGGER_FIGURES: file, OUTRIGGER_DATAPATH_OUT: results }, files);
    const figures = existsSync(file) ? readFigures(file) : [];
    writeFileSync(join(results, 'claims.json'), `${JSON.stringify({ ...at, figures }, null, 1)}\n`);
    writeFileSync(join(results, 'claims.md'), claimsPage(figures, at));
    process.stderr.write(
      `[results] wrote docs/results/claims.md (${String(figures.length)} figures)\n`,
    );
    return ok && npm('datapath:page');
  },
  bench: () =>
    npm('bench', '--', '--pods=10000', '--services=1000', `--out=${results}`) && npm('bench:page'),
  bench50k: () =>
    npm('bench', '--', '--pods=50000', '--services=5000', '--skip=probes', `--out=${results}`) &&
    npm('bench:page'),
  memory: () => npm('bench:memory'),
  faults: () =>
    jest(
      {
        FAULTS: 'full',
        OUTRIGGER_RESULTS_OUT: results,
        ...(args.note ? { OUTRIGGER_RESULTS_NOTE: args.note } : {}),
      },
      ['e2e/faults.e2e.test.ts'],
    ),
  soak: () =>
    npm(
      'soak',
      '--',
      `--minutes=${args['soak-minutes']}`,
      `--out=${results}`,
      ...(args.note ? [`--note=${args.note}`] : []),
    ),
};

if (args['render-claims']) {
  const last = JSON.parse(readFileSync(join(results, 'claims.json'), 'utf8')) as Provenance & {
    figures: Figure[];
    note?: string;
  };
  if (args.note !== undefined) last.note = args.note;
  writeFileSync(join(results, 'claims.json'), `${JSON.stringify(last, null, 1)}\n`);
  writeFileSync(join(results, 'claims.md'), claimsPage(last.figures, last));
  process.exit(0);
}

const chosen = args.only.split(',').filter(Boolean);
const unknown = chosen.filter((s) => !(s in steps));
if (unknown.length > 0)
  throw new Error(
    `unknown step(s) ${unknown.join(', ')}; the steps: ${Object.keys(steps).join(', ')}`,
  );
const outcome: string[] = [];
for (const name of chosen) {
  const started = Date.now();
  const ok = steps[name]?.() ?? false;
  outcome.push(
    `${name}: ${ok ? 'ok' : 'FAILED'} in ${String(Math.round((Date.now() - started) / 60_000))} min`,
  );
}
process.stderr.write(`\n[results] ${outcome.join('; ')}\n`);
process.exit(outcome.some((o) => o.includes('FAILED')) ? 1 : 0);
