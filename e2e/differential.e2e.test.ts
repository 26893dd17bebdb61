// The proof that selector mode behaves as kube-controller-manager's endpoints-controller: every
// scenario of e2e/differential/scenarios runs against both, and the Endpoints must match after the
// set-up and after every step. Set OUTRIGGER_SCENARIOS=a,b to run only some.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { runScenario } from './differential/runner.ts';
import { loadCorpus } from './differential/scenario.ts';
import { teardown } from './helpers.ts';
import { describeUnless, localOnly } from './skips.ts';

const only = process.env.OUTRIGGER_SCENARIOS?.split(',').filter(Boolean);
const corpus = loadCorpus().filter((s) => only === undefined || only.includes(s.name));

let upstream: Cluster;
let outrigger: Cluster;
let operator: OperatorProcess;

const existing = process.env.USE_EXISTING_CLUSTER === 'true';

beforeAll(async () => {
  if (existing) return;
  [upstream, outrigger] = await Promise.all([
    startCluster({ controllers: ['endpoints-controller'] }),
    startCluster(),
  ]);
  operator = await startOperator(
    outrigger.kubeconfigPath,
    ['--selector-mode=all', `--zap-log-level=${process.env.OUTRIGGER_LOG_LEVEL ?? 'info'}`],
    join(outrigger.dir ?? '/tmp', 'outrigger.log'),
  );
}, 180_000);

afterAll(async () => {
  if (existing) return;
  await teardown(
    () => operator.stop(),
    () => upstream.stop(),
    () => outrigger.stop(),
  );
});

const local = describeUnless(localOnly);

local('outrigger matches the upstream endpoints controller', () => {
  it('has a corpus of at least 40 scenarios', () => {
    if (only === undefined) expect(corpus.length).toBeGreaterThanOrEqual(40);
  });

  it.each(corpus.map((s) => [s.name, s] as const))(
    '%s',
    async (_name, scenario) => {
      const results = await runScenario(
        scenario,
        { name: 'upstream', kubeConfig: upstream.kubeConfig() },
        { name: 'outrigger', kubeConfig: outrigger.kubeConfig() },
      );
      const failed = results.find((r) => !r.matched);
      if (failed) {
        const log = readFileSync(operator.logPath, 'utf8').split('\n');
        const ns = `diff-${scenario.name}`;
        const retries = log
          .filter((l) => l.includes(ns) && (l.includes('reconcile failed') || l.includes('wrote')))
          .slice(-8);
        throw new Error(
          `step "${failed.step}" differs after ${failed.ms} ms:\n${failed.detail ?? ''}\n` +
            `outrigger's last reconcile failures:\n${retries.join('\n')}`,
        );
      }
      expect(results).toHaveLength(scenario.steps.length + 1);
    },
    // The over-capacity scenarios create over a thousand pods in both clusters: 52–64 s on a
    // 2-core machine at load 4, over 120 s with other suites beside it.
    300_000,
  );
});
