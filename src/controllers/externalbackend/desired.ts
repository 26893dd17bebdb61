// The Endpoints and EndpointSlices an ExternalBackend should make exist, as pure functions of its
// spec and the address views (addresses.ts); the Service is service.ts's, ownership owner.ts's.
// The reconciler gathers the inputs from its caches and writes only what differs.
import { ownerReference, type BackendRef } from './owner.ts';

import { isPublished, type AddressView } from './addresses.ts';

import { serviceName } from './service.ts';

import {
  labelAppManagedBy,
  labelEndpointsManagedBy,
  labelServiceName,
  labelSkipMirror,
  labelSliceManagedBy,
  managerName,
} from '../../api/names.ts';

import type {
  V1Endpoint,
  V1EndpointAddress,
  V1EndpointSlice,
  V1EndpointSubset,
  V1Endpoints,
  V1OwnerReference,
} from '@kubernetes/client-node';

import type { CachedPod, CachedService } from '../../runtime/cached.ts';

import { annotationOverCapacity, desiredSubsets } from '../../endpoints/desired.ts';

import { parseIP } from '../../endpoints/pod.ts';

import { labelSelectorMatches } from '../../runtime/labels.ts';

import { repackSubsets, subsetsEqual, truncateSubsets } from '../../endpoints/subsets.ts';

import type { ExternalBackendSpec } from '../../api/externalbackend.ts';

import {
  planSlices,
  portsFingerprint,
  sliceBaseName,
  type AddressType,
  type OwnedSlice,
  type SlicePlan,
} from './slices.ts';

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
  const published = views.filter(isPublished);
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
 * The zones an address is hinted for: its own, unless every prober of its own zone sees it fail
 * while probers of other zones reach it (a zone's path to it is cut, not the server); then the
 * zones that reach it, so that kube-proxy in its own zone, with trafficDistribution PreferSameZone,
 * sends its connections to the zone's other servers rather than to one it cannot reach.
 * Measured in e2e/quorum-zones.e2e.test.ts; only probers that are counted (not partitioned) shape it.
 */
export function hintZones(v: AddressView, zone: string): string[] {
  const p = v.probers;
  if (p === undefined || p.zonesHealthy.length === 0) return [zone];
  const cut = p.zonesUnhealthy.includes(zone) && !p.zonesHealthy.includes(zone);
  return cut ? [...p.zonesHealthy] : [zone];
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
  const published = views.filter(isPublished);
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
      ? { hints: { forZones: hintZones(v, v.zone).map((name) => ({ name })) } }
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
