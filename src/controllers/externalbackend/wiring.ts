// The probe scheduler and the resolver of spec.dnsNames as the ExternalBackend controller needs
// them: their results counted in metrics and turned into the backend keys they concern. Built by
// setup.ts and handed to the controller, so that a test can hand it fakes instead.
import type { LookupOutcome, ResolutionLimits } from '../../dns/resolution.ts';
import { NameResolver } from '../../dns/resolver.ts';
import { ProbeScheduler } from '../../health/scheduler.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import type { DenyList } from '../../net/denylist.ts';
import { backendKeyOfTarget } from './keys.ts';

type Wake = (backendKey: string) => void;

export function backendScheduler(
  o: {
    readonly denyList: Pick<DenyList, 'denies' | 'nodeAddress'>;
    readonly concurrency: number;
    readonly metrics: Metrics;
    /** An error escaped a probe (a bug): logged and counted by the caller. */
    readonly onError?: (err: unknown) => void;
  },
  wake: Wake,
): ProbeScheduler {
  return new ProbeScheduler({
    denyList: o.denyList,
    concurrency: o.concurrency,
    onResult: (target, _health, result, changed) => {
      o.metrics.probeDuration.observe({ kind: target.spec.kind }, result.seconds);
      o.metrics.probeTotal.inc({ result: result.ok ? 'success' : 'failure' });
      if (changed) wake(backendKeyOfTarget(target.key));
    },
    onLag: (seconds) => {
      o.metrics.probeScheduleLag.observe(seconds);
    },
    onError: (_target, err) => {
      o.onError?.(err);
    },
  });
}

export function backendResolver(
  o: {
    /** The one lookup function (see dns/lookup.ts) and its limits. */
    readonly lookup: (name: string) => Promise<LookupOutcome>;
    readonly limits: ResolutionLimits;
    readonly concurrency: number;
    /** An unchanged answer is reported (and its resolvedAt written) at most this often. */
    readonly refreshMs: number;
    readonly metrics: Metrics;
    readonly onError?: (err: unknown) => void;
  },
  wake: Wake,
): NameResolver {
  return new NameResolver({
    lookup: o.lookup,
    limits: o.limits,
    concurrency: o.concurrency,
    refreshMs: o.refreshMs,
    onChange: (_name, owners) => {
      for (const owner of owners) wake(owner);
    },
    onLookup: (outcome, seconds) => {
      const result = outcome.ips.length > 0 && outcome.errors.length === 0 ? 'success' : 'failure';
      o.metrics.dnsLookups.inc({ result });
      o.metrics.dnsLookupDuration.observe(seconds);
    },
    onError: (_name, err) => {
      o.onError?.(err);
    },
  });
}
