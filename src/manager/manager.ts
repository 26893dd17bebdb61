// Wiring: the runtime (client, metrics, throttle, Events, lease), the caches, each controller's
// setup, the HTTP endpoints; then start in order (caches, lease, controllers) and stop in reverse.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setupExternalBackend } from '../controllers/externalbackend/setup.ts';
import { setupPolicy } from '../controllers/policy/setup.ts';
import { setupSelector } from '../controllers/selector/setup.ts';
import { inClusterNamespace, type RequestObserver } from '../runtime/client.ts';
import type { Connection } from '../runtime/kubeconfig.ts';
import { restClient, type Rest } from '../runtime/rest.ts';
import { errorReporter, installLastResort } from '../runtime/errors.ts';
import { eventRecorder } from '../runtime/events.ts';
import type { Runnable } from '../runtime/host.ts';
import { LeaderElector } from '../runtime/leaderelection.ts';
import type { Logger } from '../runtime/log.ts';
import { createMetrics, type Metrics } from '../runtime/metrics.ts';
import { sleep, untilAborted } from '../runtime/signals.ts';
import { Throttle } from '../runtime/throttle.ts';
import { userAgent } from '../runtime/version.ts';
import { createCaches } from './caches.ts';
import { podIdentity, Quorum } from './quorum.ts';
import { ConfigError, type Config } from './config.ts';
import type { Check } from './server.ts';
import { serve } from './serving.ts';

function leaderElector(config: Config, rest: Rest, log: Logger, metrics: Metrics): LeaderElector {
  const namespace = config.leaderElectionNamespace ?? inClusterNamespace();
  if (namespace === undefined)
    throw new ConfigError('--leader-election-namespace is required when running outside a cluster');
  const name = config.leaderElectionId;
  metrics.leaderStatus.set({ name }, 0);
  return new LeaderElector({
    rest,
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

/** A reconcile running longer than this fails liveness: the work loop is stuck. */
const stuckAfterMs = 5 * 60_000;

export async function runManager(
  config: Config,
  connection: Connection,
  log: Logger,
  stop: AbortSignal,
): Promise<void> {
  const metrics = createMetrics();
  const observe: RequestObserver = (method, code, seconds, host) => {
    metrics.restRequests.inc({ method, code });
    metrics.restRequestDuration.observe({ verb: method, host }, seconds);
  };
  const rest = restClient(connection, { observe, userAgent });
  const report = errorReporter(log, (source) => {
    metrics.unhandledErrors.inc({ source });
  });
  const uninstallLastResort = installLastResort(report);
  const readyz: Check[] = [];
  const healthz: Check[] = [{ name: 'ping', check: () => undefined }];

  // One budget for the writes outrigger makes on its own initiative; Events have their own bounded
  // path, so a flood of them never delays a write.
  // Every replica keeps its caches warm; only the leader runs controllers (and so writes and
  // probes), and every write and Event first asks whether the lease is still held.
  const elector = config.leaderElect ? leaderElector(config, rest, log, metrics) : undefined;
  const mayWrite = (): boolean => elector?.isLeading() ?? true;
  const throttle = new Throttle(config.kubeApiQps, config.kubeApiBurst, mayWrite);
  const events = eventRecorder(rest, log, {
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
  const quorumOn = config.probersPerAddress > 1;
  const quorumNamespace = quorumOn
    ? (config.leaderElectionNamespace ?? inClusterNamespace())
    : undefined;
  if (quorumOn && !config.leaderElect)
    throw new ConfigError(
      '--probers-per-address above 1 needs --leader-elect: the standbys that check beside the leader are the replicas that wait for its lease',
    );
  if (quorumOn && quorumNamespace === undefined)
    throw new ConfigError(
      '--leader-election-namespace is required with --probers-per-address above 1 outside a cluster',
    );
  const caches = createCaches({
    config,
    rest,
    log,
    metrics,
    report,
    inBackendScope,
    quorumNamespace,
  });
  const quorum =
    caches.proberReports === undefined || quorumNamespace === undefined
      ? undefined
      : new Quorum({
          rest,
          reports: caches.proberReports,
          namespace: quorumNamespace,
          ...podIdentity(config),
          probersPerAddress: config.probersPerAddress,
          events,
          log,
          metrics,
        });
  let rangesReady = false;
  readyz.push({
    name: 'cluster-ranges',
    check: () => (rangesReady ? undefined : 'cluster address ranges not discovered yet'),
  });

  // Each controller's setup builds it and registers it here, in the order they are started.
  const controllers: Runnable[] = [];
  const host = { add: (r: Runnable) => controllers.push(r) };
  if (mode.kind !== 'off') {
    if (caches.pods === undefined) throw new Error('selector mode runs without a pods informer');
    setupSelector(host, {
      rest,
      services: caches.services,
      pods: caches.pods,
      endpoints: caches.endpoints,
      events,
      throttle,
      inScope: inSelectorScope,
      workers: config.concurrentEndpointSyncs,
      batchPeriodMs: config.endpointUpdatesBatchPeriodMs,
      log,
      metrics,
    });
  }
  const backendSetup = {
    connection,
    rest,
    settings: config,
    backends: caches.backends,
    services: caches.services,
    endpoints: caches.endpoints,
    slices: caches.slices,
    pods: caches.pods,
    policies: caches.policies,
    namespaces: caches.namespaces,
    secrets: caches.secrets,
    configMaps: caches.configMaps,
    denyList: caches.ranges,
    events,
    throttle,
    inScope: inBackendScope,
    report,
    log,
    metrics,
  };
  const xbc = setupExternalBackend(host, {
    ...backendSetup,
    ...(quorum !== undefined ? { quorum: quorum.view } : {}),
  });
  // A standby's prober: the same controller, which only checks what is assigned to it and
  // reports; it runs until this replica leads (see Quorum.runStandby).
  const standby =
    quorum === undefined
      ? undefined
      : setupExternalBackend(undefined, { ...backendSetup, standby: quorum.standby });
  quorum?.watch({
    leader: (key) => {
      xbc.controller.queue.add(key);
    },
    standby: () => {
      standby?.enqueueAll();
    },
  });
  setupPolicy(host, {
    rest,
    policies: caches.policies,
    log,
    metrics,
    onFrozenChange: () => {
      xbc.enqueueAll();
    },
  });
  caches.ranges.onChange(() => {
    xbc.enqueueAll();
    standby?.enqueueAll();
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
  for (const inf of caches.gating) {
    readyz.push({
      name: `informer-${inf.name}`,
      check: () => {
        if (inf.hasSynced()) everSynced.add(inf.name);
        return everSynced.has(inf.name) ? undefined : 'cache not synced';
      },
    });
  }

  const serving = await serve(config, rest, log, metrics, { healthz, readyz });
  log.info(
    {
      metrics: config.metricsBindAddress,
      metricsSecure: serving.secure,
      probes: config.healthProbeBindAddress,
      selectorMode: mode,
    },
    'serving metrics and probes',
  );

  const informerStop = new AbortController();
  const running = [...caches.gating, ...caches.optional].map((i) => i.run(informerStop.signal));
  const rangesRunning = caches.ranges.run(informerStop.signal);
  let controllersDone: Promise<unknown> = Promise.resolve();
  const quorumStop = new AbortController();
  const started = Date.now();
  const onHold = (result: 'lost' | 'stopped'): void => {
    if (result !== 'lost') return;
    // As controller-runtime: exit at once. Writes stopped already (mayWrite turned false no later
    // than the renew deadline, which is shorter than the lease), so no standby that takes over
    // can see a write from this process.
    log.error({ lease: config.leaderElectionId }, 'leader election lost; exiting');
    process.exit(1);
  };
  // The lease is renewed until the controllers have drained, not only until the stop signal
  // (controller-runtime cancels leader election after its runnables stop): a drain longer than
  // the renew deadline would otherwise end this replica's leadership before its last writes, and
  // leave the lease to expire instead of being handed over.
  const leaseStop = new AbortController();
  let holding: Promise<unknown> = Promise.resolve();
  const acquired = (): Promise<boolean> =>
    elector === undefined
      ? Promise.resolve(true)
      : elector.acquire(stop).then((ok) => {
          // Renew from the moment the lease is held, also while caches are still syncing.
          if (ok)
            holding = elector.hold(leaseStop.signal).then(onHold, (err: unknown) => {
              report('unhandledRejection', err);
            });
          return ok;
        });
  const syncing = Promise.all([
    ...caches.gating.map((i) => i.waitForSync(stop)),
    // Nothing is published before the deny list and the policy are known (or known missing).
    Promise.all([
      caches.ranges.waitReady(stop, 30_000),
      ...[caches.policies, caches.namespaces].map((inf) => inf.waitSettled(stop, 30_000)),
    ]).then(() => (rangesReady = true)),
  ]);
  // While it waits for the lease, a replica of a quorum checks what is assigned to it.
  const standbyStop = new AbortController();
  const standbyDone =
    quorum === undefined || standby === undefined
      ? Promise.resolve()
      : syncing.then(async (ok) => {
          if (!ok.every(Boolean) || stop.aborted || standbyStop.signal.aborted) return;
          await quorum.readZone();
          // The lease may have come meanwhile (the signal is aborted then).
          if (isAborted(standbyStop.signal)) return;
          log.info({ probersPerAddress: config.probersPerAddress }, 'checking as a standby prober');
          await quorum.runStandby(standby, standbyStop.signal);
        });
  const [synced, elected] = await Promise.all([syncing, acquired()]);
  standbyStop.abort();
  await standbyDone;
  // Controllers start only while the lease is held (a renewal may be failing right now).
  while (elected && !mayWrite() && !stop.aborted) await sleep(50, stop);
  if (synced.every(Boolean) && elected && !stop.aborted) {
    log.info(
      {
        ms: Date.now() - started,
        objects: Object.fromEntries(caches.gating.map((i) => [i.name, i.size()])),
        controllers: controllers.map((c) => c.name),
      },
      'caches synced; starting controllers',
    );
    controllersDone = Promise.all([
      ...controllers.map((c) => c.run()),
      quorum === undefined
        ? undefined
        : quorum.readZone().then(() => quorum.runLeader(xbc, quorumStop.signal)),
    ]);
  }

  await untilAborted(stop);
  log.info('shutting down: draining in-flight reconciles');
  // Every controller stops taking keys at once; then each drains what it has in flight.
  quorumStop.abort();
  standbyStop.abort();
  await Promise.all(controllers.map((c) => Promise.resolve(c.shutDown())));
  await controllersDone;
  await quorum?.removing;
  leaseStop.abort();
  await holding;
  if (elected) await elector?.release();
  informerStop.abort();
  await Promise.all([...running, rangesRunning]);
  await serving.close();
  uninstallLastResort();
}

/** Read through a call, so that a check after an await is not narrowed away by the one before. */
function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}
