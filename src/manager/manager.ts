// Wiring: informers → controllers → HTTP endpoints, started and stopped in order.
import { labelSliceManagedBy, managerName } from '../api/names.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import type { CachedObject } from '../runtime/cached.ts';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError, type Config } from './config.ts';
import type { Controller } from '../runtime/runner.ts';
import { EndpointsController, endpointsWriter } from '../controllers/selector/controller.ts';
import { ExternalBackendController } from '../controllers/externalbackend/controller.ts';

import { group, maxAddressesPerName, plural, version } from '../api/externalbackend.ts';
import { dnsLookup } from '../dns/lookup.ts';
import { resolvedAtRefreshMs } from '../dns/resolution.ts';
import { backendWriter } from '../controllers/externalbackend/writer.ts';
import { backendResolver, backendScheduler } from '../controllers/externalbackend/wiring.ts';
import { realClock } from '../runtime/clock.ts';
import { eventRecorder } from '../runtime/events.ts';
import { Informer, type ResourceClient, type WatchEndReason } from '../runtime/informer.ts';
import { followBackendNamespaces } from '../controllers/externalbackend/scopes.ts';
import { Throttle } from '../runtime/throttle.ts';
import {
  customObjectClient,
  endpointSliceClient,
  namespaceClient,
  nodeClient,
  transformNamespace,
  transformNode,
  transformPolicy,
  transformServiceCIDR,
  transformSliceAddresses,
  endpointsClient,
  podClient,
  probeSourceClient,
  serviceClient,
  transformConfigMap,
  transformSecret,
  transformEndpointSlice,
  transformEndpoints,
  transformExternalBackend,
  transformPod,
  transformService,
} from '../api/resources.ts';
import { builtinDeniedRanges } from '../net/denylist.ts';
import { ClusterRanges } from '../policy/clusterranges.ts';
import { policyPlural } from '../api/policy.ts';
import { EffectivePolicyController } from '../controllers/policy/controller.ts';
import { policyWriter } from '../controllers/policy/writer.ts';
import { probeRefLabel } from '../health/kinds/index.ts';
import type { Logger } from '../runtime/log.ts';
import { createMetrics, type Metrics } from '../runtime/metrics.ts';
import { inClusterNamespace, observeRequests, serviceAccountOf } from '../runtime/client.ts';
import { version as outriggerVersion } from '../runtime/version.ts';
import { LeaderElector } from '../runtime/leaderelection.ts';
import { sleep, untilAborted } from '../runtime/signals.ts';
import { errorReporter, installLastResort } from '../runtime/errors.ts';
import {
  closeServer,
  metricsMinTlsVersion,
  serveMetrics,
  serveProbes,
  type Check,
  type SecureMetrics,
} from './server.ts';
import { MetricsAuthorizer, kubeReviewer } from './metricsauth.ts';
import { readKeyPair, selfSignedKeyPair, watchKeyPair, type KeyPair } from './metricstls.ts';

function leaderElector(
  config: Config,
  kc: KubeConfig,
  log: Logger,
  metrics: Metrics,
): LeaderElector {
  const namespace = config.leaderElectionNamespace ?? inClusterNamespace();
  if (namespace === undefined)
    throw new ConfigError('--leader-election-namespace is required when running outside a cluster');
  const name = config.leaderElectionId;
  metrics.leaderStatus.set({ name }, 0);
  return new LeaderElector({
    kubeConfig: kc,
    namespace,
    name,
    identity: `${hostname()}_${randomUUID()}`,
    leaseDurationMs: config.leaseDurationMs,
    renewDeadlineMs: config.renewDeadlineMs,
    retryPeriodMs: config.retryPeriodMs,
    log,
    onLeading: (leading) => {
      metrics.leaderStatus.set({ name }, leading ? 1 : 0);
    },
  });
}

/** The certificate and the reviews of the secure metrics endpoint; undefined when it is plain. */
async function secureMetrics(
  config: Config,
  kc: KubeConfig,
  log: Logger,
  metrics: Metrics,
): Promise<SecureMetrics | undefined> {
  if (!config.metricsSecure || config.metricsBindAddress === '0') return undefined;
  let keyPair: KeyPair;
  if (config.metricsCertPath === '') {
    keyPair = await selfSignedKeyPair();
    log.info('no --metrics-cert-path: serving metrics with a self-signed certificate');
  } else {
    try {
      keyPair = await readKeyPair({
        dir: config.metricsCertPath,
        certName: config.metricsCertName,
        keyName: config.metricsCertKey,
      });
    } catch (err) {
      throw new ConfigError(
        `--metrics-cert-path: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
  const authorizer = new MetricsAuthorizer(kubeReviewer(kc));
  return {
    keyPair,
    authorizer,
    onDecision: (d) => {
      metrics.metricsAuth.inc({ result: d.outcome, cached: String(d.cached) });
      // A failed review is the operator's problem (its RBAC, the API server), worth a line each
      // time it is really asked; refusals of strangers are counted, not logged.
      if (d.outcome === 'error' && !d.cached)
        log.error({ err: d.error }, 'cannot review a metrics scrape');
    },
  };
}

/** A reconcile running longer than this fails liveness: the work loop is stuck. */
const stuckAfterMs = 5 * 60_000;

export async function runManager(
  config: Config,
  kubeConfig: KubeConfig,
  log: Logger,
  stop: AbortSignal,
): Promise<void> {
  const metrics = createMetrics();
  const kc = observeRequests(
    kubeConfig,
    (method, code, seconds, host) => {
      metrics.restRequests.inc({ method, code });
      metrics.restRequestDuration.observe({ verb: method, host }, seconds);
    },
    `outrigger/${outriggerVersion} (${process.platform}/${process.arch})`,
  );
  const report = errorReporter(log, (source) => {
    metrics.unhandledErrors.inc({ source });
  });
  const uninstallLastResort = installLastResort(report);
  const informers: Pick<
    Informer<CachedObject>,
    'name' | 'hasSynced' | 'run' | 'waitForSync' | 'size'
  >[] = [];
  const readyz: Check[] = [];
  const healthz: Check[] = [{ name: 'ping', check: () => undefined }];
  let endpoints: EndpointsController | undefined;

  // One budget for the writes outrigger makes on its own initiative; Events have their own bounded
  // path, so a flood of them never delays a write.
  // Every replica keeps its caches warm; only the leader runs controllers (and so writes and
  // probes), and every write and Event first asks whether the lease is still held.
  const elector = config.leaderElect ? leaderElector(config, kc, log, metrics) : undefined;
  const mayWrite = (): boolean => elector?.isLeading() ?? true;
  const throttle = new Throttle(config.kubeApiQps, config.kubeApiBurst, mayWrite);
  const events = eventRecorder(kc, log, {
    mayWrite,
    onResult: (result) => {
      metrics.events.inc({ result });
    },
  });
  const mode = config.selectorMode;
  const selectorNamespaces = mode.kind === 'namespaces' ? mode.namespaces : undefined;
  const backendNamespaces = config.watchNamespaces.length > 0 ? config.watchNamespaces : undefined;
  const inSelectorScope = (ns: string): boolean =>
    mode.kind === 'all' || (selectorNamespaces?.includes(ns) ?? false);
  const inBackendScope = (ns: string): boolean => backendNamespaces?.includes(ns) ?? true;
  // Services, Endpoints and Pods are shared by both controllers. Selector mode over every
  // namespace watches them cluster-wide; otherwise they start with the selector scope and follow
  // the namespaces that have ExternalBackends (see controllers/externalbackend/scopes.ts).
  const followed = mode.kind === 'all' ? undefined : (selectorNamespaces ?? []);
  const sharedNamespaces = followed;
  // Informers whose sync gates readiness; the cluster-range ones may never sync (no RBAC) and are
  // waited for separately, with a bound.
  const rangeInformers: Pick<Informer<CachedObject>, 'run'>[] = [];
  const informer = <T extends CachedObject>(
    name: string,
    namespaces: readonly string[] | undefined,
    client: ResourceClient<unknown>,
    transform: (raw: unknown) => T,
    gatesReadiness = true,
    resyncPeriodMs = 0,
  ): Informer<T> => {
    const inf = new Informer<T>({
      name,
      kubeConfig: kc,
      namespaces,
      log,
      client,
      transform,
      resyncPeriodMs,
      stallTimeoutMs: config.watchStallTimeoutMs,
      onWatchEnd: (reason: WatchEndReason) => {
        metrics.watchRestarts.inc({ informer: name, reason });
      },
      onError: report,
    });
    (gatesReadiness ? informers : rangeInformers).push(inf);
    return inf;
  };
  // The periodic resync goes through the objects every reconcile starts from: ExternalBackends and
  // Services (their handlers enqueue every key).
  const services = informer(
    'services',
    sharedNamespaces,
    serviceClient(kc),
    transformService,
    true,
    config.syncPeriodMs,
  );
  // Pods only where something reads them: selector mode, or ExternalBackend podSelector when it
  // is served. Without either, no pods informer exists (the chart then grants no pods access).
  const pods =
    mode.kind !== 'off' || config.podSelector
      ? informer('pods', sharedNamespaces, podClient(kc), transformPod)
      : undefined;
  const eps = informer('endpoints', sharedNamespaces, endpointsClient(kc), transformEndpoints);
  const backends = informer(
    'externalbackends',
    backendNamespaces,
    customObjectClient(kc, group, version, plural),
    transformExternalBackend,
    true,
    config.syncPeriodMs,
  );
  const slices = informer(
    'endpointslices',
    backendNamespaces,
    endpointSliceClient(kc, `${labelSliceManagedBy}=${managerName}`),
    transformEndpointSlice,
  );

  // Only labelled Secrets and ConfigMaps, only where a backend's check names one; they start
  // watching nothing (an undefined scope would be the whole cluster), and a cache that cannot
  // list (no RBAC for it) fails those checks with the reason instead of holding readiness.
  const probeSelector = `${probeRefLabel}=true`;
  const secrets = informer(
    'secrets',
    [],
    probeSourceClient(kc, 'secrets', probeSelector),
    transformSecret,
    false,
  );
  const configMaps = informer(
    'configmaps',
    [],
    probeSourceClient(kc, 'configmaps', probeSelector),
    transformConfigMap,
    false,
  );

  followBackendNamespaces({
    backends,
    withBackends: [services, eps],
    // Selector mode's scope is fixed; only a served podSelector makes pods follow backends.
    withPodSelectors: pods !== undefined && config.podSelector ? [pods] : [],
    withProbeRefs: [secrets, configMaps],
    selectorNamespaces: followed,
    inBackendScope,
  });

  const ranges = new ClusterRanges({
    fixed: [
      ...builtinDeniedRanges,
      ...config.deniedCidrs.map((cidr) => ({
        cidr,
        source: '--denied-cidrs',
        kind: 'flag' as const,
      })),
    ],
    serviceCIDRs: informer(
      'servicecidrs',
      undefined,
      customObjectClient(kc, 'networking.k8s.io', 'v1', 'servicecidrs'),
      transformServiceCIDR,
      false,
    ),
    nodes: informer('nodes', undefined, nodeClient(kc), transformNode, false),
    apiServer: informer(
      'apiserver-endpointslices',
      ['default'],
      endpointSliceClient(kc, 'kubernetes.io/service-name=kubernetes'),
      transformSliceAddresses,
      false,
    ),
    log,
    onRanges: (counts, up) => {
      for (const [source, n] of Object.entries(counts)) metrics.deniedRanges.set({ source }, n);
      for (const [source, ok] of Object.entries(up))
        metrics.rangeDiscoveryUp.set({ source }, ok ? 1 : 0);
    },
  });
  // The address policy and the namespace labels its rules select on; like the ranges, they may be
  // unreadable (no CRD, no RBAC), and then nothing is allowed, which status says.
  const policies = informer(
    'externalbackendpolicies',
    undefined,
    customObjectClient(kc, group, version, policyPlural),
    transformPolicy,
    false,
  );
  const namespaceInformer = informer(
    'namespaces',
    undefined,
    namespaceClient(kc),
    transformNamespace,
    false,
  );
  let rangesReady = false;
  readyz.push({
    name: 'cluster-ranges',
    check: () => (rangesReady ? undefined : 'cluster address ranges not discovered yet'),
  });

  const controllers: { name: string; controller: Controller; run(): Promise<void> }[] = [];
  if (mode.kind !== 'off') {
    if (pods === undefined) throw new Error('selector mode runs without a pods informer');
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
  const self = serviceAccountOf(kubeConfig);
  const lookup = dnsLookup({ servers: config.dnsServers, timeoutMs: config.dnsTimeoutMs });
  // The controller's parts are built here and handed to it; their results wake its backends.
  const wake = (key: string): void => {
    xbc.controller.queue.add(key);
  };
  const xbc = new ExternalBackendController({
    backends,
    services,
    endpoints: eps,
    slices,
    pods,
    podSelector: config.podSelector,
    healthCheckReaderRole: config.healthCheckReaderRole,
    ...(self === undefined ? {} : { serviceAccount: self }),
    policies,
    namespaces: namespaceInformer,
    secrets,
    configMaps,
    maxProbeTargetsPerNamespace: config.maxProbeTargetsPerNamespace,
    maxEndpointsPerSlice: config.maxEndpointsPerSlice,
    certificateWarningMs: config.certificateWarningMs,
    statusBatchMs: config.statusBatchMs,
    writer: backendWriter(kc, metrics, throttle),
    events,
    denyList: ranges,
    scheduler: backendScheduler(
      {
        denyList: ranges,
        concurrency: config.maxConcurrentProbes,
        metrics,
        onError: (err) => {
          report('probe', err);
        },
      },
      wake,
    ),
    resolver: backendResolver(
      {
        lookup,
        limits: {
          minTtlMs: config.dnsMinTtlMs,
          maxTtlMs: config.dnsMaxTtlMs,
          staleMs: config.dnsStaleMs,
          maxAddresses: maxAddressesPerName,
        },
        concurrency: config.maxConcurrentDnsLookups,
        refreshMs: resolvedAtRefreshMs,
        metrics,
        onError: (err) => {
          report('probe', err);
        },
      },
      wake,
    ),
    clock: realClock,
    workers: config.concurrentExternalBackendSyncs,
    inScope: inBackendScope,
    log,
    metrics,
  });
  controllers.push({ name: 'externalbackend', controller: xbc.controller, run: () => xbc.run() });
  const epc = new EffectivePolicyController({
    policies,
    writer: policyWriter(kc, metrics),
    log,
    metrics,
    onFrozenChange: () => {
      xbc.enqueueAll();
    },
  });
  controllers.push({
    name: 'externalbackendpolicy',
    controller: epc.controller,
    run: () => epc.run(),
  });
  ranges.onChange(() => {
    xbc.enqueueAll();
  });
  for (const c of controllers) {
    healthz.push({
      name: `${c.name}-controller`,
      check: () =>
        c.controller.stuckForMs() > stuckAfterMs
          ? 'a reconcile has been running for over 5 minutes'
          : undefined,
    });
  }
  // Ready once each cache has synced the first time: a namespace that starts being watched later
  // (its first ExternalBackend) holds back only its own backends, not the replica's readiness.
  const everSynced = new Set<string>();
  for (const inf of informers) {
    readyz.push({
      name: `informer-${inf.name}`,
      check: () => {
        if (inf.hasSynced()) everSynced.add(inf.name);
        return everSynced.has(inf.name) ? undefined : 'cache not synced';
      },
    });
  }

  const secure = await secureMetrics(config, kc, log, metrics);
  const metricsServer = await serveMetrics(config.metricsBindAddress, metrics.registry, secure);
  const stopCertWatch =
    secure !== undefined && config.metricsCertPath !== '' && metricsServer !== undefined
      ? watchKeyPair(
          {
            dir: config.metricsCertPath,
            certName: config.metricsCertName,
            keyName: config.metricsCertKey,
          },
          secure.keyPair,
          (pair: KeyPair) => {
            if ('setSecureContext' in metricsServer) {
              // Every TLS option again: setSecureContext replaces the context whole, and would
              // drop the minimum version otherwise.
              metricsServer.setSecureContext({
                cert: pair.cert,
                key: pair.key,
                minVersion: metricsMinTlsVersion,
              });
              log.info({ path: config.metricsCertPath }, 'metrics certificate reloaded');
            }
          },
          (err: unknown) => {
            log.warn({ err }, 'cannot reload the metrics certificate; serving the previous one');
          },
        )
      : undefined;
  const probeServer = await serveProbes(config.healthProbeBindAddress, { healthz, readyz });
  log.info(
    {
      metrics: config.metricsBindAddress,
      metricsSecure: secure !== undefined,
      probes: config.healthProbeBindAddress,
      selectorMode: mode,
    },
    'serving metrics and probes',
  );

  const informerStop = new AbortController();
  const running = [...informers, ...rangeInformers].map((i) => i.run(informerStop.signal));
  const rangesRunning = ranges.run(informerStop.signal);
  let controllersDone: Promise<unknown> = Promise.resolve();
  const started = Date.now();
  const onHold = (result: 'lost' | 'stopped'): void => {
    if (result !== 'lost') return;
    // As controller-runtime: exit at once. Writes stopped already (mayWrite turned false no later
    // than the renew deadline, which is shorter than the lease), so no standby that takes over
    // can see a write from this process.
    log.error({ lease: config.leaderElectionId }, 'leader election lost; exiting');
    process.exit(1);
  };
  const acquired = (): Promise<boolean> =>
    elector === undefined
      ? Promise.resolve(true)
      : elector.acquire(stop).then((ok) => {
          // Renew from the moment the lease is held, also while caches are still syncing.
          if (ok)
            elector.hold(stop).then(onHold, (err: unknown) => {
              report('unhandledRejection', err);
            });
          return ok;
        });
  const [synced, elected] = await Promise.all([
    Promise.all([
      ...informers.map((i) => i.waitForSync(stop)),
      // Nothing is published before the deny list and the policy are known (or known missing).
      Promise.all([
        ranges.waitReady(stop, 30_000),
        ...[policies, namespaceInformer].map((inf) => inf.waitSettled(stop, 30_000)),
      ]).then(() => (rangesReady = true)),
    ]),
    acquired(),
  ]);
  // Controllers start only while the lease is held (a renewal may be failing right now).
  while (elected && !mayWrite() && !stop.aborted) await sleep(50, stop);
  if (synced.every(Boolean) && elected && !stop.aborted) {
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
  epc.shutDown();
  // Lookups in flight would hold the shutdown for their timeout; cancelled, they fail at once.
  lookup.cancel();
  await xbc.shutDown();
  await controllersDone;
  if (elected) await elector?.release();
  informerStop.abort();
  await Promise.all([...running, rangesRunning]);
  stopCertWatch?.();
  await Promise.all([closeServer(metricsServer), closeServer(probeServer)]);
  uninstallLastResort();
}
