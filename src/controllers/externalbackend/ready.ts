// The Ready condition of an ExternalBackend as a pure function of what the reconciler saw: each
// way a backend can fail to serve has its own reason, and its message names what to do.
import type { Resolution } from '../../dns/resolution.ts';
import { isPublished, type AddressState, type AddressView } from './addresses.ts';
import type { BackupDecision } from './backups.ts';
import { drainAnnotation, maxAddresses } from '../../api/externalbackend.ts';

/** Why Ready is False: each way a backend can fail to serve has its own reason. */
export type Problem =
  | 'InvalidSpec'
  | 'PodSelectorDisabled'
  | 'ServiceNotFound'
  | 'ServiceHasSelector'
  | 'EndpointsConflict'
  | 'WriteFailed';

export type ReadyReason = 'AddressesReady' | 'NoReadyAddresses' | 'FailingOpen' | Problem;

/**
 * The Service's Endpoints is held by another writer and left alone while the backend's own slices
 * are published beside the mirrored one: a migration from a hand-written Endpoints in progress.
 * Reported as condition ForeignEndpoints (True; left out otherwise, as CertificateExpiringSoon is)
 * rather than as Ready, which keeps saying whether what outrigger publishes serves.
 */
export interface ForeignEndpoints {
  readonly reason: 'EndpointsHeldByAnotherWriter' | 'AdoptionPending';
  readonly message: string;
}

export const foreignEndpointsConditionType = 'ForeignEndpoints';

export interface ReadyInput {
  /** Something stopped the reconciler from publishing; takes precedence over health. */
  readonly problem?: { readonly reason: Problem; readonly message: string } | undefined;
  readonly views: readonly AddressView[];
  readonly counts: { readonly ready: number; readonly total: number };
  readonly failOpen: boolean;
  /** The backend's DNS names and what the resolver knows of them. */
  readonly names?: readonly Resolution[] | undefined;
  /** Entries of the drain annotation that name nothing the backend has. */
  readonly drainUnmatched?: readonly string[] | undefined;
  /** Resolved addresses left out: the backend has more than maxAddresses. */
  readonly leftOut?: number | undefined;
  /** Why the health check cannot run (a Secret or ConfigMap it names cannot be read). */
  readonly checkRefused?: string | undefined;
  /**
   * Why the Secrets or ConfigMaps the check reads can no longer be listed (a grant withdrawn),
   * while it goes on with the values read before: said before anything changes for the check.
   */
  readonly checkSourcesLost?: string | undefined;
  /** Why address-policy decisions are frozen (grants missing or unreadable), when they are. */
  readonly policyFrozen?: string | undefined;
  /** The Endpoints is held by another writer (see ForeignEndpoints). */
  readonly foreignEndpoints?: ForeignEndpoints | undefined;
  /** Published addresses that are Nodes', each with the grant that allows it. */
  readonly nodeGrants?: readonly { readonly ip: string; readonly grant: string }[] | undefined;
  /** Whether backups are published (a backend with spec.backup only). */
  readonly backups?: BackupDecision | undefined;
}

const listed = (
  views: readonly AddressView[],
  state: AddressState | 'Draining',
  max = 3,
): string => {
  const hit = views.filter((v) =>
    state === 'Draining' ? v.draining === true : v.state === state && v.draining !== true,
  );
  const shown = hit
    .slice(0, max)
    .map((v) => (v.message ? `${v.ip} (${v.message})` : v.ip))
    .join(', ');
  return hit.length > max ? `${shown} and ${hit.length - max} more` : shown;
};

export const lostText = (why: string): string =>
  `health check goes on with the values it read before, until outrigger restarts: ${why}`;

export function readyCondition(i: ReadyInput): {
  status: 'True' | 'False';
  reason: ReadyReason;
  message: string;
} {
  if (i.problem !== undefined)
    return { status: 'False', reason: i.problem.reason, message: i.problem.message };
  const { ready, total } = i.counts;
  const unhealthy = listed(i.views, 'Unhealthy');
  const denied = listed(i.views, 'Denied');
  const failing = (i.names ?? [])
    .filter((n) => n.state === 'Stale' || n.state === 'Failed')
    .map((n) => `${n.name} (${n.state === 'Stale' ? 'last answer kept' : 'no addresses'})`)
    .join(', ');
  const draining = listed(i.views, 'Draining');
  const backups = i.views.filter((v) => v.backup === true && isPublished(v)).map((v) => v.ip);
  const split = i.views.filter(
    (v) => v.probers !== undefined && v.probers.against > 0 && v.probers.healthy > 0,
  );
  const disagree = split
    .slice(0, 3)
    .map((v) => {
      const p = v.probers;
      const zones =
        p !== undefined && p.zonesUnhealthy.length > 0
          ? ` from ${p.zonesUnhealthy.join(', ')}`
          : '';
      return `${v.ip} (${String(p?.against ?? 0)} of ${String((p?.against ?? 0) + (p?.healthy ?? 0))} see it fail${zones})`;
    })
    .join(', ');
  const unmatched = (i.drainUnmatched ?? [])
    .slice(0, 3)
    .map((x) => (x.length > 64 ? `${x.slice(0, 64)}…` : x))
    .join(', ');
  const extra = [
    i.policyFrozen !== undefined
      ? `address policy frozen (${i.policyFrozen}): published addresses stay, new ones wait`
      : '',
    i.checkRefused !== undefined ? `health check cannot run: ${i.checkRefused}` : '',
    i.checkSourcesLost !== undefined ? lostText(i.checkSourcesLost) : '',
    i.backups?.active === true
      ? `backups published (${String(i.backups.readyPrimaries)} primaries ready, minReadyPrimaries ${String(i.backups.minReadyPrimaries)})${backups.length > 0 ? `: ${backups.slice(0, 3).join(', ')}${backups.length > 3 ? ` and ${String(backups.length - 3)} more` : ''}` : ', none can be'}`
      : '',
    unhealthy ? `unhealthy: ${unhealthy}` : '',
    disagree
      ? `probers disagree on ${disagree}${split.length > 3 ? ` and ${String(split.length - 3)} more` : ''}`
      : '',
    draining ? `draining: ${draining}` : '',
    denied ? `denied, not published: ${denied}` : '',
    failing ? `DNS lookups failing: ${failing}` : '',
    (i.leftOut ?? 0) > 0
      ? `${String(i.leftOut)} resolved addresses left out: a backend publishes at most ${String(maxAddresses)}`
      : '',
    i.foreignEndpoints !== undefined
      ? `the Endpoints is held by another writer (condition ${foreignEndpointsConditionType})`
      : '',
    unmatched
      ? `${drainAnnotation} names what this backend does not have: ${unmatched}${(i.drainUnmatched?.length ?? 0) > 3 ? ' and more' : ''}`
      : '',
  ]
    .filter(Boolean)
    .join('; ');
  const suffix = extra ? `; ${extra}` : '';
  if (i.failOpen) {
    return {
      status: 'False',
      reason: 'FailingOpen',
      message: `every address fails its health check; all ${total} are published anyway because healthCheck.failOpen is true${suffix}`,
    };
  }
  if (ready === 0) {
    return {
      status: 'False',
      reason: 'NoReadyAddresses',
      message: `0/${total} endpoints ready${suffix}`,
    };
  }
  return {
    status: 'True',
    reason: 'AddressesReady',
    message: `${ready}/${total} endpoints ready${suffix}`,
  };
}

/** Sets a condition; lastTransitionTime is kept while status stays the same (metav1 semantics). */
