// Prints one plain closing line per Jest run, e.g. "unit: 30 executed (30 passed, 0 failed), 0
// skipped", so that tools reading the end of a CI log see what ran without parsing Jest's own
// summary. A test file that could not run at all (a syntax or import error) is reported too: it has
// no failed tests.
//
// A skipped test fails the run. Suites switch themselves off when this machine lacks what they need
// (root, `ip netns`, nft, runc) or when USE_EXISTING_CLUSTER=true, and a green run that skipped the
// data path proves nothing about it. OUTRIGGER_ALLOW_SKIPS=1 accepts skips for people who know they
// lack those (no root, a kind cluster); the closing line then says so, and names what was skipped.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const seedKey = Symbol.for('outrigger.e2eSeed');

/**
 * The full versions of two suites. They are parameters of a suite that runs anyway (longer loops,
 * more cases), not tests registered as skipped, so they never count as skips; the e2e summary names
 * them so that they stay one command away.
 */
const fullVersions = [
  ['FAULTS', 'npm run test:faults (the longer fault matrix)'],
  [
    'RBAC_PROOF',
    'RBAC_PROOF=full on e2e/chart.e2e.test.ts (every verb of every role in every mode)',
  ],
];

export default class SummaryReporter {
  /** @param {{ testNamePattern?: string }} globalConfig @param {{ label?: string }} options */
  constructor(globalConfig, options) {
    this.label = options.label ?? 'jest';
    // Tests that `-t <pattern>` leaves out are reported as skipped too: those are the caller's
    // choice, counted apart ("filtered out") and never a failure.
    this.namePattern =
      globalConfig.testNamePattern !== undefined && globalConfig.testNamePattern !== ''
        ? new RegExp(globalConfig.testNamePattern, 'i')
        : undefined;
    this.filtered = 0;
    this.allowSkips = process.env.OUTRIGGER_ALLOW_SKIPS === '1';
    /** @type {string[]} */
    this.skipped = [];
    /** @type {Error | undefined} */
    this.error = undefined;
    // Figures the docs state, measured by the tests through e2e/harness/claims.ts: a file per run,
    // named here so that every test file of the run appends to the same one.
    // A file named by the caller (npm run results) is the caller's to keep; one named here goes
    // once printed.
    this.ownFigures = this.label === 'e2e' && process.env.OUTRIGGER_FIGURES === undefined;
    if (this.label === 'e2e') {
      process.env.OUTRIGGER_FIGURES ??= join(
        tmpdir(),
        `outrigger-figures-${String(process.pid)}.jsonl`,
      );
      writeFileSync(process.env.OUTRIGGER_FIGURES, '');
    }
  }

  /** Each measured figure beside what the docs say and the bound its test holds it to. */
  figures() {
    const file = process.env.OUTRIGGER_FIGURES;
    if (this.label !== 'e2e' || file === undefined || !existsSync(file)) return [];
    /** @type {Map<string, { unit: string, stated: number, bound: number, measured: number[] }>} */
    const byId = new Map();
    for (const line of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
      const f = JSON.parse(line);
      const e = byId.get(f.id) ?? { unit: f.unit, stated: f.stated, bound: f.bound, measured: [] };
      e.measured.push(f.measured);
      byId.set(f.id, e);
    }
    if (byId.size === 0) return [];
    return [
      `${this.label}: figures the docs state (e2e/claims.ts), measured in this run (${file}):`,
      ...[...byId].map(
        ([id, e]) =>
          `  ${id}: ${e.measured.join(', ')} ${e.unit} (docs: ${String(e.stated)}, bound ${String(e.bound)})`,
      ),
    ];
  }

  /** @returns {{ seed: number, files: string[] } | undefined} */
  order() {
    return /** @type {Record<symbol, { seed: number, files: string[] } | undefined>} */ (
      globalThis
    )[seedKey];
  }

  seed() {
    return this.order()?.seed;
  }

  onRunStart() {
    const o = this.order();
    if (o !== undefined)
      process.stdout.write(
        `\n${this.label}: e2e files in shuffled order, seed ${String(o.seed)} (replay: E2E_SEED=${String(o.seed)}): ${o.files.map((f) => f.replace(/^e2e\//, '').replace(/\.e2e\.test\.ts$/, '')).join(' ')}\n`,
      );
  }

  /** @param {unknown} _test @param {{ testFilePath: string, testResults: { status: string, fullName: string }[] }} result */
  onTestResult(_test, result) {
    const file = result.testFilePath.replace(`${process.cwd()}/`, '');
    for (const t of result.testResults)
      if (t.status === 'pending' || t.status === 'skipped' || t.status === 'todo') {
        if (this.namePattern !== undefined && !this.namePattern.test(t.fullName)) this.filtered++;
        else this.skipped.push(`${file}: ${t.fullName}`);
      }
  }

  /** @param {unknown} _contexts @param {{ numPassedTests: number, numFailedTests: number, numPendingTests: number, numTodoTests: number, numRuntimeErrorTestSuites: number }} r */
  onRunComplete(_contexts, r) {
    const skipped = r.numPendingTests + r.numTodoTests - this.filtered;
    const filtered = this.filtered > 0 ? `, ${String(this.filtered)} filtered out by -t` : '';
    const broken =
      r.numRuntimeErrorTestSuites > 0
        ? `, ${String(r.numRuntimeErrorTestSuites)} test file(s) failed to run`
        : '';
    const seed = this.seed();
    const order = seed === undefined ? '' : `, e2e seed ${String(seed)}`;
    const allowed = skipped > 0 && this.allowSkips ? ' (allowed by OUTRIGGER_ALLOW_SKIPS=1)' : '';
    const out = this.figures();
    if (this.ownFigures && process.env.OUTRIGGER_FIGURES !== undefined)
      rmSync(process.env.OUTRIGGER_FIGURES, { force: true });
    if (skipped > 0) {
      out.push(`${this.label}: skipped tests:`, ...this.skipped.map((s) => `  ${s}`));
      if (!this.allowSkips) {
        out.push(
          `${this.label}: FAILED: ${String(skipped)} test(s) skipped. Each name above says why (no root, no \`ip netns\`, no nft or runc, USE_EXISTING_CLUSTER=true). Set OUTRIGGER_ALLOW_SKIPS=1 to accept that.`,
        );
        this.error = new Error(
          `${String(skipped)} test(s) skipped without OUTRIGGER_ALLOW_SKIPS=1`,
        );
      }
    }
    const notRun = fullVersions.filter(([v]) => process.env[v] !== 'full').map(([, how]) => how);
    if (seed !== undefined && notRun.length > 0)
      out.push(`${this.label}: full versions, not part of this run: ${notRun.join('; ')}`);
    out.push(
      `${this.label}: ${String(r.numPassedTests + r.numFailedTests)} executed (${String(r.numPassedTests)} passed, ${String(r.numFailedTests)} failed), ${String(skipped)} skipped${allowed}${filtered}${broken}${order}`,
    );
    process.stdout.write(`\n${out.join('\n')}\n`);
  }

  /** Jest fails the run when a reporter has an error to report. */
  getLastError() {
    return this.error;
  }
}
