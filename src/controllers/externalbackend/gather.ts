// The read half of a reconcile: everything one backend's plan depends on, read from the caches,
// outrigger's own writes the caches do not show yet (the mutation caches), the probe scheduler,
// the resolver and the controller's per-backend state, into one value. Reads only: nothing here
// changes what any of them remembers.
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import {
  adoptEndpointsAnnotation,
  dnsNamesOf,
  drainAnnotation,
  type ExternalBackendSpec,
} from '../../api/externalbackend.ts';
import type { ExternalBackendStatus } from '../../api/externalbackendstatus.ts';
import { parsedSpec, type ParsedSpec } from '../../api/parsed.ts';
import type { CachedExternalBackend } from '../../api/resources.ts';
import type { Resolution } from '../../dns/resolution.ts';
import type { AddressHealth } from '../../health/state.ts';
import type { Verdict } from '../../quorum/vote.ts';
import type { CachedPod, CachedService } from '../../runtime/cached.ts';
import { splitKey } from '../../runtime/keys.ts';
import type { Cache } from './options.ts';
import type { MutationCache } from '../../runtime/mutationcache.ts';
import { ownership, type BackendRef } from './owner.ts';
import { serviceName } from './service.ts';
import { parseDrainAnnotation } from './drain.ts';
import { judgeBackend, type PolicySources } from './judge.ts';
import { probeRefsOfBackend } from './keys.ts';
import type { BackendWorld } from './plan.ts';
import { refsOf, sourcesCover, sourcesLost, type CheckSources } from './sources.ts';
import { parseStatus } from './status.ts';
import type { BackendStates } from './state.ts';

export interface GatherSources extends CheckSources, PolicySources {
  /** ExternalBackends as outrigger knows them: cached, or with the status it last wrote. */
  readonly backends: MutationCache<CachedExternalBackend>;
  readonly services: Cache<CachedService>;
  readonly endpoints: Cache<V1Endpoints>;
  /** Endpoints and slices as outrigger knows them (cache, or its own last write). */
  readonly endpointWrites: MutationCache<V1Endpoints>;
  readonly slices: Cache<V1EndpointSlice>;
  readonly sliceWrites: MutationCache<V1EndpointSlice>;
  readonly pods: Cache<CachedPod> | undefined;
  /** Whether spec.podSelector is served (--pod-selector). */
  readonly podSelector: boolean;
  readonly health: (target: string) => AddressHealth | undefined;
  /**
   * What a name resolves to. A standby is given the backend's status too: it checks the addresses
   * the leader resolved, so that every prober votes on the same ones.
   */
  readonly resolution: (
    name: string,
    status: ExternalBackendStatus | undefined,
  ) => Resolution | undefined;
  /** The leader's quorum of probers (--probers-per-address above 1); absent: its own view decides. */
  readonly quorum?: {
    decide(
      backendKey: string,
      ip: string,
      own: AddressHealth | undefined,
      now: number,
      maxProbers: number | undefined,
    ): { health: AddressHealth; verdict: Verdict } | undefined;
  };
  readonly states: BackendStates;
  readonly settings: Settings;
}

/** The controller's configuration the plan reads. */
export interface Settings {
  readonly maxProbeTargetsPerNamespace: number;
  readonly maxEndpointsPerSlice: number;
  readonly certificateWarningMs: number;
  readonly statusBatchMs: number;
}

/** One backend, as gathered for one reconcile. */
export interface Gathered {
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly now: number;
  readonly settings: Settings;
  /** Absent: the backend is gone or being deleted. */
  readonly backend?: BackendFacts;
}

export interface BackendFacts {
  readonly ref: BackendRef;
  /** The resourceVersion read (outrigger's own status write while the cache lags it). */
  readonly resourceVersion: string | undefined;
  readonly generation: number;
  readonly previous: ExternalBackendStatus | undefined;
  readonly spec: ParsedSpec;
  readonly podSelectorServed: boolean;
  /** The namespace's caches hold what publishing needs (a namespace just starting is filling). */
  readonly cachesCover: boolean;
  readonly statusWrittenAt: number | undefined;
  readonly checkSourcesLost: string | undefined;
  /** What planBackend reads; present when the spec is valid and the caches cover it. */
  readonly world?: BackendWorld;
}

export function gather(s: GatherSources, key: string, now: number): Gathered {
  const [namespace, name] = splitKey(key);
  const base = { key, namespace, name, now, settings: s.settings };
  const xb = s.backends.get(namespace, name);
  if (xb === undefined || xb.metadata?.deletionTimestamp !== undefined) return base;
  const ref: BackendRef = { namespace, name, uid: xb.metadata?.uid ?? '' };
  const spec = parsedSpec(xb);
  const refs = probeRefsOfBackend(xb);
  const previous = parseStatus(xb.status);
  const cachesCover =
    spec.success &&
    s.services.hasSyncedNamespace(namespace) &&
    s.endpoints.hasSyncedNamespace(namespace) &&
    (spec.data.podSelector === undefined || s.pods?.hasSyncedNamespace(namespace) === true) &&
    sourcesCover(s, namespace, refs, now);
  const facts: BackendFacts = {
    ref,
    resourceVersion: xb.metadata?.resourceVersion,
    generation: xb.metadata?.generation ?? 0,
    previous,
    spec,
    podSelectorServed: s.pods !== undefined && s.podSelector,
    cachesCover,
    statusWrittenAt: s.states.get(key).statusWrittenAt,
    checkSourcesLost: sourcesLost(s, namespace, refs),
  };
  if (!spec.success || !cachesCover) return { ...base, backend: facts };
  return {
    ...base,
    backend: { ...facts, world: world(s, key, xb, ref, spec.data, previous, now) },
  };
}

function world(
  s: GatherSources,
  key: string,
  xb: CachedExternalBackend,
  ref: BackendRef,
  spec: ExternalBackendSpec,
  previous: ExternalBackendStatus | undefined,
  now: number,
): BackendWorld {
  const { namespace } = ref;
  const svcName = serviceName(ref, spec);
  const health = new Map<string, AddressHealth>();
  const verdicts = new Map<string, Verdict>();
  for (const t of s.states.get(key).targets) {
    const h = s.health(t);
    const ip = t.slice(t.lastIndexOf('/') + 1);
    const d = s.quorum?.decide(key, ip, h, now, spec.healthCheck?.maxProbers);
    if (d !== undefined) verdicts.set(ip, d.verdict);
    const decided = d?.health ?? h;
    if (decided !== undefined) health.set(t, decided);
  }
  const slices = s.slices
    .list(namespace)
    .map((c) => s.sliceWrites.get(namespace, c.metadata?.name ?? '') ?? c);
  const resolutions = new Map<string, Resolution>();
  for (const name of dnsNamesOf(spec)) {
    const r = s.resolution(name, previous);
    if (r !== undefined) resolutions.set(name, r);
  }
  const limit = s.settings.maxProbeTargetsPerNamespace;
  return {
    ref,
    spec,
    previous,
    resolutions,
    drainEntries: parseDrainAnnotation(xb.metadata?.annotations?.[drainAnnotation]),
    ...judgeBackend(s, ref, spec, slices, now),
    refs: refsOf(s, namespace, now),
    health,
    ...(verdicts.size > 0 ? { verdicts } : {}),
    probeRoom: Math.max(0, limit - s.states.neighbourTargets(key)),
    probeLimit: limit,
    service: s.services.get(namespace, svcName),
    endpoints: s.endpointWrites.get(namespace, svcName),
    slices,
    ownedServices: s.services.list(namespace).filter((x) => ownership(x, ref) === 'ours'),
    ownedEndpoints: s.endpoints.list(namespace).filter((e) => ownership(e, ref) === 'ours'),
    pods: spec.podSelector === undefined ? [] : (s.pods?.list(namespace) ?? []),
    adoptEndpoints: xb.metadata?.annotations?.[adoptEndpointsAnnotation] === 'true',
    maxEndpointsPerSlice: s.settings.maxEndpointsPerSlice,
    now,
  };
}
