import type { CachedPod, CachedService } from '../runtime/cached.ts';
import { podReadyTransitionTime } from './pod.ts';

/** What the tracker remembers of one Service after a successful sync. */
export interface TriggerState {
  readonly serviceTriggerTime: number;
  readonly podTriggerTimes: ReadonlyMap<string, number>;
}

/**
 * `endpoints.kubernetes.io/last-change-trigger-time` as upstream's TriggerTimeTracker computes it:
 * the earliest of the changes seen since the previous sync (a pod's Ready transition that moved
 * forward, or the Service's creation), the Service's creation on its first sync (`previous`
 * undefined), and nothing (the annotation is then removed) when no such change happened, e.g.
 * when a pod was deleted. Pure: `state` is what to remember once the sync has succeeded.
 */
export function nextTriggerTime(
  previous: TriggerState | undefined,
  service: CachedService,
  pods: readonly CachedPod[],
): { time: Date | undefined; state: TriggerState } {
  let min: number | undefined;
  const podTriggerTimes = new Map<string, number>();
  for (const pod of pods) {
    const t = podReadyTransitionTime(pod)?.getTime();
    if (t === undefined || Number.isNaN(t)) continue;
    const name = pod.metadata?.name ?? '';
    podTriggerTimes.set(name, t);
    if (t > (previous?.podTriggerTimes.get(name) ?? Number.NEGATIVE_INFINITY)) {
      min = min === undefined ? t : Math.min(min, t);
    }
  }
  const created = service.metadata?.creationTimestamp;
  const serviceTriggerTime = created === undefined ? 0 : new Date(created).getTime();
  if (serviceTriggerTime > (previous?.serviceTriggerTime ?? Number.NEGATIVE_INFINITY)) {
    min = min === undefined ? serviceTriggerTime : Math.min(min, serviceTriggerTime);
  }
  const state = { serviceTriggerTime, podTriggerTimes };
  if (previous === undefined) {
    return { time: created === undefined ? undefined : new Date(created), state };
  }
  return { time: min === undefined ? undefined : new Date(min), state };
}

/**
 * The per-Service memory behind nextTriggerTime. In-memory only, as upstream: after a restart
 * every Service counts as new again.
 *
 * One deliberate difference: the new state is kept only when the caller commits it, after its sync
 * has succeeded. Upstream records it even when the sync then fails (conflict, stale cache), so the
 * retry that finally writes carries no trigger time although it publishes the change.
 */
export class TriggerTimeTracker {
  private readonly services = new Map<string, TriggerState>();

  get(serviceKey: string): TriggerState | undefined {
    return this.services.get(serviceKey);
  }

  set(serviceKey: string, state: TriggerState): void {
    this.services.set(serviceKey, state);
  }

  delete(serviceKey: string): void {
    this.services.delete(serviceKey);
  }
}

/** RFC 3339 with nanoseconds, as Go's time.RFC3339Nano prints it (trailing zeros trimmed). */
export function formatRFC3339Nano(d: Date): string {
  const iso = d.toISOString(); // 2026-01-02T03:04:05.678Z
  const [base, frac = '000Z'] = iso.split('.');
  const digits = frac.slice(0, -1).replace(/0+$/, '');
  return digits === '' ? `${base ?? ''}Z` : `${base ?? ''}.${digits}Z`;
}
