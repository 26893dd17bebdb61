// What the informers cache of each Kubernetes resource outrigger reads. Transforms keep only the
// fields reconcilers read (memory), and turn timestamps into Dates whether they arrive as Dates
// (typed list results) or strings (watch JSON).
import type {
  KubernetesObject,
  V1Endpoint,
  V1EndpointSlice,
  V1Endpoints,
  V1ObjectMeta,
} from '@kubernetes/client-node';
import {
  maxProbeSourceValueBytes,
  type CachedContainer,
  type CachedPod,
  type CachedProbeSource,
  type CachedService,
} from './cached.ts';

export type Raw = Record<string, unknown>;

export function rec(v: unknown): Raw {
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

export function meta(raw: unknown, extra: readonly string[] = []): V1ObjectMeta {
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

/** A Namespace as the address policy sees it: its name and labels. */
export interface CachedNamespace extends KubernetesObject {
  readonly metadata: V1ObjectMeta;
}

export function transformNamespace(raw: unknown): CachedNamespace {
  return { metadata: meta(rec(raw).metadata) };
}
