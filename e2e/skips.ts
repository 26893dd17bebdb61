// How a suite or test says it cannot run here, for test files only: it imports jest's globals,
// which exist only inside a jest run (the demo and the benchmarks import e2e/helpers.ts, so these
// cannot live there).
import { describe, it } from '@jest/globals';

/**
 * Why a suite that starts its own control plane cannot run, or undefined: against an existing
 * cluster (USE_EXISTING_CLUSTER=true) it would test that cluster's components, not ours.
 */
export const localOnly: string | undefined =
  process.env.USE_EXISTING_CLUSTER === 'true'
    ? 'USE_EXISTING_CLUSTER=true: this suite starts its own control plane'
    : undefined;

/**
 * `describe`, or when `reason` is set a skipped `describe` whose name carries the reason: the
 * summary reporter (e2e/scripts/summary-reporter.js) lists skipped tests by name, and fails the run
 * unless OUTRIGGER_ALLOW_SKIPS=1. A warning from inside the suite would never print: Jest runs no
 * hook of a skipped suite.
 */
export function describeUnless(reason: string | undefined): (name: string, fn: () => void) => void {
  if (reason === undefined) return describe;
  return (name, fn) => {
    describe.skip(`${name} [skipped: ${reason}]`, fn);
  };
}

/** `it`, or when `reason` is set a skipped `it` whose name carries the reason (see describeUnless). */
export function itUnless(
  reason: string | undefined,
): (name: string, fn: () => Promise<void> | void, timeout?: number) => void {
  if (reason === undefined) return it;
  return (name, fn, timeout) => {
    it.skip(`${name} [skipped: ${reason}]`, fn, timeout);
  };
}
