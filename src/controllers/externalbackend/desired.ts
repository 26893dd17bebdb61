// What an ExternalBackend should make exist, as pure functions: the Service decision, which
// addresses are published, and the Endpoints and EndpointSlices to write. The reconciler gathers
// the inputs from its caches and writes only what differs.
import {
  labelAppManagedBy,
  labelEndpointsManagedBy,
  labelServiceName,
  labelSkipMirror,
  labelSliceManagedBy,
  managerName,
} from '../../api/names.ts';
import { candidateAddresses, noResolutions, type Candidate } from '../../sources/index.ts';
import type {
  V1Endpoint,
  V1EndpointAddress,
  V1EndpointSlice,
  V1EndpointSubset,
  V1Endpoints,
  V1OwnerReference,
  V1Service,
  V1ServicePort,
} from '@kubernetes/client-node';
import type { CachedPod, CachedService } from '../../runtime/cached.ts';
import { annotationOverCapacity, desiredSubsets } from '../../endpoints/desired.ts';
import { parseIP } from '../../endpoints/pod.ts';
import { labelSelectorMatches } from '../../runtime/labels.ts';
import {
  countAddresses,
  repackSubsets,
  subsetsEqual,
  truncateSubsets,
} from '../../endpoints/subsets.ts';
import { isReady, type AddressHealth } from '../../health/state.ts';
import type { DenyList } from '../../net/denylist.ts';
import { apiVersion, kind, type ExternalBackendSpec } from '../../api/externalbackend.ts';
import {
  planSlices,
  portsFingerprint,
  sliceBaseName,
  type AddressType,
  type OwnedSlice,
  type SlicePlan,
} from './slices.ts';

export interface BackendRef {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
}

export function ownerReference(xb: BackendRef): V1OwnerReference {
  return {
    apiVersion,
    kind,
    name: xb.name,
    uid: xb.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Whether an object is ours (owned by this ExternalBackend), free to take, or someone else's. */
export function ownership(
  obj:
    | {
        metadata?: {
          ownerReferences?: readonly V1OwnerReference[];
          labels?: Readonly<Record<string, string>>;
        };
      }
    | undefined,
  xb: BackendRef,
): 'absent' | 'ours' | 'foreign' {
  if (obj === undefined) return 'absent';
  if (obj.metadata?.ownerReferences?.some((o) => o.uid === xb.uid)) return 'ours';
  return 'foreign';
}

/**
 * The external addresses this backend has published, which a frozen address policy keeps: the
 * endpoints of its own slices (by owner) that are not pods, in slices that carry every port the
 * backend publishes now (number and protocol). Pod endpoints are left out: a pod's address is
 * published because it is a selected pod, never because a grant allowed it, and a pod address
 * written in spec.addresses must not pass as "published" (pod ranges are not always in the deny
 * list, and the pod may go while its address stays). Ports are part of what a grant allows:
 * while frozen, an address published on 5432 must not start being published on 22.
 */
export function publishedAddresses(
  slices: readonly V1EndpointSlice[],
  xb: BackendRef,
  spec: Pick<ExternalBackendSpec, 'ports'>,
): Set<string> {
  const out = new Set<string>();
  for (const s of slices) {
    if (ownership(s, xb) !== 'ours') continue;
    const carried = s.ports ?? [];
    const carriesAll = spec.ports.every((p) =>
      carried.some((c) => c.port === p.port && (c.protocol ?? 'TCP') === p.protocol),
    );
    if (!carriesAll) continue;
    for (const e of s.endpoints ?? [])
      if (e.targetRef?.kind !== 'Pod') for (const ip of e.addresses) out.add(ip);
  }
  return out;
}

/**
 * Who holds an Endpoints that is not this backend's: another controller (a controller owner
 * reference, or the managed-by label of an endpoints controller other than outrigger) or nobody
 * in particular — written by hand, by kubectl or a GitOps tool, or left behind by an
 * ExternalBackend deleted with --cascade=orphan (outrigger's label, no owner). Only the latter
 * may stand beside a backend during a migration, and be adopted on the backend's opt-in: a
 * controller would fight over it.
 */
export function endpointsHolder(obj: {
  metadata?: {
    ownerReferences?: readonly V1OwnerReference[];
    labels?: Readonly<Record<string, string>>;
  };
}): 'controller' | 'unmanaged' {
  if (obj.metadata?.ownerReferences?.some((o) => o.controller === true)) return 'controller';
  const by = obj.metadata?.labels?.[labelEndpointsManagedBy];
  return by === undefined || by === managerName ? 'unmanaged' : 'controller';
}

export function serviceName(xb: BackendRef, spec: ExternalBackendSpec): string {
  return spec.service.name ?? xb.name;
}

export function desiredService(xb: BackendRef, spec: ExternalBackendSpec): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: serviceName(xb, spec),
      namespace: xb.namespace,
      labels: { [labelAppManagedBy]: 'outrigger' },
      ownerReferences: [ownerReference(xb)],
    },
    spec: {
      ...(spec.service.clusterIP === 'None' ? { clusterIP: 'None' } : {}),
      ports: spec.ports.map((p) => ({
        name: p.name,
        port: p.port,
        targetPort: p.port,
        protocol: p.protocol,
        ...(p.appProtocol !== undefined ? { appProtocol: p.appProtocol } : {}),
      })),
    },
  };
}

export type ServiceDecision =
  | { readonly action: 'create'; readonly service: V1Service }
  | { readonly action: 'update'; readonly ports: V1ServicePort[] }
  | { readonly action: 'none'; readonly adopted: boolean }
  | {
      readonly action: 'refuse';
      readonly reason: 'ServiceNotFound' | 'ServiceHasSelector';
      readonly message: string;
    };

function samePorts(a: CachedService, b: CachedService): boolean {
  const key = (s: CachedService): string =>
    JSON.stringify(
      (s.spec?.ports ?? [])
        .map((p) => [
          p.name ?? '',
          p.port,
          String(p.targetPort ?? p.port),
          p.protocol ?? 'TCP',
          p.appProtocol ?? '',
        ])
        .sort(),
    );
  return key(a) === key(b);
}

/**
 * Creates and owns a selectorless Service when none exists (if allowed), keeps an owned one's ports
 * in line, adopts (reads only) an existing selectorless one, and refuses one with a selector: its
 * Endpoints belong to the endpoints controller.
 */
export function decideService(
  xb: BackendRef,
  spec: ExternalBackendSpec,
  existing: CachedService | undefined,
): ServiceDecision {
  const name = serviceName(xb, spec);
  const want = desiredService(xb, spec);
  if (existing === undefined) {
    if (spec.service.create) return { action: 'create', service: want };
    return {
      action: 'refuse',
      reason: 'ServiceNotFound',
      message: `Service ${name} does not exist and spec.service.create is false`,
    };
  }
  if (existing.spec?.selector !== undefined) {
    return {
      action: 'refuse',
      reason: 'ServiceHasSelector',
      message: `Service ${name} has a selector; its Endpoints belong to the endpoints controller. Remove the selector or name another Service`,
    };
  }
  if (ownership(existing, xb) === 'ours') {
    if (samePorts(existing, want)) return { action: 'none', adopted: false };
    return { action: 'update', ports: want.spec?.ports ?? [] };
  }
  return { action: 'none', adopted: true };
}

export type AddressState = 'Healthy' | 'Unhealthy' | 'Unknown' | 'Denied';

export interface AddressView {
  readonly ip: string;
  readonly nodeName?: string;
  readonly hostname?: string;
  /** The spec.dnsNames entry it was resolved from. */
  readonly dnsName?: string;
  readonly zone?: string;
  readonly state: AddressState;
  /** Published as ready (after fail-open); never for a draining address. */
  readonly ready: boolean;
  /** Drained: published not ready but terminating, and serving while its checks pass. */
  readonly draining?: true;
  /** For a draining address: whether it would be ready but for the drain. */
  readonly serving?: boolean;
  readonly message: string;
  readonly since?: number;
  /** The notAfter (ms) of the certificate its TLS-speaking check saw last. */
  readonly certificateNotAfter?: number;
}

/**
 * Why an address may not be published (the deny list, the address policy), or undefined when it
 * may. Never called with anything but a candidate address (see sources/).
 */
export type Judge = (ip: string) => string | undefined;

/**
 * Which addresses are published and how. Denied addresses are never published. Without a health
 * check every other address is ready; with one, unhealthy ones are not ready — unless no checked
 * address passes, at least one fails, and failOpen is on, when all are published as ready, because
 * a probe-side outage must not blackhole the Service. Addresses in `unchecked` (over the namespace's
 * probe-target limit) are published not ready, with `uncheckedMessage`.
 */
export function addressViews(
  spec: ExternalBackendSpec,
  health: ReadonlyMap<string, AddressHealth>,
  judge: Judge,
  unchecked: { readonly ips: ReadonlySet<string>; readonly message: string } = {
    ips: new Set(),
    message: '',
  },
  candidates: readonly Candidate[] = candidateAddresses({ spec, resolutions: noResolutions }),
): { views: AddressView[]; failOpen: boolean } {
  const views: AddressView[] = candidates.map((a) => {
    const extra = {
      ...(a.nodeName !== undefined ? { nodeName: a.nodeName } : {}),
      ...(a.hostname !== undefined ? { hostname: a.hostname } : {}),
      ...(a.dnsName !== undefined ? { dnsName: a.dnsName } : {}),
      ...(a.zone !== undefined ? { zone: a.zone } : {}),
    };
    const denied = judge(a.ip);
    if (denied !== undefined) {
      return {
        ip: a.ip,
        ...extra,
        state: 'Denied',
        ready: false,
        message: `${denied}; not published`,
      };
    }
    if (spec.healthCheck === undefined)
      return { ip: a.ip, ...extra, state: 'Healthy', ready: true, message: '' };
    if (unchecked.ips.has(a.ip))
      return { ip: a.ip, ...extra, state: 'Unknown', ready: false, message: unchecked.message };
    const h = health.get(a.ip);
    const state = h?.state ?? 'Unknown';
    return {
      ip: a.ip,
      ...extra,
      state,
      ready: h === undefined || isReady(h),
      message: h?.message ?? '',
      ...(h ? { since: h.since } : {}),
      ...(h?.certificateNotAfter !== undefined
        ? { certificateNotAfter: h.certificateNotAfter }
        : {}),
    };
  });
  const drained = new Set(candidates.filter((a) => a.drain === true).map((a) => a.ip));
  // Drained addresses are out of rotation on purpose: they neither trigger fail-open nor are
  // brought back by it.
  const checked = views.filter(
    (v) => v.state !== 'Denied' && !unchecked.ips.has(v.ip) && !drained.has(v.ip),
  );
  // Addresses not checked yet do not hold fail-open off: when the prober itself is cut off, an
  // address added meanwhile would otherwise be the Service's only ready endpoint, unverified,
  // while every other one is out.
  const failOpen =
    spec.healthCheck?.failOpen === true &&
    checked.some((v) => v.state === 'Unhealthy') &&
    !checked.some((v) => v.state === 'Healthy');
  return {
    views: views.map((v): AddressView => {
      if (v.state === 'Denied') return v;
      if (drained.has(v.ip)) return { ...v, ready: false, draining: true, serving: v.ready };
      if (failOpen && !unchecked.ips.has(v.ip)) return { ...v, ready: true };
      return v;
    }),
    failOpen,
  };
}

/** A Judge from the deny list alone ("denied: <why>"). */
export function denyListJudge(denyList: Pick<DenyList, 'denies'>): Judge {
  return (ip) => {
    const why = denyList.denies(ip);
    return why === undefined ? undefined : `denied: ${why}`;
  };
}

function metadata(xb: BackendRef, name: string, labels: Record<string, string>) {
  return { name, namespace: xb.namespace, labels, ownerReferences: [ownerReference(xb)] };
}

function endpointPorts(spec: ExternalBackendSpec) {
  return spec.ports.map((p) => ({
    name: p.name,
    port: p.port,
    protocol: p.protocol,
    ...(p.appProtocol !== undefined ? { appProtocol: p.appProtocol } : {}),
  }));
}

/**
 * The pods spec.podSelector selects, as the endpoints controller would publish them for a Service
 * whose target ports are spec.ports (same pure core as selector mode: readiness, terminating and
 * finished pods, IP family of the Service, hostname). `service` supplies the IP family and name.
 */
export function podSubsets(
  spec: ExternalBackendSpec,
  service: CachedService,
  pods: readonly CachedPod[],
): V1EndpointSubset[] {
  const selector = spec.podSelector;
  if (selector === undefined) return [];
  const selected = pods.filter((p) => labelSelectorMatches(selector, p.metadata?.labels));
  const svc: CachedService = {
    ...service,
    spec: {
      ...service.spec,
      ports: spec.ports.map((p) => ({
        name: p.name,
        port: p.port,
        targetPort: p.port,
        protocol: p.protocol,
        ...(p.appProtocol !== undefined ? { appProtocol: p.appProtocol } : {}),
      })),
      publishNotReadyAddresses: false,
    },
  };
  return desiredSubsets(svc, selected);
}

/** Ready and total endpoints that will be published: addresses not denied, plus selected pods. */
export function publishedCounts(
  views: readonly AddressView[],
  pods: readonly V1EndpointSubset[],
): { ready: number; total: number } {
  const published = views.filter((v) => v.state !== 'Denied');
  const pod = countAddresses(pods);
  return {
    ready: published.filter((v) => v.ready).length + pod.ready,
    total: published.length + pod.ready + pod.notReady,
  };
}

/** Endpoints/<service>: published addresses, skip-mirror because outrigger writes the slices. */
export function desiredEndpoints(
  xb: BackendRef,
  spec: ExternalBackendSpec,
  views: readonly AddressView[],
  pods: readonly V1EndpointSubset[] = [],
): V1Endpoints {
  const name = serviceName(xb, spec);
  const addr = (v: AddressView): V1EndpointAddress => ({
    ip: v.ip,
    ...(v.nodeName !== undefined ? { nodeName: v.nodeName } : {}),
    ...(v.hostname !== undefined ? { hostname: v.hostname } : {}),
  });
  const published = views.filter((v) => v.state !== 'Denied');
  const external: V1EndpointSubset[] =
    published.length === 0
      ? []
      : [
          {
            ...(published.some((v) => v.ready)
              ? { addresses: published.filter((v) => v.ready).map(addr) }
              : {}),
            ...(published.some((v) => !v.ready)
              ? { notReadyAddresses: published.filter((v) => !v.ready).map(addr) }
              : {}),
            ports: endpointPorts(spec),
          },
        ];
  // As the endpoints controller: at most 1000 addresses, ready ones first, and say so. The
  // slices carry every endpoint.
  const { subsets, truncated } = truncateSubsets(repackSubsets([...external, ...pods]));
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: {
      ...metadata(xb, name, {
        [labelSkipMirror]: 'true',
        [labelAppManagedBy]: 'outrigger',
        [labelEndpointsManagedBy]: managerName,
      }),
      ...(truncated ? { annotations: { [annotationOverCapacity]: 'truncated' } } : {}),
    },
    subsets,
  };
}

/** The name of a backend's first slice of a family; further ones add "-<n>" (see slices.ts). */
export function sliceName(service: string, family: AddressType): string {
  return sliceBaseName(sliceBase(service), family);
}

function sliceBase(service: string): string {
  return `${service}-outrigger`;
}

/** kube-controller-manager's default for --max-endpoints-per-slice. */
export const defaultMaxEndpointsPerSlice = 100;

interface Conditions {
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

const readiness = (ready: boolean): Conditions => ({ ready, serving: ready, terminating: false });

/**
 * A draining address as a terminating pod is published: not ready, so kube-proxy sends it no new
 * connections (unless nothing else is left), serving while it would be ready, terminating.
 */
function viewConditions(v: AddressView): Conditions {
  return v.draining === true
    ? { ready: false, serving: v.serving === true, terminating: true }
    : readiness(v.ready);
}

function sliceEndpoint(a: V1EndpointAddress, conditions: Conditions): V1Endpoint {
  return {
    addresses: [a.ip],
    conditions,
    ...(a.nodeName ? { nodeName: a.nodeName } : {}),
    ...(a.hostname ? { hostname: a.hostname } : {}),
    ...(a.targetRef ? { targetRef: a.targetRef } : {}),
  };
}

/**
 * Every endpoint to publish in slices, by address family: published addresses, then pods. Each
 * address carries its zone; when every endpoint of its family has one, each also hints its own
 * zone, as the endpointslice controller does for trafficDistribution, so that kube-proxy keeps a
 * zone's traffic in it. One endpoint of a family without a zone (a pod, an address without one)
 * means no hints in that family: kube-proxy would fall back to every endpoint anyway.
 */
export function sliceEndpoints(
  views: readonly AddressView[],
  pods: readonly V1EndpointSubset[] = [],
): Map<AddressType, V1Endpoint[]> {
  const published = views.filter((v) => v.state !== 'Denied');
  const familyOf = (ip: string) => parseIP(ip)?.family;
  // kube-proxy reads hints per slice, hence per family.
  const unzoned = new Set([
    ...published.filter((v) => v.zone === undefined).map((v) => familyOf(v.ip)),
    ...pods.flatMap((s) =>
      [...(s.addresses ?? []), ...(s.notReadyAddresses ?? [])].map((a) => familyOf(a.ip)),
    ),
  ]);
  const all: V1Endpoint[] = published.map((v) => ({
    ...sliceEndpoint(
      {
        ip: v.ip,
        ...(v.nodeName !== undefined ? { nodeName: v.nodeName } : {}),
        ...(v.hostname !== undefined ? { hostname: v.hostname } : {}),
      },
      viewConditions(v),
    ),
    ...(v.zone !== undefined ? { zone: v.zone } : {}),
    ...(v.zone !== undefined && !unzoned.has(familyOf(v.ip))
      ? { hints: { forZones: [{ name: v.zone }] } }
      : {}),
  }));
  for (const s of pods) {
    for (const a of s.addresses ?? []) all.push(sliceEndpoint(a, readiness(true)));
    for (const a of s.notReadyAddresses ?? []) all.push(sliceEndpoint(a, readiness(false)));
  }
  const out = new Map<AddressType, V1Endpoint[]>([
    ['IPv4', []],
    ['IPv6', []],
  ]);
  for (const e of all) {
    const family = parseIP(e.addresses[0] ?? '')?.family;
    if (family !== undefined) out.get(family)?.push(e);
  }
  return out;
}

/** A slice of this backend around a name and its endpoints: labels, owner, ports. */
export function sliceTemplate(
  xb: BackendRef,
  spec: ExternalBackendSpec,
): (name: string, addressType: AddressType, endpoints: V1Endpoint[]) => V1EndpointSlice {
  const service = serviceName(xb, spec);
  const ports = endpointPorts(spec);
  return (name, addressType, endpoints) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: metadata(xb, name, {
      [labelServiceName]: service,
      [labelSliceManagedBy]: managerName,
      [labelAppManagedBy]: 'outrigger',
    }),
    addressType,
    endpoints,
    ports,
  });
}

/** What the planner needs to know of a slice this backend owns. */
export function ownedSlice(
  current: V1EndpointSlice,
  xb: BackendRef,
  spec: ExternalBackendSpec,
): OwnedSlice {
  const want = sliceTemplate(xb, spec)(current.metadata?.name ?? '', 'IPv4', []);
  return {
    name: current.metadata?.name ?? '',
    addressType: current.addressType,
    endpoints: current.endpoints ?? [],
    metaUpToDate:
      hasLabels(current.metadata?.labels, want.metadata?.labels) &&
      ownedBy(current, want) &&
      portsFingerprint(current.ports) === portsFingerprint(want.ports),
  };
}

/** The slices and writes that publish these endpoints, given the slices the backend owns. */
export function planBackendSlices(
  xb: BackendRef,
  spec: ExternalBackendSpec,
  owned: readonly V1EndpointSlice[],
  endpoints: ReadonlyMap<AddressType, readonly V1Endpoint[]>,
  maxEndpointsPerSlice: number,
): SlicePlan {
  return planSlices({
    existing: owned.map((s) => ownedSlice(s, xb, spec)),
    desired: endpoints,
    baseName: sliceBase(serviceName(xb, spec)),
    maxEndpointsPerSlice,
    template: sliceTemplate(xb, spec),
  });
}

/** The slices a backend would create from nothing (tests and the oracle's view of the result). */
export function desiredSlices(
  xb: BackendRef,
  spec: ExternalBackendSpec,
  views: readonly AddressView[],
  pods: readonly V1EndpointSubset[] = [],
  maxEndpointsPerSlice = defaultMaxEndpointsPerSlice,
): V1EndpointSlice[] {
  return [
    ...planBackendSlices(xb, spec, [], sliceEndpoints(views, pods), maxEndpointsPerSlice).creates,
  ];
}

function hasLabels(
  current: Readonly<Record<string, string>> | undefined,
  want: Readonly<Record<string, string>> | undefined,
): boolean {
  return Object.entries(want ?? {}).every(([k, v]) => current?.[k] === v);
}

function ownedBy(
  current: { metadata?: { ownerReferences?: readonly V1OwnerReference[] } },
  want: { metadata?: { ownerReferences?: readonly V1OwnerReference[] } },
): boolean {
  return (want.metadata?.ownerReferences ?? []).every((w) =>
    current.metadata?.ownerReferences?.some((o) => o.uid === w.uid && o.controller === true),
  );
}

/** Whether the stored Endpoints already say what outrigger wants (extra labels of others are kept). */
export function endpointsUpToDate(current: V1Endpoints | undefined, want: V1Endpoints): boolean {
  return (
    current !== undefined &&
    hasLabels(current.metadata?.labels, want.metadata?.labels) &&
    ownedBy(current, want) &&
    subsetsEqual(current.subsets, want.subsets) &&
    current.metadata?.annotations?.[annotationOverCapacity] ===
      want.metadata?.annotations?.[annotationOverCapacity]
  );
}
