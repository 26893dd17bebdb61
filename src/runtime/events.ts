import { hostname } from 'node:os';
import type { V1ObjectReference } from '@kubernetes/client-node';
import type { Logger } from './log.ts';
import { TokenBucket } from './ratelimit.ts';
import { objectPath, type Rest } from './rest.ts';

export interface EventRecorder {
  /** Records a core/v1 Event about `object`; never throws and never waits (best effort). */
  event(
    object: V1ObjectReference,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): void;
}

export type EventResult = 'sent' | 'failed' | 'dropped' | 'duplicate' | 'throttled';

export interface EventRecorderOptions {
  readonly component?: string;
  /** Identical events (same object, reason and message) within this window are dropped. */
  readonly dedupeMs?: number;
  /** Pace of Event writes, on a budget of their own: they never wait in the writes' budget. */
  readonly qps?: number;
  readonly burst?: number;
  /** Events waiting to be sent; past this, new ones are dropped (and counted). */
  readonly maxQueued?: number;
  /**
   * Per object, as client-go's EventSourceObjectSpamFilter: a burst, then one event per refill
   * period, so one noisy object cannot use up the budget everyone shares.
   */
  readonly perObjectBurst?: number;
  readonly perObjectRefillMs?: number;
  readonly onResult?: (result: EventResult) => void;
  /** Asked before each send (leader election): a replica that lost its lease records nothing. */
  readonly mayWrite?: () => boolean;
  readonly now?: () => number;
}

/** Objects (and messages) remembered for the spam filter and dedupe; memory stays bounded. */
const maxTracked = 10_000;

/** Event messages are cut here (events.k8s.io/v1 notes allow 1 kB). */
export const maxMessageLength = 1024;

export interface PendingEvent {
  readonly object: V1ObjectReference;
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
  readonly at: number;
}

/**
 * Writes core/v1 Events, the kind `kubectl describe` and `kubectl get events` show, through a
 * bounded path of their own: a capped backlog, a rate of their own, duplicate suppression, and a
 * per-object spam filter. A flood of events from one tenant costs others nothing but their own
 * events' place in a queue that drops rather than grows.
 */
export function eventRecorder(
  rest: Rest,
  log: Logger,
  o: EventRecorderOptions = {},
): EventRecorder {
  const component = o.component ?? 'outrigger';
  const instance = hostname();
  return boundedEventRecorder(
    async (e) => {
      const namespace = e.object.namespace ?? 'default';
      const ts = new Date(e.at);
      await rest.request('POST', objectPath('/api/v1', 'events', namespace), {
        body: {
          metadata: { generateName: `${e.object.name ?? 'object'}.`, namespace },
          involvedObject: e.object,
          type: e.type,
          reason: e.reason,
          message: e.message,
          source: { component },
          reportingComponent: component,
          reportingInstance: instance,
          firstTimestamp: ts,
          lastTimestamp: ts,
          count: 1,
        },
      });
    },
    log,
    o,
  );
}

/** The bounded path itself, around any `send` (the API in production, a recorder in tests). */
export function boundedEventRecorder(
  send: (e: PendingEvent) => Promise<void>,
  log: Logger,
  o: EventRecorderOptions = {},
): EventRecorder {
  const dedupeMs = o.dedupeMs ?? 60_000;
  const maxQueued = o.maxQueued ?? 1000;
  const perObjectBurst = o.perObjectBurst ?? 25;
  const perObjectRefillMs = o.perObjectRefillMs ?? 5 * 60_000;
  const now = o.now ?? Date.now;
  const count = (r: EventResult): void => o.onResult?.(r);
  const bucket = new TokenBucket(o.qps ?? 10, o.burst ?? 25, now);
  const recent = new Map<string, number>();
  const perObject = new Map<string, { tokens: number; last: number }>();
  const queue: PendingEvent[] = [];
  let pumping = false;

  const allowedFor = (key: string, t: number): boolean => {
    const s = perObject.get(key) ?? { tokens: perObjectBurst, last: t };
    s.tokens = Math.min(perObjectBurst, s.tokens + (t - s.last) / perObjectRefillMs);
    s.last = t;
    // Re-inserted, so the map's order is least recently used first.
    perObject.delete(key);
    perObject.set(key, s);
    // Forget objects whose bucket has refilled (as good as new); past the cap, the oldest go first.
    if (perObject.size > maxTracked) {
      for (const [k, v] of perObject)
        if (v.tokens + (t - v.last) / perObjectRefillMs >= perObjectBurst) perObject.delete(k);
      for (const k of perObject.keys()) {
        if (perObject.size <= maxTracked) break;
        perObject.delete(k);
      }
    }
    if (s.tokens < 1) return false;
    s.tokens -= 1;
    return true;
  };

  const pump = async (): Promise<void> => {
    pumping = true;
    try {
      for (let e = queue.shift(); e !== undefined; e = queue.shift()) {
        const wait = bucket.when();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait).unref());
        if (o.mayWrite?.() === false) {
          count('dropped');
          continue;
        }
        try {
          await send(e);
          count('sent');
        } catch (err) {
          count('failed');
          log.debug({ err: String(err), reason: e.reason }, 'could not record an event');
        }
      }
    } finally {
      pumping = false;
    }
  };

  return {
    event(object, type, reason, message) {
      const t = now();
      const objectKey = `${object.namespace ?? ''}/${object.kind ?? ''}/${object.name ?? ''}`;
      const key = `${objectKey}/${reason}/${message}`;
      if ((recent.get(key) ?? -Infinity) > t - dedupeMs) {
        count('duplicate');
        return;
      }
      recent.set(key, t);
      if (recent.size > 10_000)
        for (const [k, at] of recent) if (at <= t - dedupeMs) recent.delete(k);
      if (!allowedFor(objectKey, t)) {
        count('throttled');
        return;
      }
      if (queue.length >= maxQueued) {
        count('dropped');
        return;
      }
      const cut =
        message.length > maxMessageLength ? `${message.slice(0, maxMessageLength - 1)}…` : message;
      queue.push({ object, type, reason, message: cut, at: t });
      if (!pumping)
        pump().catch((err: unknown) => {
          log.warn({ err: String(err) }, 'event sender stopped');
        });
    },
  };
}
