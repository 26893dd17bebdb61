// Which addresses of an ExternalBackend are published and how each stands: the views the planner,
// the status and the slices share, judged by the deny list and the address policy.
import { candidateAddresses, noResolutions, type Candidate } from '../../sources/index.ts';

import type { V1EndpointSlice, V1EndpointSubset } from '@kubernetes/client-node';
import { countAddresses } from '../../endpoints/subsets.ts';
import { isReady, type AddressHealth } from '../../health/state.ts';
import { decideBackups, type BackupDecision } from './backups.ts';
import type { Verdict } from '../../quorum/vote.ts';

import type { DenyList } from '../../net/denylist.ts';

import type { ExternalBackendSpec } from '../../api/externalbackend.ts';
import { ownership, type BackendRef } from './owner.ts';

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
  /** Listed under spec.backup. */
  readonly backup?: true;
  /** A backup while the primaries suffice: checked, not published. */
  readonly standby?: true;
  /** How the probers voted, where several check it (--probers-per-address). */
  readonly probers?: Verdict;
}

/** Whether an address is in the Endpoints and slices (ready or not). */
export function isPublished(v: AddressView): boolean {
  return v.state !== 'Denied' && v.standby !== true;
}

/** What the backup rule needs beyond the views (see backups.ts). */
export interface BackupContext {
  readonly readyPods: number;
  readonly wasActive: boolean;
  readonly now: number;
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
  backupContext: BackupContext = { readyPods: 0, wasActive: false, now: 0 },
): { views: AddressView[]; failOpen: boolean; backups?: BackupDecision } {
  const views: AddressView[] = candidates.map((a) => {
    const extra = {
      ...(a.nodeName !== undefined ? { nodeName: a.nodeName } : {}),
      ...(a.hostname !== undefined ? { hostname: a.hostname } : {}),
      ...(a.dnsName !== undefined ? { dnsName: a.dnsName } : {}),
      ...(a.zone !== undefined ? { zone: a.zone } : {}),
      ...(a.backup === true ? { backup: true as const } : {}),
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
  const backups =
    spec.backup === undefined
      ? undefined
      : decideBackups({
          minReadyPrimaries: spec.backup.minReadyPrimaries,
          primaries: views
            .filter((v) => v.backup !== true && v.state !== 'Denied')
            .map((v) => {
              const ready = v.ready && !drained.has(v.ip) && !unchecked.ips.has(v.ip);
              return {
                ready,
                readySince:
                  spec.healthCheck === undefined ? 0 : v.state === 'Healthy' ? v.since : undefined,
              };
            }),
          readyPods: backupContext.readyPods,
          wasActive: backupContext.wasActive,
          now: backupContext.now,
          settleMs:
            spec.healthCheck === undefined
              ? 0
              : spec.healthCheck.healthyThreshold * spec.healthCheck.intervalSeconds * 1000,
        });
  const standby = (v: AddressView): boolean =>
    v.backup === true && v.state !== 'Denied' && backups?.active !== true;
  // Drained addresses are out of rotation on purpose: they neither trigger fail-open nor are
  // brought back by it. Fail-open applies to what is published: backups on standby are not.
  const checked = views.filter(
    (v) => v.state !== 'Denied' && !unchecked.ips.has(v.ip) && !drained.has(v.ip) && !standby(v),
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
      if (standby(v)) return { ...v, ready: false, standby: true };
      if (drained.has(v.ip)) return { ...v, ready: false, draining: true, serving: v.ready };
      if (failOpen && !unchecked.ips.has(v.ip)) return { ...v, ready: true };
      return v;
    }),
    failOpen,
    ...(backups !== undefined ? { backups } : {}),
  };
}

/** A Judge from the deny list alone ("denied: <why>"). */
export function denyListJudge(denyList: Pick<DenyList, 'denies'>): Judge {
  return (ip) => {
    const why = denyList.denies(ip);
    return why === undefined ? undefined : `denied: ${why}`;
  };
}

/** Ready and total endpoints that will be published: addresses not denied and not on standby, plus selected pods. */
export function publishedCounts(
  views: readonly AddressView[],
  pods: readonly V1EndpointSubset[],
): { ready: number; total: number } {
  const published = views.filter(isPublished);
  const pod = countAddresses(pods);
  return {
    ready: published.filter((v) => v.ready).length + pod.ready,
    total: published.length + pod.ready + pod.notReady,
  };
}
