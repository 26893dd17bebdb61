// The informers the controllers read, each scoped to what outrigger manages rather than the
// cluster, and the namespace-following that widens the shared ones as ExternalBackends appear.
import { labelSliceManagedBy, managerName } from '../api/names.ts';
import { group, plural, version } from '../api/externalbackend.ts';
import { policyPlural } from '../api/policy.ts';
import { proberReportPlural } from '../api/proberreport.ts';
import {
  customObjectClient,
  endpointSliceClient,
  endpointsClient,
  namespaceClient,
  nodeClient,
  podClient,
  probeSourceClient,
  serviceClient,
} from '../runtime/listers.ts';
import {
  transformConfigMap,
  transformEndpointSlice,
  transformEndpoints,
  transformNamespace,
  transformNode,
  transformPod,
  transformSecret,
  transformService,
  transformServiceCIDR,
  transformSliceAddresses,
  type CachedNamespace,
} from '../runtime/transforms.ts';
import {
  transformExternalBackend,
  transformPolicy,
  transformProberReport,
  type CachedExternalBackend,
  type CachedPolicy,
  type CachedProberReport,
} from '../api/resources.ts';
import { followBackendNamespaces } from '../controllers/externalbackend/scopes.ts';
import { probeRefLabel } from '../health/kinds/index.ts';
import { builtinDeniedRanges } from '../net/denylist.ts';
import { ClusterRanges } from '../policy/clusterranges.ts';
import type {
  CachedEndpoints,
  CachedObject,
  CachedPod,
  CachedProbeSource,
  CachedService,
} from '../runtime/cached.ts';
import type { ErrorSource } from '../runtime/errors.ts';
import { Informer } from '../runtime/informer.ts';
import type { ResourceClient } from '../runtime/listers.ts';
import type { WatchEndReason } from '../runtime/watchstream.ts';
import type { Logger } from '../runtime/log.ts';
import type { Metrics } from '../runtime/metrics.ts';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import type { Config } from './config.ts';
import type { Rest } from '../runtime/rest.ts';

export type RunnableInformer = Pick<
  Informer<CachedObject>,
  'name' | 'hasSynced' | 'run' | 'waitForSync' | 'size'
>;

export interface Caches {
  readonly services: Informer<CachedService>;
  /** Only where something reads pods: selector mode, or a served ExternalBackend podSelector. */
  readonly pods: Informer<CachedPod> | undefined;
  readonly endpoints: Informer<CachedEndpoints>;
  readonly backends: Informer<CachedExternalBackend>;
  readonly slices: Informer<V1EndpointSlice>;
  readonly secrets: Informer<CachedProbeSource>;
  readonly configMaps: Informer<CachedProbeSource>;
  readonly policies: Informer<CachedPolicy>;
  readonly namespaces: Informer<CachedNamespace>;
  readonly ranges: ClusterRanges;
  /** Only with --probers-per-address above 1. */
  readonly proberReports: Informer<CachedProberReport> | undefined;
  /** The informers whose first sync gates readiness. */
  readonly gating: readonly RunnableInformer[];
  /** The informers that may never sync (no RBAC for them): waited for apart, with a bound. */
  readonly optional: readonly Pick<Informer<CachedObject>, 'run'>[];
}

export interface CacheContext {
  readonly config: Config;
  /** The lean client the lists go through. */
  readonly rest: Rest;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly report: (source: ErrorSource, err: unknown) => void;
  /** Whether ExternalBackends of this namespace are watched. */
  readonly inBackendScope: (namespace: string) => boolean;
  /** Where ProberReports are read (outrigger's namespace), when several replicas check. */
  readonly quorumNamespace?: string | undefined;
}

export function createCaches(ctx: CacheContext): Caches {
  const { config, rest, log, metrics } = ctx;
  const mode = config.selectorMode;
  const selectorNamespaces = mode.kind === 'namespaces' ? mode.namespaces : undefined;
  const backendNamespaces = config.watchNamespaces.length > 0 ? config.watchNamespaces : undefined;
  // Services, Endpoints and Pods are shared by both controllers. Selector mode over every
  // namespace watches them cluster-wide; otherwise they start with the selector scope and follow
  // the namespaces that have ExternalBackends (see controllers/externalbackend/scopes.ts).
  const followed = mode.kind === 'all' ? undefined : (selectorNamespaces ?? []);
  const gating: RunnableInformer[] = [];
  const optional: Pick<Informer<CachedObject>, 'run'>[] = [];
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
      namespaces,
      log,
      client,
      transform,
      resyncPeriodMs,
      stallTimeoutMs: config.watchStallTimeoutMs,
      onWatchEnd: (reason: WatchEndReason) => {
        metrics.watchRestarts.inc({ informer: name, reason });
      },
      onError: ctx.report,
    });
    (gatesReadiness ? gating : optional).push(inf);
    return inf;
  };
  // The periodic resync goes through the objects every reconcile starts from: ExternalBackends and
  // Services (their handlers enqueue every key).
  const services = informer(
    'services',
    followed,
    serviceClient(rest),
    transformService,
    true,
    config.syncPeriodMs,
  );
  // Pods only where something reads them: selector mode, or ExternalBackend podSelector when it
  // is served. Without either, no pods informer exists (the chart then grants no pods access).
  const pods =
    mode.kind !== 'off' || config.podSelector
      ? informer('pods', followed, podClient(rest), transformPod)
      : undefined;
  const endpoints = informer('endpoints', followed, endpointsClient(rest), transformEndpoints);
  const backends = informer(
    'externalbackends',
    backendNamespaces,
    customObjectClient(rest, group, version, plural),
    transformExternalBackend,
    true,
    config.syncPeriodMs,
  );
  const slices = informer(
    'endpointslices',
    backendNamespaces,
    endpointSliceClient(rest, `${labelSliceManagedBy}=${managerName}`),
    transformEndpointSlice,
  );

  // Only labelled Secrets and ConfigMaps, only where a backend's check names one; they start
  // watching nothing (an undefined scope would be the whole cluster), and a cache that cannot
  // list (no RBAC for it) fails those checks with the reason instead of holding readiness.
  const probeSelector = `${probeRefLabel}=true`;
  const secrets = informer(
    'secrets',
    [],
    probeSourceClient(rest, 'secrets', probeSelector),
    transformSecret,
    false,
  );
  const configMaps = informer(
    'configmaps',
    [],
    probeSourceClient(rest, 'configmaps', probeSelector),
    transformConfigMap,
    false,
  );

  followBackendNamespaces({
    backends,
    withBackends: [services, endpoints],
    // Selector mode's scope is fixed; only a served podSelector makes pods follow backends.
    withPodSelectors: pods !== undefined && config.podSelector ? [pods] : [],
    withProbeRefs: [secrets, configMaps],
    selectorNamespaces: followed,
    inBackendScope: ctx.inBackendScope,
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
      customObjectClient(rest, 'networking.k8s.io', 'v1', 'servicecidrs'),
      transformServiceCIDR,
      false,
    ),
    nodes: informer('nodes', undefined, nodeClient(rest), transformNode, false),
    apiServer: informer(
      'apiserver-endpointslices',
      ['default'],
      endpointSliceClient(rest, 'kubernetes.io/service-name=kubernetes'),
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
    customObjectClient(rest, group, version, policyPlural),
    transformPolicy,
    false,
  );
  const namespaces = informer(
    'namespaces',
    undefined,
    namespaceClient(rest),
    transformNamespace,
    false,
  );
  // A standby's reports, read by the leader and by every standby (for the assignment), only
  // where several replicas check each address; in outrigger's own namespace.
  const proberReports =
    ctx.quorumNamespace === undefined
      ? undefined
      : informer(
          'proberreports',
          [ctx.quorumNamespace],
          customObjectClient(rest, group, version, proberReportPlural),
          transformProberReport,
        );
  return {
    proberReports,
    services,
    pods,
    endpoints,
    backends,
    slices,
    secrets,
    configMaps,
    policies,
    namespaces,
    ranges,
    gating,
    optional,
  };
}
