// `npm run mutants [-- --only=NN[,NN]] [--suite=unit|e2e] [--baseline] [--out=DIR]`: the mutation check. For each
// behaviour the docs promise (mutants.json), a patch breaks it in a throwaway worktree of HEAD and
// the tests listed for it must go red; a mutant that leaves them green is a promise no test keeps.
//
// A red result must mean the mutation, not a flake or a filter that matched nothing: every listed
// test is first run on unmodified HEAD and must pass there (once per commit, remembered under the
// system's temp directory; --baseline runs it again), and a mutant counts as killed only when each
// listed test, found by its title in Jest's JSON report, failed. One Jest process at a time.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { writeFormatted } from '../harness/markdown.ts';
import { provenance } from '../harness/provenance.ts';

const here = fileURLToPath(new URL('.', import.meta.url));

const testRef = z.object({
  suite: z.enum(['unit', 'e2e']),
  file: z.string(),
  /** The test's own title (not its describe blocks): what -t selects and the report is searched for. */
  name: z.string(),
});
type TestRef = z.infer<typeof testRef>;
const registry = z.object({
  mutants: z.array(
    z.object({
      id: z.string().regex(/^\d\d$/),
      behaviour: z.string(),
      mutation: z.string(),
      patch: z.string(),
      tests: z.array(testRef).min(1),
    }),
  ),
});
type Mutant = z.infer<typeof registry>['mutants'][number];

interface Options {
  readonly only: ReadonlySet<string> | undefined;
  /** Only the listed tests of this suite (unit: a quick look; the e2e ones are the ones that count). */
  readonly suite: TestRef['suite'] | undefined;
  readonly out: string | undefined;
  readonly baseline: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  let only: Set<string> | undefined;
  let out: string | undefined;
  let baseline = false;
  let suite: TestRef['suite'] | undefined;
  for (const a of argv) {
    if (a.startsWith('--only=')) only = new Set(a.slice('--only='.length).split(','));
    else if (a === '--suite=unit' || a === '--suite=e2e')
      suite = a === '--suite=unit' ? 'unit' : 'e2e';
    else if (a.startsWith('--out=')) out = a.slice('--out='.length);
    else if (a === '--baseline') baseline = true;
    else {
      process.stderr.write(
        `unknown argument ${a}\nusage: node e2e/mutants/run.ts [--only=NN[,NN]] [--suite=unit|e2e] [--baseline] [--out=DIR]\n`,
      );
      process.exit(2);
    }
  }
  return { only, suite, out, baseline };
}

function git(args: readonly string[], cwd: string): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const repo = git(['rev-parse', '--show-toplevel'], here).trim();
const head = git(['rev-parse', 'HEAD'], repo).trim();
const work = join(tmpdir(), 'outrigger-mutants');
const logs = join(work, `logs-${head.slice(0, 12)}`);

// What must be undone if the run is interrupted: the Jest process group and the worktree.
let child: ChildProcess | undefined;
let tree: string | undefined;

function removeWorktree(dir: string): void {
  try {
    git(['worktree', 'remove', '--force', dir], repo);
  } catch {
    rmSync(dir, { recursive: true, force: true });
    try {
      git(['worktree', 'prune'], repo);
    } catch {
      // Nothing registered any more.
    }
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    if (child?.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
    if (tree !== undefined) {
      removeWorktree(tree);
      rmSync(resolve(tree, '..'), { recursive: true, force: true });
    }
    process.exit(130);
  });

/** Runs `fn` in a detached worktree of HEAD (node_modules linked), removed whatever happens. */
async function inWorktree<T>(label: string, fn: (dir: string) => Promise<T>): Promise<T> {
  mkdirSync(work, { recursive: true });
  const dir = join(mkdtempSync(join(work, `${label}-`)), 'tree');
  git(['worktree', 'add', '--detach', dir, head], repo);
  tree = dir;
  try {
    symlinkSync(realpathSync(join(repo, 'node_modules')), join(dir, 'node_modules'));
    return await fn(dir);
  } finally {
    removeWorktree(dir);
    rmSync(resolve(dir, '..'), { recursive: true, force: true });
    tree = undefined;
  }
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function jestArgs(suite: TestRef['suite'], file: string, names: readonly string[]): string[] {
  return [
    'jest',
    '--selectProjects',
    suite,
    ...(suite === 'e2e' ? ['--runInBand', '--forceExit'] : ['--maxWorkers=1']),
    file,
    '-t',
    names.map(escapeRegExp).join('|'),
  ];
}

const jestEnv = (suite: TestRef['suite']) => ({
  TEST_SUITE: suite,
  NODE_OPTIONS: '--experimental-vm-modules',
  // -t leaves the file's other tests out; they are not skips that should fail the run.
  OUTRIGGER_ALLOW_SKIPS: '1',
});

/** The command as a person would type it to see the failure again (in a checkout with the patch). */
function commandLine(t: TestRef): string {
  const env = Object.entries(jestEnv(t.suite))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const args = jestArgs(t.suite, t.file, [t.name]).map((a) =>
    /^[\w./=-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`,
  );
  return `${env} npx ${args.join(' ')}`;
}

const jestReport = z.object({
  testResults: z.array(
    z.object({
      name: z.string(),
      message: z.string().optional(),
      assertionResults: z.array(
        z.object({
          title: z.string(),
          fullName: z.string(),
          status: z.string(),
          failureMessages: z.array(z.string()).optional(),
          duration: z.number().nullable().optional(),
        }),
      ),
    }),
  ),
});

interface Outcome {
  readonly test: TestRef;
  /** passed, failed, pending (skipped), or missing: not in the report (not run, file did not load). */
  readonly status: 'passed' | 'failed' | 'pending' | 'missing';
  readonly fullName?: string;
  /** First line of the failure (or why the test is missing). */
  readonly detail: string;
  readonly log: string;
}

const plain = (s: string): string =>
  // eslint-disable-next-line no-control-regex
  s.replace(/\x1b\[[0-9;]*m/g, '');

function firstLine(s: string): string {
  const line = plain(s)
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '');
  return (line ?? '').slice(0, 240);
}

/**
 * A failure in one line: its first line, what was expected and received (a matcher's
 * Expected/Received lines, or the first lines of a diff), and where in the test file it failed.
 */
function failureLine(message: string): string {
  const lines = plain(message)
    .split('\n')
    .map((l) => l.trim());
  const head = lines.find((l) => l !== '') ?? '';
  const said = lines.filter((l) => /^(Expected|Received)( has value)?:/.test(l)).slice(0, 2);
  // The first changed lines with a value in them; an opening brace or bracket says little
  // (a class name that differs, an array that is no longer empty).
  const changed = (sign: string, header: string): string | undefined => {
    const all = lines.filter((l) => l.startsWith(`${sign} `) && !l.startsWith(header));
    return all.find((l) => !/[{[]$/.test(l)) ?? all[0];
  };
  const diff = [changed('-', '- Expected'), changed('+', '+ Received')].filter(
    (l): l is string => l !== undefined,
  );
  const at = /((?:src|e2e)\/\S+?\.test\.ts:\d+)/.exec(
    lines.find((l) => l.startsWith('at ') && /\.test\.ts:\d+/.test(l)) ?? '',
  )?.[1];
  const what = (said.length > 0 ? said : diff).map((l) => l.replace(/\s+/g, ' ').slice(0, 120));
  return [head, what.join(' / '), at === undefined ? '' : `(${at})`]
    .filter(Boolean)
    .join(' — ')
    .slice(0, 400);
}

/** Runs the tests of one file in one Jest process and reads each one's outcome from its report. */
async function runJest(
  dir: string,
  suite: TestRef['suite'],
  file: string,
  tests: readonly TestRef[],
  label: string,
): Promise<Outcome[]> {
  mkdirSync(logs, { recursive: true });
  const log = join(logs, `${label}.log`);
  const report = join(logs, `${label}.json`);
  rmSync(report, { force: true });
  const fd = openSync(log, 'w');
  const args = [
    ...jestArgs(
      suite,
      file,
      tests.map((t) => t.name),
    ),
    '--json',
    `--outputFile=${report}`,
  ];
  const exit = await new Promise<number | null>((done) => {
    // Its own process group, so that an interrupted run can end Jest and what it started.
    const p = spawn('npx', args, {
      cwd: dir,
      env: { ...process.env, ...jestEnv(suite) },
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    child = p;
    p.on('exit', (code) => {
      done(code);
    });
    p.on('error', () => {
      done(null);
    });
  });
  child = undefined;
  closeSync(fd);
  const parsed = existsSync(report)
    ? jestReport.safeParse(JSON.parse(readFileSync(report, 'utf8')))
    : undefined;
  return tests.map((t): Outcome => {
    if (parsed?.success !== true) {
      const tail = plain(readFileSync(log, 'utf8')).trim().split('\n').slice(-3).join(' / ');
      return {
        test: t,
        status: 'missing',
        detail: `Jest wrote no report (exit ${String(exit)}): ${tail.slice(0, 240)}`,
        log,
      };
    }
    const fileResult = parsed.data.testResults.find((r) => r.name.endsWith(`/${t.file}`));
    const a = fileResult?.assertionResults.find((x) => x.title === t.name);
    if (a === undefined)
      return {
        test: t,
        status: 'missing',
        detail:
          fileResult === undefined
            ? `${t.file} is not in the report`
            : `no test titled so in ${t.file}${fileResult.message ? `: ${firstLine(fileResult.message)}` : ''}`,
        log,
      };
    const status =
      a.status === 'passed' || a.status === 'failed' || a.status === 'pending'
        ? a.status
        : 'missing';
    return {
      test: t,
      status,
      fullName: a.fullName,
      detail: status === 'failed' ? failureLine(a.failureMessages?.[0] ?? '') : '',
      log,
    };
  });
}

const key = (t: TestRef): string => `${t.suite} ${t.file} ${t.name}`;

interface BaselineEntry {
  readonly status: Outcome['status'];
  readonly detail: string;
  readonly at: string;
}

/**
 * Every listed test on unmodified HEAD, one Jest run per file. Passes are remembered per commit,
 * so a second run (or --only) does not repeat them; --baseline asks again.
 */
async function baseline(
  tests: readonly TestRef[],
  force: boolean,
): Promise<Map<string, BaselineEntry>> {
  mkdirSync(work, { recursive: true });
  const cacheFile = join(work, `baseline-${head}.json`);
  const cache = new Map<string, BaselineEntry>(
    !force && existsSync(cacheFile)
      ? Object.entries(JSON.parse(readFileSync(cacheFile, 'utf8')) as Record<string, BaselineEntry>)
      : [],
  );
  const todo = tests.filter((t) => cache.get(key(t))?.status !== 'passed');
  const byFile = new Map<string, TestRef[]>();
  for (const t of todo) {
    const k = `${t.suite} ${t.file}`;
    byFile.set(k, [...(byFile.get(k) ?? []), t]);
  }
  if (byFile.size > 0)
    await inWorktree('baseline', async (dir) => {
      for (const group of byFile.values()) {
        const first = group[0];
        if (first === undefined) continue;
        const started = Date.now();
        process.stdout.write(
          `baseline: ${first.file} (${String(group.length)} test${group.length > 1 ? 's' : ''}) on HEAD ${head.slice(0, 12)} … `,
        );
        const label = `baseline-${first.file.replace(/[^\w.-]+/g, '_')}`;
        const outcomes = await runJest(dir, first.suite, first.file, group, label);
        for (const o of outcomes)
          cache.set(key(o.test), {
            status: o.status,
            detail: o.detail,
            at: new Date().toISOString(),
          });
        const bad = outcomes.filter((o) => o.status !== 'passed');
        process.stdout.write(
          `${bad.length === 0 ? 'green' : `NOT GREEN: ${bad.map((o) => `${o.test.name} (${o.status}${o.detail ? `: ${o.detail}` : ''})`).join('; ')}`} in ${seconds(Date.now() - started)}\n`,
        );
      }
    });
  writeFileSync(cacheFile, `${JSON.stringify(Object.fromEntries(cache), null, 2)}\n`);
  return cache;
}

type Verdict = 'killed' | 'survived' | 'partly killed' | 'patch does not apply' | 'not checked';

interface Result {
  readonly mutant: Mutant;
  readonly verdict: Verdict;
  readonly outcomes: readonly Outcome[];
  readonly note: string;
  readonly ms: number;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(0)} s`;

async function runMutant(m: Mutant, base: ReadonlyMap<string, BaselineEntry>): Promise<Result> {
  const started = Date.now();
  const notGreen = m.tests.filter((t) => base.get(key(t))?.status !== 'passed');
  if (notGreen.length > 0)
    return {
      mutant: m,
      verdict: 'not checked',
      outcomes: [],
      note: `not green on unmodified HEAD, so red would prove nothing: ${notGreen.map((t) => `${t.name} (${base.get(key(t))?.detail ?? 'no baseline'})`).join('; ')}`,
      ms: Date.now() - started,
    };
  const patch = join(here, m.patch);
  return inWorktree(`mutant-${m.id}`, async (dir) => {
    try {
      git(['apply', patch], dir);
    } catch (err) {
      const why = firstLine(
        (err as { stderr?: string }).stderr ?? (err instanceof Error ? err.message : String(err)),
      );
      return {
        mutant: m,
        verdict: 'patch does not apply' as const,
        outcomes: [],
        note: `${m.patch} does not apply to HEAD (${why}): refresh the patch — make the same mutation by hand in src/, then \`git diff > e2e/mutants/${m.patch}\` and restore the file`,
        ms: Date.now() - started,
      };
    }
    const outcomes: Outcome[] = [];
    for (const [i, t] of m.tests.entries()) {
      const label = `mutant-${m.id}-${String(i + 1)}-${t.suite}`;
      outcomes.push(...(await runJest(dir, t.suite, t.file, [t], label)));
    }
    const red = outcomes.filter((o) => o.status === 'failed').length;
    const verdict: Verdict =
      red === outcomes.length ? 'killed' : red === 0 ? 'survived' : 'partly killed';
    const odd = outcomes.filter((o) => o.status === 'missing' || o.status === 'pending');
    return {
      mutant: m,
      verdict,
      outcomes,
      note: odd
        .map((o) => `${o.test.name}: ${o.status}${o.detail ? ` (${o.detail})` : ''}; log ${o.log}`)
        .join('; '),
      ms: Date.now() - started,
    };
  });
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(results: readonly Result[]): string {
  const rows = results.map((r) => {
    const caught = r.outcomes.filter((o) => o.status === 'failed');
    const by = caught.map((o) => `${o.test.suite}: ${o.fullName ?? o.test.name} (${o.test.file})`);
    const why = caught.map((o) => `\`${o.detail}\``);
    return `| ${r.mutant.id} | ${cell(r.mutant.behaviour)} | ${cell(r.mutant.mutation)} | **${r.verdict}** | ${cell(by.join('<br>'))} | ${cell(why.join('<br>'))}${r.note ? ` ${cell(r.note)}` : ''} | ${seconds(r.ms)} |`;
  });
  return [
    '| # | behaviour | mutation | result | test that caught it | first line of its failure | time |',
    '|---|---|---|---|---|---|--:|',
    ...rows,
  ].join('\n');
}

function page(results: readonly Result[], base: ReadonlyMap<string, BaselineEntry>): string {
  const p = provenance();
  const tests = results.flatMap((r) => r.mutant.tests.map((t) => ({ id: r.mutant.id, t })));
  return `# Mutation check

Run: ${p.date} · commit \`${p.commit}\` · ${p.machine}

For each behaviour below, a patch in \`e2e/mutants/\` breaks it in \`src/\` the way a plausible bug
would, in a throwaway worktree of the commit, and the tests listed for it in
\`e2e/mutants/mutants.json\` must fail. Each of those tests passed first on the unmodified commit,
so a failure is the mutation's doing. Run it again with \`npm run mutants -- --out=docs/results\`
(\`--only=NN\` for one mutant, \`--baseline\` to check the unmodified commit again).

${table(results)}

Each mutant's tests, as run (in a worktree with the patch applied):

| # | suite | command | on HEAD | with the mutant |
|---|---|---|---|---|
${tests
  .map(({ id, t }) => {
    const r = results.find((x) => x.mutant.id === id);
    const o = r?.outcomes.find((x) => key(x.test) === key(t));
    const b = base.get(key(t));
    return `| ${id} | ${t.suite} | \`${cell(commandLine(t))}\` | ${b?.status ?? 'not run'} | ${o?.status ?? r?.verdict ?? ''} |`;
  })
  .join('\n')}
`;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const all = registry.parse(JSON.parse(readFileSync(join(here, 'mutants.json'), 'utf8'))).mutants;
  const chosen = all
    .filter((m) => o.only === undefined || o.only.has(m.id))
    .map((m) => ({
      ...m,
      tests: m.tests.filter((t) => o.suite === undefined || t.suite === o.suite),
    }))
    .filter((m) => m.tests.length > 0);
  if (chosen.length === 0) {
    process.stderr.write(`no mutant matches --only=${[...(o.only ?? [])].join(',')}\n`);
    process.exit(2);
  }
  const started = Date.now();
  process.stdout.write(
    `mutation check of ${head.slice(0, 12)}: ${String(chosen.length)} mutants; Jest logs in ${logs}\n`,
  );
  const base = await baseline(
    chosen.flatMap((m) => m.tests),
    o.baseline,
  );
  const results: Result[] = [];
  for (const m of chosen) {
    process.stdout.write(`mutant ${m.id} (${m.behaviour}) … `);
    const r = await runMutant(m, base);
    results.push(r);
    process.stdout.write(`${r.verdict} in ${seconds(r.ms)}${r.note ? `: ${r.note}` : ''}\n`);
  }
  process.stdout.write(`\n${table(results)}\n\ntotal ${seconds(Date.now() - started)}\n`);
  if (o.out !== undefined) {
    mkdirSync(o.out, { recursive: true });
    const file = join(o.out, 'mutants.md');
    // Formatted as the repository's other pages are, so that format:check passes on it.
    await writeFormatted(file, page(results, base));
    process.stdout.write(`wrote ${file}\n`);
  }
  const bad = results.filter((r) => r.verdict !== 'killed');
  if (bad.length > 0) {
    process.stderr.write(
      `${String(bad.length)} of ${String(results.length)} mutants not killed: ${bad.map((r) => `${r.mutant.id} ${r.verdict}`).join(', ')}\n`,
    );
    process.exit(1);
  }
}

await main();
