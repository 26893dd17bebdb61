// Two projects: `unit` covers pure logic and runs in parallel; `e2e` runs against a real
// kube-apiserver and etcd started by e2e/harness, one test file at a time, in an order shuffled by
// a printed seed (e2e/scripts/sequencer.js). The summary reporter fails a run that skipped a test
// unless OUTRIGGER_ALLOW_SKIPS=1.
const esm = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testEnvironment: 'node',
};

/** @type {import('jest').Config} */
export default {
  testSequencer: '<rootDir>/e2e/scripts/sequencer.js',
  reporters: [
    'default',
    ['<rootDir>/e2e/scripts/summary-reporter.js', { label: process.env.TEST_SUITE ?? 'jest' }],
  ],
  projects: [
    {
      ...esm,
      displayName: 'unit',
      testMatch: ['<rootDir>/src/**/*.test.ts', '<rootDir>/e2e/**/*.unit.test.ts'],
      // A seed for fast-check from FC_SEED, or a random one it prints on failure.
      setupFiles: ['<rootDir>/src/runtime/fastcheck.test-helpers.ts'],
    },
    {
      ...esm,
      displayName: 'e2e',
      testMatch: ['<rootDir>/e2e/**/*.e2e.test.ts'],
      slowTestThreshold: 60,
    },
  ],
};
