// Every decision of one reconcile, as a pure function of what gather.ts read: whether the backend
// is forgotten, the probe targets and DNS names it keeps, the writes (operations.ts), the status
// and Events (finish.ts), and when to look again. apply.ts executes the result and nothing else.
import type { Target } from '../../health/scheduler.ts';
import { serviceName } from './service.ts';
import { planFinish, soonest, type Failure, type Finish } from './finish.ts';
import type { Gathered } from './gather.ts';
import { planOperations, type Operation, type PlannedEvent } from './operations.ts';
import { planBackend } from './plan.ts';
import type { Problem } from './ready.ts';
import type { StatusInput } from './status.ts';

/** How soon a backend whose namespace's caches are still filling looks again. */
export const cacheWaitMs = 100;

export interface ReconcilePlan {
  /** The backend is gone: drop what is kept for it (probes, names, state, metric series). */
  readonly forget: boolean;
  /** The probe targets, DNS names and limit flag it keeps; absent: left as they are. */
  readonly keep?: {
    readonly probes: readonly Target[];
    readonly names: readonly string[];
    readonly limited: boolean;
    /** Said once the probe targets are set. */
    readonly events: readonly PlannedEvent[];
  };
  readonly operations: readonly Operation[];
  /** What the status is made of, to plan it again with the problem should a write fail. */
  readonly statusInput?: StatusInput;
  readonly finish?: Finish | undefined;
  readonly requeueAfterMs?: number | undefined;
}

const noOps = { operations: [] } as const;

const podSelectorDisabled =
  'spec.podSelector is not enabled in this installation (outrigger runs with --pod-selector=false, chart value podSelector.enabled, and may not read pods): remove podSelector, or ask the platform team to enable it; what was published before stays as it is';

export function planReconcile(g: Gathered): ReconcilePlan {
  const b = g.backend;
  // Garbage collection removes what we own; only our own bookkeeping is left to drop.
  if (b === undefined) return { forget: true, ...noOps };
  const now = new Date(g.now);
  const base = {
    generation: b.generation,
    previous: b.previous,
    now,
    certificateWarningMs: g.settings.certificateWarningMs,
  };
  const held = (problem: { reason: Problem; message: string }): ReconcilePlan => {
    const statusInput: StatusInput = {
      ...base,
      views: [],
      counts: { ready: 0, total: 0 },
      failOpen: false,
      problem,
    };
    return {
      forget: false,
      keep: { probes: [], names: [], limited: false, events: [] },
      ...noOps,
      statusInput,
      ...withFinish(g, statusInput),
    };
  };
  if (!b.spec.success) {
    const issue = b.spec.error.issues[0];
    const message = `spec is invalid at ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`;
    return held({ reason: 'InvalidSpec', message });
  }
  // Admission refuses podSelector in such an install; one that got past it (created before the
  // switch, or with the admission policy off) is held as it is, neither published anew nor
  // withdrawn, and says why: outrigger holds no permission to read pods.
  if (b.spec.data.podSelector !== undefined && !b.podSelectorServed)
    return held({ reason: 'PodSelectorDisabled', message: podSelectorDisabled });
  // The namespace has only just started being watched (its first backend): publishing now would
  // publish without the pods or the Service, so wait for its caches.
  if (b.world === undefined) return { forget: false, ...noOps, requeueAfterMs: cacheWaitMs };
  const plan = planBackend(b.world);
  const { ref } = b;
  const limit = g.settings.maxProbeTargetsPerNamespace;
  const statusInput: StatusInput = {
    ...base,
    service: serviceName(ref, b.spec.data),
    views: plan.views,
    counts: plan.counts,
    failOpen: plan.failOpen,
    names: plan.resolutions,
    drainUnmatched: plan.drainUnmatched,
    leftOut: plan.leftOut,
    checkRefused: plan.checkRefused,
    checkSourcesLost: b.checkSourcesLost,
    policyFrozen: plan.policyFrozen,
    nodeGrants: plan.nodeGrants,
    foreignEndpoints: plan.foreignEndpoints,
    backups: plan.backups,
    problem: plan.refused,
  };
  return {
    forget: false,
    keep: {
      probes: plan.probes,
      names: plan.names,
      limited: plan.unchecked.size > 0,
      events:
        plan.unchecked.size > 0
          ? [
              {
                type: 'Warning',
                reason: 'ProbeLimitReached',
                message: `${String(plan.unchecked.size)} addresses are not checked and are published not ready: namespace ${ref.namespace} has reached its limit of ${String(limit)} health-check targets`,
              },
            ]
          : [],
    },
    operations: planOperations(plan),
    statusInput,
    ...withFinish(g, statusInput),
  };
}

function withFinish(
  g: Gathered,
  statusInput: StatusInput,
): Pick<ReconcilePlan, 'finish' | 'requeueAfterMs'> {
  const finish = planFinish(statusInput, g.backend?.statusWrittenAt, g.settings.statusBatchMs);
  return { finish, requeueAfterMs: finish.requeueAfterMs };
}

/**
 * The plan once a write failed: the status says why (its Ready reason from classifyFailure), and
 * the backend looks again when the failure asks. A failure that is only cache lag writes nothing.
 */
export function planAfterFailure(
  g: Gathered,
  plan: ReconcilePlan,
  failure: Failure,
): ReconcilePlan {
  if (failure.problem === undefined || plan.statusInput === undefined)
    return { ...plan, operations: [], finish: undefined, requeueAfterMs: undefined };
  const statusInput = { ...plan.statusInput, problem: failure.problem };
  const after = withFinish(g, statusInput);
  return {
    ...plan,
    statusInput,
    finish: after.finish,
    requeueAfterMs: soonest(after.requeueAfterMs, failure.requeueAfterMs),
  };
}
