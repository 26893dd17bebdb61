// Runs one scenario on two clusters at once — one where kube-controller-manager's
// endpoints-controller writes Endpoints, one where outrigger does — and after the set-up and after
// every step waits until both clusters show the same normalized Endpoints, steadily.
import { isDeepStrictEqual } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import { ScenarioDriver } from './driver.ts';
import { describeDifference, normalize, type Normalized } from './normalize.ts';
import { comparedServices, type Scenario } from './scenario.ts';

export interface Side {
  readonly name: 'upstream' | 'outrigger';
  readonly kubeConfig: KubeConfig;
}

export interface StepResult {
  readonly step: string;
  readonly matched: boolean;
  readonly ms: number;
  readonly detail?: string;
  readonly snapshot: Record<string, Normalized>;
}

/** How long both sides must agree, unchanged, before a step counts as matched. */
const stableMs = 600;

async function snapshot(
  driver: ScenarioDriver,
  services: readonly string[],
  ignoreTriggerTimePresence: boolean,
): Promise<Record<string, Normalized>> {
  const out: Record<string, Normalized> = {};
  for (const s of services)
    out[s] = normalize(await driver.readEndpoints(s), ignoreTriggerTimePresence);
  return out;
}

export async function runScenario(
  s: Scenario,
  upstream: Side,
  outrigger: Side,
  timeoutMs = 30_000,
): Promise<StepResult[]> {
  const ns = `diff-${s.name}`.slice(0, 63);
  const u = new ScenarioDriver(upstream.kubeConfig, ns);
  const o = new ScenarioDriver(outrigger.kubeConfig, ns);
  const services = comparedServices(s);
  const results: StepResult[] = [];

  const converge = async (step: string): Promise<StepResult> => {
    const started = Date.now();
    let agreedSince: number | undefined;
    let last: { u: Record<string, Normalized>; o: Record<string, Normalized> } | undefined;
    for (;;) {
      const ignore = s.ignoreTriggerTimePresence !== undefined;
      const [su, so] = await Promise.all([
        snapshot(u, services, ignore),
        snapshot(o, services, ignore),
      ]);
      const same = isDeepStrictEqual(su, so);
      const unchanged =
        last !== undefined && isDeepStrictEqual(last.u, su) && isDeepStrictEqual(last.o, so);
      if (same && unchanged) {
        agreedSince ??= Date.now();
        if (Date.now() - agreedSince >= stableMs)
          return { step, matched: true, ms: Date.now() - started, snapshot: su };
      } else {
        agreedSince = same ? Date.now() : undefined;
      }
      last = { u: su, o: so };
      if (Date.now() - started > timeoutMs) {
        const detail = services
          .filter((svc) => !isDeepStrictEqual(su[svc], so[svc]))
          .map((svc) => describeDifference(svc, su[svc] ?? null, so[svc] ?? null))
          .join('\n');
        return { step, matched: false, ms: Date.now() - started, detail, snapshot: su };
      }
      await delay(100);
    }
  };

  await Promise.all([u.setup(s), o.setup(s)]);
  results.push(await converge('set-up'));
  for (const step of s.steps) {
    if (results.some((r) => !r.matched)) break;
    for (const op of step.ops) await Promise.all([u.apply(op), o.apply(op)]);
    results.push(await converge(step.desc));
  }
  return results;
}
