// The ExternalBackend's status as a pure function of what the reconciler saw, with metav1
// Condition semantics (lastTransitionTime moves only when status changes), and the address
// transitions that deserve an Event.
import { nameMessage, resolvedAtRefreshMs, type Resolution } from '../../dns/resolution.ts';
import { isPublished, type AddressView } from './addresses.ts';
import { backupCondition, backupConditionType, backupEvent, backupsWereActive } from './backups.ts';
import {
  foreignEndpointsConditionType,
  lostText,
  readyCondition,
  type ReadyInput,
} from './ready.ts';
import {
  addressTransitions,
  nameEvents,
  transitionEvents,
  type StatusEvent,
} from './statusevents.ts';
import {
  certificateCondition,
  certificateConditionType,
  certificateEvent,
} from './certificates.ts';
import {
  externalBackendStatus,
  type ExternalBackendStatus,
} from '../../api/externalbackendstatus.ts';

type Condition = NonNullable<ExternalBackendStatus['conditions']>[number];
type AddressStatus = NonNullable<ExternalBackendStatus['addresses']>[number];
type NameStatus = NonNullable<ExternalBackendStatus['dnsNames']>[number];

export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: Date,
): Condition[] {
  const prev = conditions?.find((c) => c.type === next.type);
  const lastTransitionTime =
    prev?.status === next.status ? prev.lastTransitionTime : now.toISOString();
  return [
    ...(conditions ?? []).filter((c) => c.type !== next.type),
    { ...next, lastTransitionTime },
  ];
}

/** The stored status, or undefined when it is missing or not in the expected shape. */
export function parseStatus(raw: unknown): ExternalBackendStatus | undefined {
  const parsed = externalBackendStatus.safeParse(raw ?? {});
  return parsed.success ? parsed.data : undefined;
}

function healthMessage(v: AddressView, failOpen: boolean): string {
  if (v.state === 'Unknown') return v.message === '' ? 'not checked yet' : v.message;
  if (v.state === 'Unhealthy')
    return `health check failing: ${v.message}${failOpen ? ' (published: failOpen)' : ''}`;
  return v.message;
}

function addressMessage(v: AddressView, failOpen: boolean): string {
  const health = healthMessage(v, failOpen && v.draining !== true);
  if (v.standby === true)
    return `backup on standby: not published while enough primaries are ready${health ? `; ${health}` : ''}`;
  if (v.draining !== true) return health;
  return `draining: out of new connections${health ? `; ${health}` : ''}`;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * A name's status entry. Its resolvedAt moves at every lookup that confirms the answer; status
 * carries the previous value on until it is resolvedAtRefreshMs old, so that an unchanged answer
 * does not rewrite status at every TTL.
 */
function nameStatus(n: Resolution, prev: NameStatus | undefined): NameStatus {
  const message = nameMessage(n);
  const same =
    prev?.state === n.state &&
    (prev.addresses ?? []).join() === n.ips.join() &&
    prev.message === (message || undefined);
  const prevAt = prev?.resolvedAt === undefined ? undefined : Date.parse(prev.resolvedAt);
  const resolvedAt =
    same &&
    prevAt !== undefined &&
    n.resolvedAt !== undefined &&
    n.resolvedAt >= prevAt &&
    n.resolvedAt - prevAt < resolvedAtRefreshMs
      ? prevAt
      : n.resolvedAt;
  return {
    name: n.name,
    state: n.state,
    ...(n.ips.length > 0 ? { addresses: [...n.ips] } : {}),
    ...(n.ttlSeconds !== undefined && n.state !== 'Failed' ? { ttlSeconds: n.ttlSeconds } : {}),
    ...(resolvedAt !== undefined ? { resolvedAt: iso(resolvedAt) } : {}),
    ...(message ? { message } : {}),
  };
}

export interface StatusInput extends ReadyInput {
  readonly generation: number;
  /** The Service these are the endpoints of (spec.service.name or the object's name). */
  readonly service?: string | undefined;
  readonly previous: ExternalBackendStatus | undefined;
  readonly now: Date;
  /** A certificate expiring within this long makes CertificateExpiringSoon True (default 14 days). */
  readonly certificateWarningMs?: number | undefined;
}

const defaultCertificateWarningMs = 14 * 86_400_000;

function certificates(i: StatusInput) {
  return certificateCondition(
    i.views,
    i.now.getTime(),
    i.certificateWarningMs ?? defaultCertificateWarningMs,
  );
}

export const policyFrozenType = 'AddressPolicyFrozen';
export const nodeAddressesGrantedType = 'NodeAddressesGranted';

/**
 * NodeAddressesGranted: True while addresses of Nodes, which the deny list otherwise keeps out,
 * are published because an ExternalBackendPolicy rule grants them; the message names each address
 * and its rule. Left out otherwise (a backend without Node addresses has no such condition).
 */
function nodeGrantCondition(
  i: StatusInput,
): { status: 'True'; reason: string; message: string } | undefined {
  const grants = i.nodeGrants ?? [];
  if (grants.length === 0) return undefined;
  const shown = [...grants]
    .sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0))
    .slice(0, 10)
    .map((g) => `${g.ip} (${g.grant})`)
    .join('; ');
  const more = grants.length > 10 ? ` and ${String(grants.length - 10)} more` : '';
  return {
    status: 'True',
    reason: 'GrantedByPolicy',
    message: `Node addresses published by grant, never on the API server's port: ${shown}${more}`,
  };
}

/**
 * AddressPolicyFrozen: True while the grants are missing or unreadable (what is published stays,
 * nothing new is published); False once they are read again. Left out until a freeze is first
 * seen: a backend that never met one has no such condition.
 */
function policyFrozenCondition(
  i: StatusInput,
): { status: 'True' | 'False'; reason: string; message: string } | undefined {
  if (i.policyFrozen !== undefined)
    return {
      status: 'True',
      reason: 'GrantsMissing',
      message: `${i.policyFrozen}: addresses already published stay (health checks still take dead ones out), addresses not yet published wait until the grants can be read`,
    };
  if (i.previous?.conditions?.some((c) => c.type === policyFrozenType) !== true) return undefined;
  return {
    status: 'False',
    reason: 'GrantsRead',
    message: 'the address policy is read: every address is judged by the grants again',
  };
}

export function buildStatus(i: StatusInput): ExternalBackendStatus {
  const prevByIP = new Map((i.previous?.addresses ?? []).map((a) => [a.ip, a]));
  const addresses: AddressStatus[] = i.views.map((v) => {
    const prev = prevByIP.get(v.ip);
    const same =
      prev?.state === v.state &&
      prev.ready === v.ready &&
      prev.draining === v.draining &&
      prev.standby === v.standby;
    const message = addressMessage(v, i.failOpen);
    return {
      ip: v.ip,
      ready: v.ready,
      state: v.state,
      ...(v.dnsName !== undefined ? { dnsName: v.dnsName } : {}),
      ...(v.backup === true ? { backup: true } : {}),
      ...(v.standby === true ? { standby: true } : {}),
      ...(v.probers !== undefined
        ? {
            probers: {
              healthy: v.probers.healthy,
              unhealthy: v.probers.against,
              ...(v.probers.ignored > 0 ? { partitioned: v.probers.ignored } : {}),
              ...(v.probers.zonesUnhealthy.length > 0
                ? { unhealthyZones: [...v.probers.zonesUnhealthy] }
                : {}),
            },
          }
        : {}),
      ...(v.draining === true ? { draining: true } : {}),
      ...(v.certificateNotAfter !== undefined
        ? { certificateNotAfter: new Date(v.certificateNotAfter).toISOString() }
        : {}),
      lastTransitionTime:
        same && prev.lastTransitionTime !== undefined
          ? prev.lastTransitionTime
          : i.now.toISOString(),
      ...(message ? { message } : {}),
    };
  });
  const ready = readyCondition(i);
  const cert = certificates(i);
  const frozen = policyFrozenCondition(i);
  const withReady = setCondition(
    frozen === undefined
      ? i.previous?.conditions
      : setCondition(
          i.previous?.conditions,
          { type: policyFrozenType, observedGeneration: i.generation, ...frozen },
          i.now,
        ),
    { type: 'Ready', observedGeneration: i.generation, ...ready },
    i.now,
  );
  return {
    observedGeneration: i.generation,
    ...(i.service !== undefined ? { service: i.service } : {}),
    readyAddresses: i.counts.ready,
    totalAddresses: i.counts.total,
    addressSummary: `${i.counts.ready}/${i.counts.total}`,
    addresses,
    ...(i.names !== undefined && i.names.length > 0
      ? {
          dnsNames: i.names.map((n) =>
            nameStatus(
              n,
              i.previous?.dnsNames?.find((p) => p.name === n.name),
            ),
          ),
        }
      : {}),
    // Without a certificate seen (no TLS check) the condition does not apply and is left out;
    // ForeignEndpoints likewise exists only while another writer holds the Endpoints.
    conditions: backupConditions(
      foreignCondition(
        nodeGrantConditions(
          cert === undefined
            ? withReady.filter((c) => c.type !== certificateConditionType)
            : setCondition(
                withReady,
                { type: certificateConditionType, observedGeneration: i.generation, ...cert },
                i.now,
              ),
          i,
        ),
        i,
      ),
      i,
    ),
  };
}

/** BackupActive, on a backend with spec.backup only (see backups.ts). */
function backupStatusCondition(i: StatusInput) {
  if (i.backups === undefined) return undefined;
  return backupCondition(
    i.backups,
    i.views.filter((v) => v.backup === true && isPublished(v)).map((v) => v.ip),
  );
}

function backupConditions(conditions: Condition[], i: StatusInput): Condition[] {
  const c = backupStatusCondition(i);
  // A backend held by a problem (a refused Service, a failed write) publishes nothing anew: what
  // the condition said still stands, and its change is said once the problem is gone.
  if (i.problem !== undefined) return conditions;
  if (c === undefined) return conditions.filter((x) => x.type !== backupConditionType);
  return setCondition(
    conditions,
    { type: backupConditionType, observedGeneration: i.generation, ...c },
    i.now,
  );
}

function nodeGrantConditions(conditions: Condition[], i: StatusInput): Condition[] {
  const granted = nodeGrantCondition(i);
  if (granted === undefined) return conditions.filter((c) => c.type !== nodeAddressesGrantedType);
  return setCondition(
    conditions,
    { type: nodeAddressesGrantedType, observedGeneration: i.generation, ...granted },
    i.now,
  );
}

function foreignCondition(conditions: Condition[], i: StatusInput): Condition[] {
  if (i.foreignEndpoints === undefined)
    return conditions.filter((c) => c.type !== foreignEndpointsConditionType);
  return setCondition(
    conditions,
    {
      type: foreignEndpointsConditionType,
      status: 'True',
      observedGeneration: i.generation,
      reason: i.foreignEndpoints.reason,
      message: i.foreignEndpoints.message,
    },
    i.now,
  );
}

/** JSON with every object's keys sorted: equal values, equal strings, whatever order built them. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
      : v,
  );
}

/**
 * Whether two statuses say the same thing. Only the timestamps of entries that did not change are
 * carried over by buildStatus, so comparing canonical forms is enough: lists in key order, and
 * object keys sorted, because a status read back from the API server has its keys in another
 * order than one buildStatus made (comparing them as built rewrote every status once after each
 * change and after every restart).
 */
export function statusEqual(
  a: ExternalBackendStatus | undefined,
  b: ExternalBackendStatus | undefined,
): boolean {
  const canon = (s: ExternalBackendStatus | undefined) =>
    s === undefined
      ? 'null'
      : canonicalJson({
          ...s,
          addresses: [...(s.addresses ?? [])].sort((x, y) => (x.ip < y.ip ? -1 : 1)),
          dnsNames: [...(s.dnsNames ?? [])].sort((x, y) => (x.name < y.name ? -1 : 1)),
          conditions: [...(s.conditions ?? [])].sort((x, y) => (x.type < y.type ? -1 : 1)),
        });
  return canon(a) === canon(b);
}

/**
 * What one reconcile's outcome means for status: the Events to record (address transitions, the
 * Ready reason changing) and the status to write, undefined when it is unchanged.
 */
export function planStatus(input: StatusInput): {
  events: StatusEvent[];
  status: ExternalBackendStatus | undefined;
} {
  const events: StatusEvent[] = [
    ...nameEvents(input.previous, input.names ?? []),
    ...transitionEvents(addressTransitions(input.previous, input.views, input.failOpen)),
  ];
  const ready = readyCondition(input);
  const before = input.previous?.conditions?.find((c) => c.type === 'Ready');
  if (before?.reason !== ready.reason) {
    if (ready.status === 'False')
      events.push({ type: 'Warning', reason: ready.reason, message: ready.message });
    else if (before !== undefined)
      events.push({ type: 'Normal', reason: 'Ready', message: ready.message });
  }
  // A check that cannot run (a Secret or ConfigMap unreadable or missing) is said once, when the
  // reason first appears or changes: its addresses fail only after unhealthyThreshold probes, and
  // the Ready reason may not change at all.
  const refusedText = (c: string): string => `health check cannot run: ${c}`;
  if (
    input.problem === undefined &&
    input.checkRefused !== undefined &&
    before?.message.includes(refusedText(input.checkRefused)) !== true
  )
    events.push({
      type: 'Warning',
      reason: 'HealthCheckCannotRun',
      message: refusedText(input.checkRefused),
    });
  if (
    input.problem === undefined &&
    input.checkSourcesLost !== undefined &&
    before?.message.includes(lostText(input.checkSourcesLost)) !== true
  )
    events.push({
      type: 'Warning',
      reason: 'HealthCheckSourcesLost',
      message: lostText(input.checkSourcesLost),
    });
  // Said once when the migration state changes, not at every reconcile while it lasts.
  const held = input.previous?.conditions?.find((c) => c.type === foreignEndpointsConditionType);
  if (input.foreignEndpoints !== undefined && held?.reason !== input.foreignEndpoints.reason)
    events.push({
      type: 'Warning',
      reason: input.foreignEndpoints.reason,
      message: input.foreignEndpoints.message,
    });
  const certEvent = certificateEvent(
    input.previous?.conditions?.find((c) => c.type === certificateConditionType),
    certificates(input),
  );
  if (certEvent !== undefined) events.push(certEvent);
  const frozenBefore = input.previous?.conditions?.find((c) => c.type === policyFrozenType);
  const frozenNow = policyFrozenCondition(input);
  if (frozenNow !== undefined && frozenBefore?.status !== frozenNow.status) {
    if (frozenNow.status === 'True')
      events.push({ type: 'Warning', reason: policyFrozenType, message: frozenNow.message });
    else if (frozenBefore !== undefined)
      events.push({ type: 'Normal', reason: 'AddressPolicyResumed', message: frozenNow.message });
  }
  // Said when what is granted changes (an address or a rule), not at every reconcile.
  const grantedBefore = input.previous?.conditions?.find(
    (c) => c.type === nodeAddressesGrantedType,
  );
  const grantedNow = nodeGrantCondition(input);
  if (grantedNow !== undefined && grantedBefore?.message !== grantedNow.message)
    events.push({ type: 'Normal', reason: nodeAddressesGrantedType, message: grantedNow.message });
  const backupNow = backupStatusCondition(input);
  if (input.problem === undefined && input.backups !== undefined && backupNow !== undefined) {
    const e = backupEvent(backupsWereActive(input.previous), input.backups, backupNow);
    if (e !== undefined) events.push(e);
  }
  const status = buildStatus(input);
  return { events, status: statusEqual(status, input.previous) ? undefined : status };
}
