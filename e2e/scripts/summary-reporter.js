// Prints one plain closing line per Jest run, e.g. "unit: 30 passed, 0 failed, 0 skipped", so that
// tools reading the end of a CI log see what ran without parsing Jest's own summary. A test file
// that could not run at all (a syntax or import error) is reported too: it has no failed tests.
export default class SummaryReporter {
  /** @param {unknown} _globalConfig @param {{ label?: string }} options */
  constructor(_globalConfig, options) {
    this.label = options.label ?? 'jest';
  }

  /** @param {unknown} _contexts @param {{ numPassedTests: number, numFailedTests: number, numPendingTests: number, numTodoTests: number, numRuntimeErrorTestSuites: number }} r */
  onRunComplete(_contexts, r) {
    const broken =
      r.numRuntimeErrorTestSuites > 0
        ? `, ${r.numRuntimeErrorTestSuites} test file(s) failed to run`
        : '';
    process.stdout.write(
      `\n${this.label}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped${broken}\n`,
    );
  }
}
