// What the informers cache for each resource, and how they list it. Transforms keep only the fields
// reconcilers read (memory), and turn timestamps into Dates whether they arrive as Dates (typed
// list results) or strings (watch JSON).
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
  type KubernetesObject,
  type V1Endpoint,
  type V1EndpointSlice,
  type V1Endpoints,
  type V1ObjectMeta,
} from '@kubernetes/client-node';
import {
  maxProbeSourceValueBytes,
  type CachedContainer,
  type CachedPod,
  type CachedProbeSource,
  type CachedService,
} from '../runtime/cached.ts';
import type { ResourceClient } from '../runtime/informer.ts';
import { adoptEndpointsAnnotation, drainAnnotation } from './externalbackend.ts';

type Raw = Record<string, unknown>;

function rec(v: unknown): Raw {
  return v !== null && typeof v === 'object' ? (v as Raw) : {};
}

function toDate(v: unknown): Date | undefined {
  if (v instanceof Date) return v;
  if (typeof v === 'string' && v !== '') return new Date(v);
  return undefined;
}

/** Copies `keys` from `src` when present (absent keys stay absent: exactOptionalPropertyTypes). */
function pick(src: Raw, keys: readonly string[]): Raw {
  const out: Raw = {};
  for (const k of keys) if (src[k] !== undefined && src[k] !== null) out[k] = src[k];
  return out;
}

function meta(raw: unknown, extra: readonly string[] = []): V1ObjectMeta {
  const m = rec(raw);
  const out = pick(m, ['name', 'namespace', 'uid', 'resourceVersion', 'labels', ...extra]);
  const created = toDate(m.creationTimestamp);
  if (created) out.creationTimestamp = created;
  const deleted = toDate(m.deletionTimestamp);
  if (deleted) out.deletionTimestamp = deleted;
  return out;
}

function containers(list: unknown, withRestartPolicy: boolean): CachedContainer[] | undefined {
  if (!Array.isArray(list)) return undefined;
  return list.map((c) => {
    const r = rec(c);
    return pick(
      r,
      withRestartPolicy ? ['name', 'ports', 'restartPolicy'] : ['name', 'ports'],
    ) as unknown as CachedContainer;
  });
}

export function transformPod(raw: unknown): CachedPod {
  const r = rec(raw);
  const spec = rec(r.spec);
  const status = rec(r.status);
  const ready = Array.isArray(status.conditions)
    ? status.conditions.map(rec).filter((c) => c.type === 'Ready')
    : [];
  const initContainers = containers(spec.initContainers, true);
  return {
    metadata: meta(r.metadata),
    spec: {
      ...(pick(spec, ['nodeName', 'hostname', 'subdomain']) as object),
      containers: containers(spec.containers, false) ?? [],
      ...(initContainers ? { initContainers } : {}),
    },
    status: {
      ...(pick(status, ['phase', 'podIP', 'podIPs']) as object),
      conditions: ready.map((c) => {
        const t = toDate(c.lastTransitionTime);
        return { type: 'Ready', status: String(c.status), ...(t ? { lastTransitionTime: t } : {}) };
      }),
    },
  };
}

export function transformService(raw: unknown): CachedService {
  const r = rec(raw);
  const spec = rec(r.spec);
  return {
    // ownerReferences: the ExternalBackend controller tells the Services it created from adopted ones.
    metadata: meta(r.metadata, ['ownerReferences']),
    spec: pick(spec, [
      'selector',
      'type',
      'clusterIP',
      'ipFamilies',
      'ports',
      'publishNotReadyAddresses',
    ]),
  };
}

/** All metadata but managedFields, with timestamps as Dates. */
function fullMeta(raw: unknown): V1ObjectMeta {
  const m = rec(raw);
  const rest: Raw = {};
  for (const [k, v] of Object.entries(m)) {
    if (k !== 'managedFields' && k !== 'creationTimestamp' && k !== 'deletionTimestamp')
      rest[k] = v;
  }
  const created = toDate(m.creationTimestamp);
  const deleted = toDate(m.deletionTimestamp);
  return {
    ...rest,
    ...(created ? { creationTimestamp: created } : {}),
    ...(deleted ? { deletionTimestamp: deleted } : {}),
  };
}

/** Endpoints are written back whole, so everything but managedFields is kept. */
export function transformEndpoints(raw: unknown): V1Endpoints {
  const r = rec(raw);
  return {
    metadata: fullMeta(r.metadata),
    ...(Array.isArray(r.subsets)
      ? { subsets: r.subsets as NonNullable<V1Endpoints['subsets']> }
      : {}),
  };
}

/** EndpointSlices are compared field by field with what outrigger wants, so all is kept. */
export function transformEndpointSlice(raw: unknown): V1EndpointSlice {
  const r = rec(raw);
  return {
    metadata: fullMeta(r.metadata),
    addressType: typeof r.addressType === 'string' ? r.addressType : '',
    endpoints: Array.isArray(r.endpoints) ? (r.endpoints as V1Endpoint[]) : [],
    ...(Array.isArray(r.ports) ? { ports: r.ports as NonNullable<V1EndpointSlice['ports']> } : {}),
  };
}

/** An ExternalBackend as cached: spec and status stay raw JSON; the reconciler parses the spec. */
export interface CachedExternalBackend extends KubernetesObject {
  readonly spec?: unknown;
  readonly status?: unknown;
}

/**
 * Of the annotations only those outrigger reads: the others (kubectl's last-applied
 * configuration among them) can be as large as the object and would be kept for nothing.
 */
function backendMeta(raw: unknown): V1ObjectMeta {
  const out = meta(raw, ['generation']);
  const annotations = rec(rec(raw).annotations);
  const kept = Object.fromEntries(
    [drainAnnotation, adoptEndpointsAnnotation].flatMap((k) => {
      const v = annotations[k];
      return typeof v === 'string' ? [[k, v]] : [];
    }),
  );
  if (Object.keys(kept).length > 0) out.annotations = kept;
  return out;
}

export function transformExternalBackend(raw: unknown): CachedExternalBackend {
  const r = rec(raw);
  return {
    apiVersion: typeof r.apiVersion === 'string' ? r.apiVersion : '',
    kind: typeof r.kind === 'string' ? r.kind : '',
    metadata: backendMeta(r.metadata),
    ...(r.spec !== undefined ? { spec: r.spec } : {}),
    ...(r.status !== undefined ? { status: r.status } : {}),
  };
}

function page<T>(list: {
  items: T[];
  metadata?: { resourceVersion?: string; _continue?: string };
}) {
  return {
    items: list.items,
    resourceVersion: list.metadata?.resourceVersion ?? '',
    // The API server sends "" on the last page.
    continueToken: list.metadata?._continue === '' ? undefined : list.metadata?._continue,
  };
}

function path(resource: string): (ns: string | undefined) => string {
  return (ns) =>
    ns === undefined ? `/api/v1/${resource}` : `/api/v1/namespaces/${ns}/${resource}`;
}

interface Paged {
  limit: number;
  _continue?: string;
}
type Lister = (
  core: CoreV1Api,
  namespace: string | undefined,
  paging: Paged,
) => Promise<{ items: unknown[]; metadata?: { resourceVersion?: string; _continue?: string } }>;

function coreClient(kc: KubeConfig, resource: string, list: Lister): ResourceClient<unknown> {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    list: async (namespace, limit, _continue) =>
      page(await list(core, namespace, { limit, ...(_continue ? { _continue } : {}) })),
    watchPath: path(resource),
  };
}

/** EndpointSlices, only those matching `labelSelector` (so not every slice in the cluster). */
export const endpointSliceClient = (
  kc: KubeConfig,
  labelSelector: string,
): ResourceClient<unknown> => {
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  return {
    watchQuery: { labelSelector },
    list: async (namespace, limit, _continue) => {
      const p = { limit, labelSelector, ...(_continue ? { _continue } : {}) };
      return page(
        namespace === undefined
          ? await discovery.listEndpointSliceForAllNamespaces(p)
          : await discovery.listNamespacedEndpointSlice({ namespace, ...p }),
      );
    },
    watchPath: (ns) =>
      ns === undefined
        ? '/apis/discovery.k8s.io/v1/endpointslices'
        : `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
  };
};

/** Lists and watches a custom resource, e.g. outrigger.dev/v1alpha1 externalbackends. */
export const customObjectClient = (
  kc: KubeConfig,
  group: string,
  version: string,
  plural: string,
): ResourceClient<unknown> => {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return {
    list: async (namespace, limit, _continue) => {
      const p = { group, version, plural, limit, ...(_continue ? { _continue } : {}) };
      const list = (
        namespace === undefined
          ? await custom.listClusterCustomObject(p)
          : await custom.listNamespacedCustomObject({ namespace, ...p })
      ) as { items?: unknown[]; metadata?: { resourceVersion?: string; continue?: string } };
      // Custom object lists arrive as plain JSON: `continue`, not the typed models' `_continue`.
      return page({
        items: list.items ?? [],
        metadata: {
          ...(list.metadata?.resourceVersion !== undefined
            ? { resourceVersion: list.metadata.resourceVersion }
            : {}),
          ...(list.metadata?.continue !== undefined ? { _continue: list.metadata.continue } : {}),
        },
      });
    },
    watchPath: (ns) =>
      ns === undefined
        ? `/apis/${group}/${version}/${plural}`
        : `/apis/${group}/${version}/namespaces/${ns}/${plural}`,
  };
};

/**
 * Secrets or ConfigMaps, only those matching `labelSelector`: health checks may read only objects
 * labelled for them (see probeRefLabel), and no other Secret ever enters memory.
 */
export const probeSourceClient = (
  kc: KubeConfig,
  resource: 'secrets' | 'configmaps',
  labelSelector: string,
): ResourceClient<unknown> => {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    watchQuery: { labelSelector },
    list: async (namespace, limit, _continue) => {
      const p = { limit, labelSelector, ...(_continue ? { _continue } : {}) };
      if (resource === 'secrets')
        return page(
          namespace === undefined
            ? await core.listSecretForAllNamespaces(p)
            : await core.listNamespacedSecret({ namespace, ...p }),
        );
      return page(
        namespace === undefined
          ? await core.listConfigMapForAllNamespaces(p)
          : await core.listNamespacedConfigMap({ namespace, ...p }),
      );
    },
    watchPath: path(resource),
  };
};

/** The text values of a Secret's or ConfigMap's keys; a value too large to keep is only named. */
function probeSource(
  metadata: unknown,
  v: unknown,
  size: (s: string) => number,
  decode: (s: string) => string,
): CachedProbeSource {
  const data: Record<string, string> = {};
  const oversized: string[] = [];
  for (const [k, x] of Object.entries(rec(v))) {
    if (typeof x !== 'string') continue;
    // Measured before decoding: a value that will not be kept is never copied.
    if (size(x) > maxProbeSourceValueBytes) oversized.push(k);
    else data[k] = decode(x);
  }
  return { metadata: meta(metadata), data, ...(oversized.length > 0 ? { oversized } : {}) };
}

/** A Secret's keys, decoded; its type, annotations and the rest are dropped. */
export function transformSecret(raw: unknown): CachedProbeSource {
  const r = rec(raw);
  return probeSource(
    r.metadata,
    r.data,
    // The decoded length: three bytes per four characters, less the padding.
    (b64) =>
      Math.floor((b64.length * 3) / 4) - (b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0),
    (b64) => Buffer.from(b64, 'base64').toString('utf8'),
  );
}

/** A ConfigMap's text keys (binaryData holds no PEM bundle or header value). */
export function transformConfigMap(raw: unknown): CachedProbeSource {
  const r = rec(raw);
  return probeSource(
    r.metadata,
    r.data,
    (s) => Buffer.byteLength(s),
    (s) => s,
  );
}

export const podClient = (kc: KubeConfig): ResourceClient<unknown> =>
  coreClient(kc, 'pods', (core, namespace, p) =>
    namespace === undefined
      ? core.listPodForAllNamespaces(p)
      : core.listNamespacedPod({ namespace, ...p }),
  );

export const serviceClient = (kc: KubeConfig): ResourceClient<unknown> =>
  coreClient(kc, 'services', (core, namespace, p) =>
    namespace === undefined
      ? core.listServiceForAllNamespaces(p)
      : core.listNamespacedService({ namespace, ...p }),
  );

export const endpointsClient = (kc: KubeConfig): ResourceClient<unknown> =>
  coreClient(kc, 'endpoints', (core, namespace, p) =>
    namespace === undefined
      ? core.listEndpointsForAllNamespaces(p)
      : core.listNamespacedEndpoints({ namespace, ...p }),
  );

/** What a Node says about the cluster's address space: its pod ranges and its own addresses. */
export interface CachedNode extends KubernetesObject {
  readonly podCIDRs: readonly string[];
  readonly addresses: readonly string[];
}

export function transformNode(raw: unknown): CachedNode {
  const r = rec(raw);
  const spec = rec(r.spec);
  const status = rec(r.status);
  const strings = (v: unknown): string[] =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  const podCIDRs = strings(spec.podCIDRs);
  if (podCIDRs.length === 0 && typeof spec.podCIDR === 'string') podCIDRs.push(spec.podCIDR);
  return {
    metadata: meta(r.metadata),
    podCIDRs,
    addresses: Array.isArray(status.addresses)
      ? status.addresses.map(rec).flatMap((a) => (typeof a.address === 'string' ? [a.address] : []))
      : [],
  };
}

/** A networking.k8s.io/v1 ServiceCIDR: the ranges ClusterIPs are allocated from. */
export interface CachedServiceCIDR extends KubernetesObject {
  readonly cidrs: readonly string[];
}

export function transformServiceCIDR(raw: unknown): CachedServiceCIDR {
  const r = rec(raw);
  const cidrs = rec(r.spec).cidrs;
  return {
    metadata: meta(r.metadata),
    cidrs: Array.isArray(cidrs) ? cidrs.filter((c): c is string => typeof c === 'string') : [],
  };
}

/** The addresses and ports of an EndpointSlice, nothing else (the API server's own slices). */
export interface CachedSliceAddresses extends KubernetesObject {
  readonly addresses: readonly string[];
  /** The slice's port numbers (the API server's port, usually 6443); none when it lists none. */
  readonly ports?: readonly number[];
}

export function transformSliceAddresses(raw: unknown): CachedSliceAddresses {
  const r = rec(raw);
  return {
    metadata: meta(r.metadata),
    ports: Array.isArray(r.ports)
      ? r.ports
          .map(rec)
          .map((p) => p.port)
          .filter((p): p is number => typeof p === 'number')
      : [],
    addresses: Array.isArray(r.endpoints)
      ? r.endpoints
          .map(rec)
          .flatMap((e) =>
            Array.isArray(e.addresses)
              ? e.addresses.filter((a): a is string => typeof a === 'string')
              : [],
          )
      : [],
  };
}

export const nodeClient = (kc: KubeConfig): ResourceClient<unknown> =>
  coreClient(kc, 'nodes', (core, _namespace, p) => core.listNode(p));

/** A Namespace as the address policy sees it: its name and labels. */
export interface CachedNamespace extends KubernetesObject {
  readonly metadata: V1ObjectMeta;
}

export function transformNamespace(raw: unknown): CachedNamespace {
  return { metadata: meta(rec(raw).metadata) };
}

export const namespaceClient = (kc: KubeConfig): ResourceClient<unknown> =>
  coreClient(kc, 'namespaces', (core, _namespace, p) => core.listNamespace(p));

/** An ExternalBackendPolicy as cached: the spec stays raw JSON; the reconciler parses it. */
export interface CachedPolicy extends KubernetesObject {
  readonly spec?: unknown;
}

export function transformPolicy(raw: unknown): CachedPolicy {
  const r = rec(raw);
  return { metadata: meta(r.metadata), ...(r.spec !== undefined ? { spec: r.spec } : {}) };
}
