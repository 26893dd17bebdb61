// The address-policy compiler: keeps `outrigger-effective`, the object the admission policy reads,
// equal to the union of every ExternalBackendPolicy grant object, and reports whether policy
// decisions are frozen. One key; gather (the grants cache) → plan (pure) → apply (one apply).
import { Controller, type ReconcileResult } from '../../runtime/runner.ts';
import { realClock, type Clock } from '../../runtime/clock.ts';
import { isPermanent, type Informer } from '../../runtime/informer.ts';
import type { InformerView } from '../../runtime/store.ts';
import { ExponentialBackoff, MaxOf, TokenBucket } from '../../runtime/ratelimit.ts';
import type { PolicyWriter } from './writer.ts';
import type { CachedPolicy } from '../../api/resources.ts';
import type { Logger } from '../../runtime/log.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import { compileEffective, loadPolicies, type LoadedPolicy } from '../../policy/evaluate.ts';
import { effectivePolicyName, maxEffectiveRules, type PolicySpec } from '../../api/policy.ts';

export const controllerName = 'externalbackendpolicy';
const key = 'cluster/effective';
/**
 * A watch that fails for this long (or for good: no RBAC, no CRD) makes the grants unreadable.
 * A shorter blip is the informer re-listing, during which the last grants still stand.
 */
const unreadableAfterMs = 30_000;
/** How often the compiler looks again without an event: a failing watch sends none. */
const resyncMs = 10_000;
const labels = { 'app.kubernetes.io/managed-by': 'outrigger' };

/** What the compiler reads of the policies informer: its objects and whether it can read them. */
export type PolicyCache = InformerView<CachedPolicy> &
  Pick<Informer<CachedPolicy>, 'failure' | 'hasSynced'>;

/**
 * The grants as the cache has them. Unreadable — not listed yet, or a list or watch failing for
 * good or for long — is "missing", never "no rules": a permission lost during an uninstall must
 * freeze decisions, not withdraw every tenant's addresses.
 */
export function readPolicies(inf: PolicyCache, now: number): LoadedPolicy {
  const f = inf.failure();
  if (!inf.hasSynced()) return loadPolicies([], f?.message ?? 'not listed yet');
  if (f !== undefined && (isPermanent(f) || now - f.since >= unreadableAfterMs))
    return loadPolicies([], f.message);
  return loadPolicies(inf.list());
}

/** Canonical JSON (sorted keys), so that key order never makes an apply. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

export interface EffectivePlan {
  /** The compiled spec to apply; undefined when the object already says it, or grants are missing. */
  readonly apply?: PolicySpec;
  /** The object exists: its rules are replaced whole (see policywriter.ts), not applied over. */
  readonly replace?: true;
  /** Why decisions are frozen, when they are. */
  readonly frozen?: string;
  /**
   * Why the compiled object cannot say the grants (more rules than it may hold): nothing is
   * written, so admission judges by what it last said, and the reconciler alone by the grants.
   */
  readonly uncompilable?: string;
  readonly rules: number;
}

export function planEffective(
  policy: LoadedPolicy,
  current: CachedPolicy | undefined,
): EffectivePlan {
  const compiled = compileEffective(policy);
  if (compiled === undefined)
    return { frozen: policy.state === 'missing' ? policy.message : 'unknown', rules: 0 };
  if (compiled.rules.length > maxEffectiveRules)
    return {
      uncompilable: `the grant objects hold ${String(compiled.rules.length)} rules, more than the ${String(maxEffectiveRules)} the object ${effectivePolicyName} may hold for admission; merge rules (a rule takes up to 32 CIDRs)`,
      rules: compiled.rules.length,
    };
  const same = current !== undefined && canonical(current.spec ?? {}) === canonical(compiled);
  if (same) return { rules: compiled.rules.length };
  return {
    apply: compiled,
    ...(current !== undefined ? { replace: true as const } : {}),
    rules: compiled.rules.length,
  };
}

export interface EffectivePolicyOptions {
  readonly policies: PolicyCache;
  readonly writer: PolicyWriter;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Called when decisions freeze or thaw: every backend's status says so. */
  readonly onFrozenChange: () => void;
  /** Times the look-again, retries and the grace before unreadable grants freeze decisions. */
  readonly clock?: Clock;
}

export class EffectivePolicyController {
  readonly controller: Controller;
  private readonly o: EffectivePolicyOptions;
  private readonly clock: Clock;
  private frozen: string | undefined;
  private uncompilable: string | undefined;

  constructor(o: EffectivePolicyOptions) {
    this.o = o;
    this.clock = o.clock ?? realClock;
    const clock = this.clock;
    this.controller = new Controller({
      name: controllerName,
      workers: 1,
      maxRetries: Number.POSITIVE_INFINITY,
      log: o.log,
      metrics: o.metrics,
      clock,
      // A failing apply is retried at least as often as the compiler looks again anyway: the
      // backoff stops growing at resyncMs instead of client-go's 1000 s.
      rateLimiter: new MaxOf(
        new ExponentialBackoff(5, resyncMs),
        new TokenBucket(10, 100, () => clock.now()),
      ),
    });
    const enqueue = (): void => {
      this.controller.queue.add(key);
    };
    o.policies.addHandlers({ add: enqueue, update: enqueue, delete: enqueue });
  }

  run(): Promise<void> {
    this.controller.queue.add(key);
    return this.controller.run(() => this.reconcile());
  }

  shutDown(): void {
    this.controller.shutDown();
  }

  async reconcile(): Promise<ReconcileResult> {
    const now = this.clock.now();
    const policy = readPolicies(this.o.policies, now);
    const plan = planEffective(policy, this.o.policies.get('', effectivePolicyName));
    this.o.metrics.addressPolicyFrozen.set(plan.frozen === undefined ? 0 : 1);
    if (plan.frozen === undefined) this.o.metrics.addressPolicyRules.set(plan.rules);
    this.o.metrics.addressPolicyUncompilable.set(plan.uncompilable === undefined ? 0 : 1);
    if (plan.uncompilable !== undefined && plan.uncompilable !== this.uncompilable)
      this.o.log.error(
        { why: plan.uncompilable },
        'the grants cannot be compiled for admission; admission keeps judging by the last compiled grants',
      );
    this.uncompilable = plan.uncompilable;
    if (plan.frozen !== this.frozen) {
      if (plan.frozen !== undefined)
        this.o.log.warn(
          { why: plan.frozen },
          'address policy frozen: published addresses stay, new ones wait for readable grants',
        );
      else if (this.frozen !== undefined) this.o.log.info('address policy readable again');
      this.frozen = plan.frozen;
      this.o.onFrozenChange();
    }
    if (plan.apply !== undefined)
      await this.o.writer.applyEffective(plan.apply, labels, plan.replace === true);
    return { requeueAfterMs: resyncMs };
  }
}
