// Builds the ExternalBackend controller from the caches and settings it names: its writer, its
// probe scheduler and DNS resolver (wiring.ts), and registers it with the manager.
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { maxAddressesPerName } from '../../api/externalbackend.ts';
import type { CachedExternalBackend, CachedPolicy } from '../../api/resources.ts';
import type { CachedNamespace } from '../../runtime/transforms.ts';
import { dnsLookup } from '../../dns/lookup.ts';
import { resolvedAtRefreshMs } from '../../dns/resolution.ts';
import type { DenyList } from '../../net/denylist.ts';
import type {
  CachedEndpoints,
  CachedPod,
  CachedProbeSource,
  CachedService,
} from '../../runtime/cached.ts';
import { serviceAccountOf } from '../../runtime/client.ts';
import type { Connection } from '../../runtime/kubeconfig.ts';
import type { ErrorSource } from '../../runtime/errors.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { ControllerHost } from '../../runtime/host.ts';
import type { Informer } from '../../runtime/informer.ts';
import type { Logger } from '../../runtime/log.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import type { Throttle } from '../../runtime/throttle.ts';
import { ExternalBackendController, type ExternalBackendControllerOptions } from './controller.ts';
import type { StandbyRole } from './options.ts';
import { backendWriter } from './writer.ts';
import { backendResolver, backendScheduler } from './wiring.ts';
import { realClock } from '../../runtime/clock.ts';
import type { Rest } from '../../runtime/rest.ts';

/** The settings this controller reads, named as the flag table's Config keys. */
export interface ExternalBackendSettings {
  readonly podSelector: boolean;
  readonly healthCheckReaderRole: string;
  readonly maxProbeTargetsPerNamespace: number;
  readonly maxEndpointsPerSlice: number;
  readonly certificateWarningMs: number;
  readonly statusBatchMs: number;
  readonly maxConcurrentProbes: number;
  readonly dnsServers: readonly string[];
  readonly dnsTimeoutMs: number;
  readonly dnsMinTtlMs: number;
  readonly dnsMaxTtlMs: number;
  readonly dnsStaleMs: number;
  readonly maxConcurrentDnsLookups: number;
  readonly concurrentExternalBackendSyncs: number;
}

export interface ExternalBackendSetup {
  readonly connection: Connection;
  readonly rest: Rest;
  readonly settings: ExternalBackendSettings;
  readonly backends: Informer<CachedExternalBackend>;
  readonly services: Informer<CachedService>;
  readonly endpoints: Informer<CachedEndpoints>;
  readonly slices: Informer<V1EndpointSlice>;
  readonly pods: Informer<CachedPod> | undefined;
  readonly policies: Informer<CachedPolicy>;
  readonly namespaces: Informer<CachedNamespace>;
  readonly secrets: Informer<CachedProbeSource>;
  readonly configMaps: Informer<CachedProbeSource>;
  readonly denyList: Pick<DenyList, 'denies' | 'nodeAddress'>;
  readonly events: EventRecorder;
  readonly throttle: Throttle;
  readonly inScope: (namespace: string) => boolean;
  readonly report: (source: ErrorSource, err: unknown) => void;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The leader's quorum of probers (--probers-per-address above 1). */
  readonly quorum?: ExternalBackendControllerOptions['quorum'];
  /** Built as a standby's prober instead: not registered, run by the caller while not leading. */
  readonly standby?: StandbyRole;
}

/**
 * Builds the ExternalBackend controller, its prober and resolver, and registers it (a standby's
 * is returned to the caller instead, which runs it while this replica does not lead).
 */
export function setupExternalBackend(
  host: ControllerHost | undefined,
  s: ExternalBackendSetup,
): ExternalBackendController {
  const { settings } = s;
  const self = serviceAccountOf(s.connection);
  const lookup = dnsLookup({ servers: settings.dnsServers, timeoutMs: settings.dnsTimeoutMs });
  // The prober and the resolver are built here and handed to the controller; their results wake
  // its backends.
  const wake = (key: string): void => {
    c.controller.queue.add(key);
  };
  const c = new ExternalBackendController({
    backends: s.backends,
    services: s.services,
    endpoints: s.endpoints,
    slices: s.slices,
    pods: s.pods,
    podSelector: settings.podSelector,
    healthCheckReaderRole: settings.healthCheckReaderRole,
    ...(self === undefined ? {} : { serviceAccount: self }),
    policies: s.policies,
    namespaces: s.namespaces,
    secrets: s.secrets,
    configMaps: s.configMaps,
    maxProbeTargetsPerNamespace: settings.maxProbeTargetsPerNamespace,
    maxEndpointsPerSlice: settings.maxEndpointsPerSlice,
    certificateWarningMs: settings.certificateWarningMs,
    statusBatchMs: settings.statusBatchMs,
    writer: backendWriter(s.rest, s.metrics, s.throttle),
    events: s.events,
    denyList: s.denyList,
    scheduler: backendScheduler(
      {
        denyList: s.denyList,
        concurrency: settings.maxConcurrentProbes,
        metrics: s.metrics,
        onError: (err) => {
          s.report('probe', err);
        },
      },
      wake,
    ),
    resolver: backendResolver(
      {
        lookup,
        limits: {
          minTtlMs: settings.dnsMinTtlMs,
          maxTtlMs: settings.dnsMaxTtlMs,
          staleMs: settings.dnsStaleMs,
          maxAddresses: maxAddressesPerName,
        },
        concurrency: settings.maxConcurrentDnsLookups,
        refreshMs: resolvedAtRefreshMs,
        metrics: s.metrics,
        onError: (err) => {
          s.report('probe', err);
        },
      },
      wake,
    ),
    clock: realClock,
    ...(s.quorum !== undefined ? { quorum: s.quorum } : {}),
    ...(s.standby !== undefined ? { standby: s.standby } : {}),
    workers: settings.concurrentExternalBackendSyncs,
    inScope: s.inScope,
    log: s.log,
    metrics: s.metrics,
  });
  host?.add({
    name: 'externalbackend',
    controller: c.controller,
    run: () => c.run(),
    shutDown: () => {
      // Lookups in flight would hold the shutdown for their timeout; cancelled, they fail at once.
      lookup.cancel();
      return c.shutDown();
    },
  });
  return c;
}
