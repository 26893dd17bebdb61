// Wiring: informers → controllers → HTTP endpoints, started and stopped in order.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import type { Config } from './config.ts';
import type { Controller } from './controller/runner.ts';
import { EndpointsController, endpointsWriter } from './controllers/endpoints.ts';
import { ExternalBackendController } from './controllers/externalbackend.ts';
import { labelSliceManagedBy, managerName } from './externalbackend/desired.ts';
import { group, plural, version } from './externalbackend/schema.ts';
import { backendWriter } from './kube/backendwriter.ts';
import { eventRecorder } from './kube/events.ts';
import { Informer, type ResourceClient, type WatchEndReason } from './kube/informer.ts';
import { Throttle } from './kube/throttle.ts';
import {
  customObjectClient,
  endpointSliceClient,
  endpointsClient,
  podClient,
  serviceClient,
  transformEndpointSlice,
  transformEndpoints,
  transformExternalBackend,
  transformPod,
  transformService,
} from './kube/resources.ts';
import { DenyList, defaultDeniedCidrs } from './net/denylist.ts';
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
  const events = eventRecorder(kc, log, throttle);
  const mode = config.selectorMode;
  const selectorNamespaces = mode.kind === 'namespaces' ? mode.namespaces : undefined;
  const backendNamespaces = config.watchNamespaces.length > 0 ? config.watchNamespaces : undefined;
  const inSelectorScope = (ns: string): boolean =>
    mode.kind === 'all' || (selectorNamespaces?.includes(ns) ?? false);
  const inBackendScope = (ns: string): boolean => backendNamespaces?.includes(ns) ?? true;
  // Services, Endpoints and Pods are shared by both controllers, watched over the union of scopes.
  const sharedNamespaces =
    mode.kind === 'off'
      ? backendNamespaces
      : selectorNamespaces === undefined || backendNamespaces === undefined
        ? undefined
        : [...new Set([...selectorNamespaces, ...backendNamespaces])];
  const informer = <T extends KubernetesObject>(
    name: string,
    namespaces: readonly string[] | undefined,
    client: ResourceClient<unknown>,
    transform: (raw: unknown) => T,
  ): Informer<T> => {
    const inf = new Informer<T>({
      name,
      kubeConfig: kc,
      namespaces,
      log,
      client,
      transform,
      onWatchEnd: (reason: WatchEndReason) => {
        metrics.watchRestarts.inc({ informer: name, reason });
      },
    });
    informers.push(inf);
    return inf;
  };
  const services = informer('services', sharedNamespaces, serviceClient(kc), transformService);
  const pods = informer('pods', sharedNamespaces, podClient(kc), transformPod);
  const eps = informer('endpoints', sharedNamespaces, endpointsClient(kc), transformEndpoints);
  const backends = informer(
    'externalbackends',
    backendNamespaces,
    customObjectClient(kc, group, version, plural),
    transformExternalBackend,
  );
  const slices = informer(
    'endpointslices',
    backendNamespaces,
    endpointSliceClient(kc, `${labelSliceManagedBy}=${managerName}`),
    transformEndpointSlice,
  );

  const controllers: { name: string; controller: Controller; run(): Promise<void> }[] = [];
  if (mode.kind !== 'off') {
    endpoints = new EndpointsController({
      services,
      pods,
      endpoints: eps,
      writer: endpointsWriter(kc, metrics, throttle),
      events,
      inScope: inSelectorScope,
      workers: config.concurrentEndpointSyncs,
      batchPeriodMs: config.endpointUpdatesBatchPeriodMs,
      log,
      metrics,
    });
    const ec = endpoints;
    controllers.push({ name: 'endpoints', controller: ec.controller, run: () => ec.run() });
  }
  const xbc = new ExternalBackendController({
    backends,
    services,
    endpoints: eps,
    slices,
    pods,
    writer: backendWriter(kc, metrics, throttle),
    events,
    denyList: new DenyList([...defaultDeniedCidrs, ...config.deniedCidrs]),
    probeConcurrency: config.maxConcurrentProbes,
    workers: config.concurrentExternalBackendSyncs,
    inScope: inBackendScope,
    log,
    metrics,
  });
  controllers.push({ name: 'externalbackend', controller: xbc.controller, run: () => xbc.run() });
  for (const c of controllers) {
    healthz.push({
      name: `${c.name}-controller`,
      check: () =>
        c.controller.stuckForMs() > stuckAfterMs
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
  let controllersDone: Promise<unknown> = Promise.resolve();
  const started = Date.now();
  const synced = await Promise.all(informers.map((i) => i.waitForSync(stop)));
  if (synced.every(Boolean)) {
    log.info(
      {
        ms: Date.now() - started,
        objects: Object.fromEntries(informers.map((i) => [i.name, i.size()])),
        controllers: controllers.map((c) => c.name),
      },
      'caches synced; starting controllers',
    );
    controllersDone = Promise.all(controllers.map((c) => c.run()));
  }

  await untilAborted(stop);
  log.info('shutting down: draining in-flight reconciles');
  endpoints?.shutDown();
  await xbc.shutDown();
  await controllersDone;
  informerStop.abort();
  await Promise.all(running);
  await Promise.all([closeServer(metricsServer), closeServer(probeServer)]);
}
