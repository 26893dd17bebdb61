// One reconcile of an ExternalBackend as a pure function: what the reconciler gathered from its
// caches and the probe scheduler (a BackendWorld) in, every change to make (a BackendPlan) out:
// probe targets, the Service, the Endpoints, the EndpointSlices, leftovers to delete. decide.ts
// turns it into the operations apply.ts performs and the status (status.ts) that follows.
import { candidateAddresses, type Candidate } from '../../sources/index.ts';
import { pending, type Resolution } from '../../dns/resolution.ts';
import { applyDrain } from './drain.ts';
import type {
  V1EndpointSlice,
  V1Endpoints,
  V1Service,
  V1ServicePort,
} from '@kubernetes/client-node';
import type { CachedPod, CachedService } from '../../runtime/cached.ts';
import { noRefs, probeFor, type ProbeRefs, type ProbeSpec } from '../../health/kinds/index.ts';
import type { Target } from '../../health/scheduler.ts';
import { initialHealth, type AddressHealth } from '../../health/state.ts';
import { addressViews, publishedCounts, type AddressView, type Judge } from './addresses.ts';
import { decideService, desiredService, serviceName } from './service.ts';
import {
  desiredEndpoints,
  endpointsUpToDate,
  planBackendSlices,
  podSubsets,
  sliceEndpoints,
} from './desired.ts';
import { endpointsHolder, ownership, type BackendRef } from './owner.ts';
import { dnsNamesOf, maxAddresses, type ExternalBackendSpec } from '../../api/externalbackend.ts';
import type { ExternalBackendStatus } from '../../api/externalbackendstatus.ts';
import type { ForeignEndpoints, Problem } from './ready.ts';
import { adoptionBlocker, foreignMessage, heldMessage } from './foreign.ts';
import type { OwnedKind } from './writer.ts';
import { backupsWereActive, type BackupDecision } from './backups.ts';
import type { Verdict } from '../../quorum/vote.ts';

export type { OwnedKind };

export interface NodeGrantNote {
  readonly ip: string;
  /** "address of Node n1, by ExternalBackendPolicy rule etcd/members". */
  readonly grant: string;
}

export interface BackendWorld {
  readonly ref: BackendRef;
  readonly spec: ExternalBackendSpec;
  readonly previous: ExternalBackendStatus | undefined;
  /** Why an address may not be published (deny list, address policy). */
  readonly judge: Judge;
  /** Why address-policy decisions are frozen (the grants are missing or unreadable), if they are. */
  readonly policyFrozen?: string | undefined;
  /**
   * For an address the judge allows only because an ExternalBackendPolicy rule grants Node
   * addresses: which Node's it is and which rule granted it ("address of Node n1, by ...").
   */
  readonly nodeGrants?: (ip: string) => string | undefined;
  /** What health checks read from Secrets and ConfigMaps (CA bundles, header values). */
  readonly refs?: ProbeRefs;
  /** The entries of the drain annotation (see drain.ts). */
  readonly drainEntries: ReadonlySet<string>;
  /** What the resolver knows of the names in spec.dnsNames (absent: not looked up yet). */
  readonly resolutions: ReadonlyMap<string, Resolution>;
  /** Health of this backend's running probe targets, by target key (decided by the quorum). */
  readonly health: ReadonlyMap<string, AddressHealth>;
  /** How the probers voted on each address, by IP, where standbys report on the backend. */
  readonly verdicts?: ReadonlyMap<string, Verdict>;
  /** How many probe targets this backend may have: the namespace's limit less its neighbours'. */
  readonly probeRoom: number;
  readonly probeLimit: number;
  /** The Service by the backend's Service name, as cached. */
  readonly service: CachedService | undefined;
  /** The Endpoints by the Service's name, as outrigger knows it (cache or its own last write). */
  readonly endpoints: V1Endpoints | undefined;
  /** Cached slices of the namespace with outrigger's label, as outrigger knows them. */
  readonly slices: readonly V1EndpointSlice[];
  /** Services and Endpoints of the namespace that this backend owns. */
  readonly ownedServices: readonly CachedService[];
  readonly ownedEndpoints: readonly V1Endpoints[];
  /** Pods of the namespace (only read when the spec has a podSelector). */
  readonly pods: readonly CachedPod[];
  /** The backend carries the adopt-endpoints opt-in (see adoptionBlocker). */
  readonly adoptEndpoints?: boolean;
  readonly maxEndpointsPerSlice: number;
  readonly now: number;
}

export interface ObjectRef {
  readonly kind: OwnedKind;
  readonly name: string;
  readonly uid: string;
}

export interface BackendPlan {
  /** The DNS names to keep resolved for this backend; the resolver forgets its others. */
  readonly names: readonly string[];
  /** What each of those names resolves to, for status (Pending when not looked up yet). */
  readonly resolutions: readonly Resolution[];
  /** Resolved addresses beyond maxAddresses, not published. */
  readonly leftOut: number;
  /**
   * Why the health check cannot run at all (a Secret or ConfigMap it names cannot be read): said
   * once for the backend, whether or not any address is probed.
   */
  readonly checkRefused?: string;
  /** Why address-policy decisions are frozen, said once for the backend. */
  readonly policyFrozen?: string;
  /** Published addresses that are Nodes' and the grant that allows each (status, an Event). */
  readonly nodeGrants: readonly NodeGrantNote[];
  /** Entries of the drain annotation that name nothing this backend has. */
  readonly drainUnmatched: readonly string[];
  /** Every probe target the backend should have; the scheduler drops its others. */
  readonly probes: readonly Target[];
  readonly unchecked: ReadonlySet<string>;
  readonly views: readonly AddressView[];
  readonly failOpen: boolean;
  /** Whether backups are published (a backend with spec.backup only). */
  readonly backups?: BackupDecision;
  readonly counts: { readonly ready: number; readonly total: number };
  /** Why nothing is written (a missing or selector Service, a foreign object in the way). */
  readonly refused?: { readonly reason: Problem; readonly message: string };
  readonly service?:
    | { readonly op: 'create'; readonly service: V1Service }
    | { readonly op: 'ports'; readonly name: string; readonly ports: V1ServicePort[] };
  readonly endpoints?:
    | { readonly op: 'create'; readonly want: V1Endpoints }
    | { readonly op: 'apply'; readonly want: V1Endpoints; readonly current: V1Endpoints }
    /** Takes over a hand-written Endpoints in place (the backend's opt-in; see planBackend). */
    | { readonly op: 'adopt'; readonly want: V1Endpoints; readonly current: V1Endpoints };
  /**
   * The Service's Endpoints is held by another writer and left alone, while the backend's own
   * slices are published beside the mirrored one (a migration in progress).
   */
  readonly foreignEndpoints?: ForeignEndpoints;
  readonly sliceCreates: readonly V1EndpointSlice[];
  readonly sliceUpdates: readonly {
    readonly want: V1EndpointSlice;
    readonly current: V1EndpointSlice;
  }[];
  /** Slices, then Endpoints and Services this backend owns and no longer wants. */
  readonly deletes: readonly ObjectRef[];
  /** The Service was created by someone else and is only read. */
  readonly adopted: boolean;
}

function probeSpec(spec: ExternalBackendSpec, ip: string, refs: ProbeRefs): ProbeSpec | undefined {
  if (spec.healthCheck === undefined) return undefined;
  return probeFor(
    spec.healthCheck,
    ip,
    (p) => (typeof p === 'number' ? p : spec.ports.find((x) => x.name === p)?.port),
    refs,
  );
}

/** Why the backend's check cannot run, whatever the address (refusals never depend on it). */
function checkRefusal(w: BackendWorld): { checkRefused?: string } {
  const sample = probeSpec(w.spec, '0.0.0.0', w.refs ?? noRefs);
  return sample?.refused !== undefined ? { checkRefused: sample.refused } : {};
}

/** The probe target key of one address of a backend ("<namespace>/<name>/<ip>"). */
export function targetKey(ref: BackendRef, ip: string): string {
  return `${ref.namespace}/${ref.name}/${ip}`;
}

/**
 * The probe targets of a backend, in spec order up to its room under the namespace's limit
 * (targets that already run come first, so a neighbour cannot take their place), with each
 * address's health: the running target's, or where a new one starts (the published state, so
 * that a restart does not flap a known-bad address).
 */
export function planProbes(
  w: BackendWorld,
  addresses: readonly Candidate[] = candidateAddresses(w),
): {
  probes: Target[];
  health: Map<string, AddressHealth>;
  unchecked: Set<string>;
} {
  const probes: Target[] = [];
  const health = new Map<string, AddressHealth>();
  const unchecked = new Set<string>();
  const hc = w.spec.healthCheck;
  if (hc === undefined) return { probes, health, unchecked };
  const before = new Map((w.previous?.addresses ?? []).map((a) => [a.ip, a.state]));
  const candidates = addresses
    .map((a) => ({
      ip: a.ip,
      spec: probeSpec(w.spec, a.ip, w.refs ?? noRefs),
      key: targetKey(w.ref, a.ip),
    }))
    .filter((c) => c.spec !== undefined && w.judge(c.ip) === undefined);
  const running = candidates.filter((c) => w.health.has(c.key));
  const waiting = candidates.filter((c) => !w.health.has(c.key));
  let room = w.probeRoom;
  for (const c of [...running, ...waiting]) {
    if (c.spec === undefined) continue;
    if (room === 0) {
      unchecked.add(c.ip);
      continue;
    }
    room--;
    const prev = before.get(c.ip);
    const initialState = prev === 'Healthy' || prev === 'Unhealthy' ? prev : undefined;
    probes.push({
      key: c.key,
      tenant: [w.ref.namespace, w.ref.name],
      spec: c.spec,
      ...(w.nodeGrants?.(c.ip) !== undefined ? { nodeGrant: true as const } : {}),
      intervalMs: hc.intervalSeconds * 1000,
      timeoutMs: hc.timeoutSeconds * 1000,
      thresholds: {
        healthyThreshold: hc.healthyThreshold,
        unhealthyThreshold: hc.unhealthyThreshold,
      },
      ...(initialState !== undefined ? { initialState } : {}),
    });
    health.set(c.ip, w.health.get(c.key) ?? initialHealth(w.now, initialState));
  }
  return { probes, health, unchecked };
}

export function planBackend(w: BackendWorld): BackendPlan {
  const { ref, spec } = w;
  const names = dnsNamesOf(spec);
  const drained = applyDrain(
    candidateAddresses(w),
    w.drainEntries,
    new Map(names.map((n) => [n, w.resolutions.get(n)?.ips ?? []])),
  );
  const addresses = drained.candidates.slice(0, maxAddresses);
  const { probes, health, unchecked } = planProbes(w, addresses);
  const pods = podSubsets(spec, w.service ?? desiredService(ref, spec), w.pods);
  const {
    views: own,
    failOpen,
    backups,
  } = addressViews(
    spec,
    health,
    w.judge,
    {
      ips: unchecked,
      message: `not checked: namespace ${ref.namespace} has reached its limit of ${String(w.probeLimit)} health-check targets; published not ready`,
    },
    addresses,
    {
      readyPods: new Set(pods.flatMap((p) => (p.addresses ?? []).map((a) => a.ip))).size,
      wasActive: backupsWereActive(w.previous),
      now: w.now,
    },
  );
  const views = own.map((v) => {
    const probers = w.verdicts?.get(v.ip);
    return probers === undefined || v.state === 'Denied' ? v : { ...v, probers };
  });
  const svcName = serviceName(ref, spec);
  const decision = decideService(ref, spec, w.service);
  const counts = publishedCounts(views, pods);
  const base = {
    drainUnmatched: drained.unmatched,
    leftOut: drained.candidates.length - addresses.length,
    ...checkRefusal(w),
    ...(w.policyFrozen !== undefined ? { policyFrozen: w.policyFrozen } : {}),
    nodeGrants: views.flatMap((v) => {
      const grant = v.state === 'Denied' ? undefined : w.nodeGrants?.(v.ip);
      return grant === undefined ? [] : [{ ip: v.ip, grant }];
    }),
    names,
    resolutions: names.map((n) => w.resolutions.get(n) ?? pending(n)),
    probes,
    unchecked,
    views,
    failOpen,
    ...(backups !== undefined ? { backups } : {}),
    counts,
    sliceCreates: [],
    sliceUpdates: [],
    deletes: [],
    adopted: decision.action === 'none' && decision.adopted,
  };
  if (decision.action === 'refuse')
    return { ...base, refused: { reason: decision.reason, message: decision.message } };
  // A hand-written Endpoints (the seed setup) is no reason to hold the backend back: kube-proxy
  // reads EndpointSlices only and merges every slice of the Service, so the backend's own slices
  // can carry traffic beside the mirrored one before the Endpoints goes. Another controller's
  // Endpoints is refused: two controllers would fight over what the Service means.
  const foreign = ownership(w.endpoints, ref) === 'foreign' ? w.endpoints : undefined;
  if (foreign !== undefined && endpointsHolder(foreign) === 'controller')
    return {
      ...base,
      refused: {
        reason: 'EndpointsConflict',
        message: foreignMessage('Endpoints', svcName, foreign),
      },
    };

  const ep = desiredEndpoints(ref, spec, views, pods);
  const endpoints =
    foreign !== undefined
      ? undefined
      : w.endpoints === undefined
        ? { op: 'create' as const, want: ep }
        : endpointsUpToDate(w.endpoints, ep)
          ? undefined
          : { op: 'apply' as const, want: ep, current: w.endpoints };

  const mine = w.slices.filter((s) => ownership(s, ref) === 'ours');
  const slicePlan = planBackendSlices(
    ref,
    spec,
    mine,
    sliceEndpoints(views, pods),
    w.maxEndpointsPerSlice,
  );
  const byName = new Map(w.slices.map((s) => [s.metadata?.name ?? '', s]));
  // A slice under a name the plan creates that carries outrigger's label but not this backend's
  // owner (copied labels, another backend's Service of the same name): not ours to take.
  for (const s of slicePlan.creates) {
    const name = s.metadata?.name ?? '';
    const there = byName.get(name);
    if (there !== undefined)
      return {
        ...base,
        refused: {
          reason: 'EndpointsConflict',
          message: foreignMessage('EndpointSlice', name, there),
        },
      };
  }
  const sliceUpdates = slicePlan.updates.map((want) => {
    const current = byName.get(want.metadata?.name ?? '');
    if (current === undefined) throw new Error('planned an update of a slice that is not there');
    return { want, current };
  });
  const uid = (o: { metadata?: { uid?: string } } | undefined): string => o?.metadata?.uid ?? '';
  const deletes: ObjectRef[] = [
    ...slicePlan.deletes.map((name) => ({
      kind: 'EndpointSlice' as const,
      name,
      uid: uid(byName.get(name)),
    })),
    ...w.ownedEndpoints
      .filter((e) => e.metadata?.name !== svcName)
      .map((e) => ({ kind: 'Endpoints' as const, name: e.metadata?.name ?? '', uid: uid(e) })),
    ...w.ownedServices
      .filter((s) => base.adopted || s.metadata?.name !== svcName)
      .map((s) => ({ kind: 'Service' as const, name: s.metadata?.name ?? '', uid: uid(s) })),
  ];
  // Adoption is an update of the object in place, never a delete and create: readers of Endpoints
  // (Prometheus' endpoints discovery, old clients) see it change, never go. It waits for a
  // reconcile that has nothing left to write to the slices, i.e. one that found them in the cache.
  const blocker =
    foreign !== undefined && w.adoptEndpoints === true
      ? adoptionBlocker(slicePlan.creates.length + slicePlan.updates.length, views, unchecked)
      : undefined;
  const adoption =
    foreign !== undefined && w.adoptEndpoints === true && blocker === undefined
      ? { endpoints: { op: 'adopt' as const, want: ep, current: foreign } }
      : foreign !== undefined
        ? {
            foreignEndpoints: {
              reason:
                w.adoptEndpoints === true
                  ? ('AdoptionPending' as const)
                  : ('EndpointsHeldByAnotherWriter' as const),
              message: heldMessage(svcName, foreign, blocker),
            },
          }
        : {};
  return {
    ...base,
    ...adoption,
    ...(decision.action === 'create'
      ? { service: { op: 'create' as const, service: decision.service } }
      : decision.action === 'update'
        ? {
            service: {
              op: 'ports' as const,
              name: svcName,
              ports: decision.ports,
            },
          }
        : {}),
    ...(endpoints !== undefined ? { endpoints } : {}),
    sliceCreates: slicePlan.creates,
    sliceUpdates,
    deletes,
  };
}
