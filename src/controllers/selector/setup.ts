import type { CachedEndpoints, CachedPod, CachedService } from '../../runtime/cached.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { ControllerHost } from '../../runtime/host.ts';
import type { Informer } from '../../runtime/informer.ts';
import type { Logger } from '../../runtime/log.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import type { Throttle } from '../../runtime/throttle.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import { EndpointsController } from './controller.ts';
import { endpointsWriter } from './writer.ts';

export interface SelectorSetup {
  readonly kubeConfig: KubeConfig;
  readonly services: Informer<CachedService>;
  readonly pods: Informer<CachedPod>;
  readonly endpoints: Informer<CachedEndpoints>;
  readonly events: EventRecorder;
  readonly throttle: Throttle;
  readonly inScope: (namespace: string) => boolean;
  /** --concurrent-endpoint-syncs */
  readonly workers: number;
  /** --endpoint-updates-batch-period */
  readonly batchPeriodMs: number;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** Builds selector mode's endpoints controller and registers it with the manager. */
export function setupSelector(host: ControllerHost, s: SelectorSetup): EndpointsController {
  const c = new EndpointsController({
    services: s.services,
    pods: s.pods,
    endpoints: s.endpoints,
    writer: endpointsWriter(s.kubeConfig, s.metrics, s.throttle),
    events: s.events,
    inScope: s.inScope,
    workers: s.workers,
    batchPeriodMs: s.batchPeriodMs,
    log: s.log,
    metrics: s.metrics,
  });
  host.add({
    name: 'endpoints',
    controller: c.controller,
    run: () => c.run(),
    shutDown: () => {
      c.shutDown();
    },
  });
  return c;
}
