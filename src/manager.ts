// Wiring: informers → controllers → HTTP endpoints, started and stopped in order.
import type {
  KubeConfig,
  KubernetesObject,
  V1Endpoints,
  V1Pod,
  V1Service,
} from '@kubernetes/client-node';
import type { Config } from './config.ts';
import { EndpointsController, endpointsWriter } from './controllers/endpoints.ts';
import { eventRecorder } from './kube/events.ts';
import { Informer, type WatchEndReason } from './kube/informer.ts';
import { Throttle } from './kube/throttle.ts';
import {
  endpointsClient,
  podClient,
  serviceClient,
  transformEndpoints,
  transformPod,
  transformService,
} from './kube/resources.ts';
import type { Logger } from './log.ts';
import { createMetrics } from './metrics.ts';
import { untilAborted } from './signals.ts';
import { closeServer, serveMetrics, serveProbes, type Check } from './server.ts';

/** A reconcile running longer than this fails liveness: the work loop is stuck. */
const stuckAfterMs = 5 * 60_000;

export async function runManager(
  config: Config,
  kc: KubeConfig,
  log: Logger,
  stop: AbortSignal,
): Promise<void> {
  const metrics = createMetrics();
  const informers: Pick<
    Informer<KubernetesObject>,
    'name' | 'hasSynced' | 'run' | 'waitForSync' | 'size'
  >[] = [];
  const readyz: Check[] = [];
  const healthz: Check[] = [{ name: 'ping', check: () => undefined }];
  let endpoints: EndpointsController | undefined;

  // One budget for every request outrigger makes on its own initiative (writes and events).
  const throttle = new Throttle(config.kubeApiQps, config.kubeApiBurst);
  const mode = config.selectorMode;
  if (mode.kind !== 'off') {
    const namespaces = mode.kind === 'namespaces' ? mode.namespaces : undefined;
    const scoped = namespaces === undefined ? () => true : (ns: string) => namespaces.includes(ns);
    const common = (name: string) => ({
      name,
      kubeConfig: kc,
      namespaces,
      log,
      onWatchEnd: (reason: WatchEndReason) => {
        metrics.watchRestarts.inc({ informer: name, reason });
      },
    });
    const services = new Informer<V1Service>({
      client: serviceClient(kc),
      transform: transformService,
      ...common('services'),
    });
    const pods = new Informer<V1Pod>({
      client: podClient(kc),
      transform: transformPod,
      ...common('pods'),
    });
    const eps = new Informer<V1Endpoints>({
      client: endpointsClient(kc),
      transform: transformEndpoints,
      ...common('endpoints'),
    });
    informers.push(services, pods, eps);
    endpoints = new EndpointsController({
      services,
      pods,
      endpoints: eps,
      writer: endpointsWriter(kc, metrics, throttle),
      events: eventRecorder(kc, log, throttle),
      inScope: scoped,
      workers: config.concurrentEndpointSyncs,
      batchPeriodMs: config.endpointUpdatesBatchPeriodMs,
      log,
      metrics,
    });
    const ec = endpoints;
    healthz.push({
      name: 'endpoints-controller',
      check: () =>
        ec.controller.stuckForMs() > stuckAfterMs
          ? 'a reconcile has been running for over 5 minutes'
          : undefined,
    });
  }
  for (const inf of informers) {
    readyz.push({
      name: `informer-${inf.name}`,
      check: () => (inf.hasSynced() ? undefined : 'cache not synced'),
    });
  }

  const metricsServer = await serveMetrics(config.metricsBindAddress, metrics.registry);
  const probeServer = await serveProbes(config.healthProbeBindAddress, { healthz, readyz });
  log.info(
    {
      metrics: config.metricsBindAddress,
      probes: config.healthProbeBindAddress,
      selectorMode: mode,
    },
    'serving metrics and probes',
  );

  const informerStop = new AbortController();
  const running = informers.map((i) => i.run(informerStop.signal));
  let controllerDone: Promise<void> = Promise.resolve();
  if (endpoints !== undefined) {
    const started = Date.now();
    const synced = await Promise.all(informers.map((i) => i.waitForSync(stop)));
    if (synced.every(Boolean)) {
      log.info(
        {
          ms: Date.now() - started,
          objects: Object.fromEntries(informers.map((i) => [i.name, i.size()])),
        },
        'caches synced; starting the endpoints controller',
      );
      controllerDone = endpoints.run();
    }
  }

  await untilAborted(stop);
  log.info('shutting down: draining in-flight reconciles');
  endpoints?.shutDown();
  await controllerDone;
  informerStop.abort();
  await Promise.all(running);
  await Promise.all([closeServer(metricsServer), closeServer(probeServer)]);
}
