// One sync of a Service's Endpoints, decided: from what gather read (caches, outrigger's own
// writes, the controller's memory of this key) to what apply must do. Pure, so that every decision
// of selector mode — upstream's syncService, the contest with another endpoints controller, the
// trigger time, the Events — is tested here without an API server (plan.test.ts).
import type { V1Endpoints, V1ObjectReference } from '@kubernetes/client-node';
import { labelEndpointsManagedBy, managerName } from '../../api/names.ts';
import type { CachedEndpoints, CachedPod, CachedService } from '../../runtime/cached.ts';
import { statusOf, type ApiError } from '../../runtime/rest.ts';
import { isSelectorService, planEndpoints } from '../../endpoints/desired.ts';
import { decideContest, maxHoldMs, wrote, type ContestState } from '../../endpoints/conflict.ts';
import { nextTriggerTime, type TriggerState } from '../../endpoints/triggertime.ts';

/** Everything one sync reads, as gather read it. */
export interface Observed {
  readonly namespace: string;
  readonly name: string;
  readonly service: CachedService | undefined;
  /** The Service's deletion was seen: its Endpoints go whoever wrote them (as upstream). */
  readonly serviceDeleted: boolean;
  /** The pods the Service selects (none when it has no selector). */
  readonly pods: readonly CachedPod[];
  /** The Endpoints as the cache shows it. */
  readonly endpoints: CachedEndpoints | undefined;
  /** The cache still shows a version of the Endpoints that outrigger's own write replaced. */
  readonly stale: boolean;
  /** This Service's contest state (endpoints/conflict.ts) and trigger-time memory. */
  readonly contest: ContestState;
  readonly trigger: TriggerState | undefined;
}

export interface PlannedEvent {
  readonly object: V1ObjectReference;
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

export type SelectorPlan =
  /** The Service is gone: delete the Endpoints (when `deleteEndpoints`) and forget the key. */
  | { readonly kind: 'serviceGone'; readonly deleteEndpoints: boolean }
  /** No selector, or ExternalName: upstream leaves such a Service's Endpoints alone. */
  | { readonly kind: 'notSelector' }
  /** The cache lags outrigger's own write: planning on it would write again; retry later. */
  | { readonly kind: 'staleCache'; readonly error: string }
  /** Another controller rewrote outrigger's Endpoints just now: report, write nothing, hold. */
  | {
      readonly kind: 'conflict';
      readonly contest: ContestState;
      readonly writer: string;
      readonly holdMs: number;
      readonly event: PlannedEvent;
    }
  /** Still holding off after a conflict, until `requeueAfterMs` from now. */
  | { readonly kind: 'hold'; readonly contest: ContestState; readonly requeueAfterMs: number }
  /** The Endpoints already say it; the trigger-time memory moves on. */
  | { readonly kind: 'upToDate'; readonly contest: ContestState; readonly trigger: TriggerState }
  /**
   * Create or replace the Endpoints. `contest` holds before the write; `afterWrite` and `trigger`
   * are remembered only once it succeeded.
   */
  | {
      readonly kind: 'write';
      readonly operation: 'create' | 'update';
      readonly endpoints: V1Endpoints;
      readonly truncated: boolean;
      readonly triggerTime: Date | undefined;
      readonly contest: ContestState;
      readonly afterWrite: ContestState;
      readonly trigger: TriggerState;
    };

/** Where a plan leaves the "holding off" gauge for this Service, while it is applied. */
export function holding(plan: SelectorPlan): boolean {
  return plan.kind === 'conflict' || plan.kind === 'hold';
}

export function planSync(o: Observed, now: number): SelectorPlan {
  const { service, endpoints: current } = o;
  const managedBy = current?.metadata?.labels?.[labelEndpointsManagedBy];
  if (service === undefined) {
    return { kind: 'serviceGone', deleteEndpoints: o.serviceDeleted || managedBy === managerName };
  }
  if (!isSelectorService(service)) return { kind: 'notSelector' };
  if (current !== undefined && o.stale) {
    return {
      kind: 'staleCache',
      error: `endpoints cache is out of date: resourceVersion ${current.metadata?.resourceVersion ?? ''} was already replaced`,
    };
  }

  const contest = decideContest(
    o.contest,
    current === undefined ? { kind: 'absent' } : { kind: 'present', managedBy },
    managerName,
    now,
  );
  if (contest.action === 'conflict') {
    return {
      kind: 'conflict',
      contest: contest.state,
      writer: contest.writer,
      holdMs: contest.holdMs,
      event: conflictEvent(service, o, contest.writer, contest.holdMs, contest.state.conflicts),
    };
  }
  if (contest.action === 'hold') {
    return { kind: 'hold', contest: contest.state, requeueAfterMs: contest.untilMs - now };
  }

  // Computed on every sync that gets this far, as upstream, so that the memory follows no-op
  // syncs too; remembered only once the sync has succeeded (see TriggerTimeTracker).
  const trigger = nextTriggerTime(o.trigger, service, o.pods);
  const plan = planEndpoints(service, o.pods, current, trigger.time);
  if (plan.action === 'none') {
    return { kind: 'upToDate', contest: contest.state, trigger: trigger.state };
  }
  return {
    kind: 'write',
    operation: plan.action,
    endpoints: plan.endpoints,
    truncated: plan.truncated,
    triggerTime: trigger.time,
    contest: contest.state,
    afterWrite: wrote(contest.state),
    trigger: trigger.state,
  };
}

function conflictEvent(
  service: CachedService,
  o: Observed,
  writer: string,
  holdMs: number,
  conflicts: number,
): PlannedEvent {
  const key = `${o.namespace}/${o.name}`;
  const uid = service.metadata?.uid;
  return {
    object: {
      kind: 'Service',
      apiVersion: 'v1',
      namespace: o.namespace,
      name: o.name,
      ...(uid ? { uid } : {}),
    },
    type: 'Warning',
    reason: 'EndpointsConflict',
    message: `Endpoints ${key} was rewritten by ${writer} after outrigger wrote it: two endpoints controllers serve this Service. outrigger writes nothing to it for ${formatDuration(holdMs)} (conflict ${String(conflicts)} in a row; each doubles the wait, up to ${formatDuration(maxHoldMs)}). Disable the other controller (kube-controller-manager --controllers=*,-endpoints-controller) or take this namespace out of --selector-mode.`,
  };
}

/**
 * What a failed write means. A create refused because the namespace is terminating is expected
 * (upstream ignores it too): the sync is over. Any other failure is reported on the Endpoints with
 * upstream's reasons and messages, and the sync fails so that the queue retries it.
 */
export function writeFailure(
  plan: Extract<SelectorPlan, { kind: 'write' }>,
  err: unknown,
): PlannedEvent | 'ignore' {
  if (plan.operation === 'create' && isForbiddenNamespaceTerminating(err)) return 'ignore';
  const { namespace = '', name = '', uid } = plan.endpoints.metadata ?? {};
  const key = `${namespace}/${name}`;
  return {
    object: { kind: 'Endpoints', apiVersion: 'v1', namespace, name, ...(uid ? { uid } : {}) },
    type: 'Warning',
    ...(plan.operation === 'create'
      ? {
          reason: 'FailedToCreateEndpoint',
          message: `Failed to create endpoint for service ${key}: ${String(err)}`,
        }
      : {
          reason: 'FailedToUpdateEndpoint',
          message: `Failed to update endpoint ${key}: ${String(err)}`,
        }),
  };
}

function isForbiddenNamespaceTerminating(err: unknown): boolean {
  return statusOf(err) === 403 && (err as ApiError).body.includes('NamespaceTerminating');
}

/** 60000 → "1m0s", as Go prints a time.Duration (kubectl users read these). */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const m = Math.floor(s / 60);
  return m > 0 ? `${String(m)}m${String(s % 60)}s` : `${String(s)}s`;
}
