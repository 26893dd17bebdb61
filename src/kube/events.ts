import { hostname } from 'node:os';
import { CoreV1Api, type KubeConfig, type V1ObjectReference } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import type { Throttle } from './throttle.ts';

export interface EventRecorder {
  /** Records a core/v1 Event about `object`; never throws (event delivery is best effort). */
  event(
    object: V1ObjectReference,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): void;
}

/**
 * Writes core/v1 Events, the kind `kubectl describe` and `kubectl get events` show. Identical events
 * (same object, reason and message) within `dedupeMs` are dropped rather than counted, so a hot
 * retry loop cannot flood the API server.
 */
export function eventRecorder(
  kc: KubeConfig,
  log: Logger,
  throttle: Throttle,
  component = 'outrigger',
  dedupeMs = 60_000,
): EventRecorder {
  const core = kc.makeApiClient(CoreV1Api);
  const recent = new Map<string, number>();
  const instance = hostname();
  return {
    event(object, type, reason, message) {
      const key = `${object.namespace ?? ''}/${object.kind ?? ''}/${object.name ?? ''}/${reason}/${message}`;
      const now = Date.now();
      if ((recent.get(key) ?? 0) > now - dedupeMs) return;
      recent.set(key, now);
      if (recent.size > 10_000)
        for (const [k, t] of recent) if (t <= now - dedupeMs) recent.delete(k);
      const namespace = object.namespace ?? 'default';
      const ts = new Date(now);
      throttle
        .acquire()
        .then(() =>
          core.createNamespacedEvent({
            namespace,
            body: {
              metadata: { generateName: `${object.name ?? 'object'}.`, namespace },
              involvedObject: object,
              type,
              reason,
              message,
              source: { component },
              reportingComponent: component,
              reportingInstance: instance,
              firstTimestamp: ts,
              lastTimestamp: ts,
              count: 1,
            },
          }),
        )
        .catch((err: unknown) => {
          log.debug({ err: String(err), reason }, 'could not record an event');
        });
    },
  };
}
