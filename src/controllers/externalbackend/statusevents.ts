// The Events a status change earns: address transitions (healthy, unhealthy, denied, drained)
// and DNS names failing or answering again, each said once, with the addresses it concerns.
import type { Resolution } from '../../dns/resolution.ts';
import type { AddressState, AddressView } from './addresses.ts';
import type { ExternalBackendStatus } from '../../api/externalbackendstatus.ts';
import { nameMessage } from '../../dns/resolution.ts';

export interface Transition {
  readonly ip: string;
  readonly from: AddressState | undefined;
  readonly to: AddressState;
  readonly type: 'Normal' | 'Warning';
  readonly reason:
    | 'AddressUnhealthy'
    | 'AddressHealthy'
    | 'AddressDenied'
    | 'AddressDraining'
    | 'AddressUndrained';
  readonly message: string;
  /** The address's own part of the message (the probe error, why it is denied). */
  readonly detail: string;
  /** What happens to the address, for aggregated messages. */
  readonly outcome: string;
}

/**
 * Address state changes since the stored status that a person should hear about: an address failing
 * or recovering, and an address refused by the deny list. First checks (Unknown → Healthy) are quiet.
 */
export function addressTransitions(
  previous: ExternalBackendStatus | undefined,
  views: readonly AddressView[],
  failOpen: boolean,
): Transition[] {
  const prev = new Map((previous?.addresses ?? []).map((a) => [a.ip, a.state]));
  const wasDraining = new Set(
    (previous?.addresses ?? []).filter((a) => a.draining === true).map((a) => a.ip),
  );
  const out: Transition[] = [];
  for (const v of views) {
    const from = prev.get(v.ip);
    if (v.draining === true && !wasDraining.has(v.ip))
      out.push({
        ip: v.ip,
        from,
        to: v.state,
        type: 'Normal',
        reason: 'AddressDraining',
        message: `${v.ip} is draining: published not ready and terminating, it gets no new connections while established ones finish`,
        detail: '',
        outcome: 'get no new connections while established ones finish',
      });
    else if (v.draining !== true && wasDraining.has(v.ip) && v.state !== 'Denied')
      out.push({
        ip: v.ip,
        from,
        to: v.state,
        type: 'Normal',
        reason: 'AddressUndrained',
        message: `${v.ip} is no longer draining; ${v.ready ? 'back in the ready set' : 'published as its checks say'}`,
        detail: '',
        outcome: 'are no longer draining',
      });
    if (from === v.state) continue;
    if (v.state === 'Unhealthy') {
      const outcome =
        v.standby === true
          ? 'a backup on standby, not published either way'
          : failOpen
            ? 'still published because every address fails and failOpen is true'
            : 'removed from the ready set';
      out.push({
        ip: v.ip,
        from,
        to: v.state,
        type: 'Warning',
        reason: 'AddressUnhealthy',
        message: `${v.ip} failed its health check (${v.message}); ${outcome}`,
        detail: v.message,
        outcome,
      });
    } else if (v.state === 'Healthy' && from === 'Unhealthy') {
      out.push({
        ip: v.ip,
        from,
        to: v.state,
        type: 'Normal',
        reason: 'AddressHealthy',
        message: `${v.ip} passes its health check again; ${v.standby === true ? 'a backup on standby, ready to take over' : 'back in the ready set'}`,
        detail: '',
        outcome:
          v.standby === true ? 'backups on standby, ready to take over' : 'back in the ready set',
      });
    } else if (v.state === 'Denied') {
      out.push({
        ip: v.ip,
        from,
        to: v.state,
        type: 'Warning',
        reason: 'AddressDenied',
        message: `${v.ip} is ${v.message}`,
        detail: v.message.replace(/^denied: /, '').replace(/; not published$/, ''),
        outcome: 'not published',
      });
    }
  }
  return out;
}

/** At most this many addresses are named in one aggregated Event. */
export const maxNamedInEvent = 10;

/**
 * The Events for one reconcile's transitions: one per reason. Many addresses of one backend
 * changing at once (a subnet going dark, a policy revoked) make one Event that names them, not one
 * Event each.
 */
export function transitionEvents(
  transitions: readonly Transition[],
): { type: 'Normal' | 'Warning'; reason: Transition['reason']; message: string }[] {
  const byReason = new Map<Transition['reason'], Transition[]>();
  for (const t of transitions) byReason.set(t.reason, [...(byReason.get(t.reason) ?? []), t]);
  const out: { type: 'Normal' | 'Warning'; reason: Transition['reason']; message: string }[] = [];
  for (const [reason, ts] of byReason) {
    const first = ts[0];
    if (first === undefined) continue;
    if (ts.length === 1) {
      out.push({ type: first.type, reason, message: first.message });
      continue;
    }
    const named = ts
      .slice(0, maxNamedInEvent)
      .map((t) => (t.detail ? `${t.ip} (${t.detail})` : t.ip))
      .join(', ');
    const more =
      ts.length > maxNamedInEvent ? ` and ${String(ts.length - maxNamedInEvent)} more` : '';
    const what = {
      AddressUnhealthy: `failed their health check; ${first.outcome}`,
      AddressHealthy: 'pass their health check again; back in the ready set',
      AddressDenied: 'are denied and not published',
      AddressDraining: 'are draining: they get no new connections while established ones finish',
      AddressUndrained: 'are no longer draining',
    }[reason];
    out.push({
      type: first.type,
      reason,
      message: `${String(ts.length)} addresses ${what}: ${named}${more}`,
    });
  }
  return out;
}

export interface StatusEvent {
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

const listIPs = (ips: readonly string[] | undefined): string =>
  ips === undefined || ips.length === 0 ? 'nothing' : ips.join(', ');

/**
 * What changed in DNS since the stored status that a person should hear about: lookups starting to
 * fail (the answer kept, then withdrawn) and an answer that changed. A first answer is quiet.
 */
export function nameEvents(
  previous: ExternalBackendStatus | undefined,
  names: readonly Resolution[],
): StatusEvent[] {
  const before = new Map((previous?.dnsNames ?? []).map((n) => [n.name, n]));
  const out: StatusEvent[] = [];
  for (const n of names) {
    const prev = before.get(n.name);
    if (n.state === 'Stale' || n.state === 'Failed') {
      if (prev?.state !== n.state)
        out.push({
          type: 'Warning',
          reason: 'DNSLookupFailed',
          message: `${n.name}: ${nameMessage(n)}`,
        });
      continue;
    }
    if (n.state !== 'Resolved' || prev === undefined || prev.state === 'Pending') continue;
    // Back from Stale with the same answer is quiet: status shows it, and nothing changed.
    const was = prev.addresses ?? [];
    if (was.length === n.ips.length && was.every((ip, k) => ip === n.ips[k])) continue;
    out.push({
      type: 'Normal',
      reason: 'DNSAnswerChanged',
      message: `${n.name} resolves to ${listIPs(n.ips)} (was ${prev.state === 'Resolved' ? listIPs(was) : `${prev.state}: ${listIPs(was)}`})`,
    });
  }
  return out;
}
