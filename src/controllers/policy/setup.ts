import type { CachedPolicy } from '../../api/resources.ts';
import type { ControllerHost } from '../../runtime/host.ts';
import type { Informer } from '../../runtime/informer.ts';
import type { Logger } from '../../runtime/log.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import type { Rest } from '../../runtime/rest.ts';
import { EffectivePolicyController } from './controller.ts';
import { policyWriter } from './writer.ts';

export interface PolicySetup {
  readonly rest: Rest;
  readonly policies: Informer<CachedPolicy>;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Told when the effective policy freezes or thaws: every backend is judged again. */
  readonly onFrozenChange: () => void;
}

/** Builds the controller of the effective address policy and registers it with the manager. */
export function setupPolicy(host: ControllerHost, s: PolicySetup): EffectivePolicyController {
  const c = new EffectivePolicyController({
    policies: s.policies,
    writer: policyWriter(s.rest, s.metrics),
    log: s.log,
    metrics: s.metrics,
    onFrozenChange: s.onFrozenChange,
  });
  host.add({
    name: 'externalbackendpolicy',
    controller: c.controller,
    run: () => c.run(),
    shutDown: () => {
      c.shutDown();
    },
  });
  return c;
}
