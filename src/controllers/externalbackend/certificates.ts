// Certificate expiry as a pure function of the address views: the CertificateExpiringSoon
// condition, its Events, the soonest expiry for the metric, and when to look again. The probes of
// TLS-speaking checks report each server's leaf certificate (see health/kinds/handshake.ts).
import type { AddressView } from './addresses.ts';

export const certificateConditionType = 'CertificateExpiringSoon';

export type CertificateReason =
  'CertificateExpired' | 'CertificateExpiresSoon' | 'CertificatesValid';

export interface CertificateCondition {
  readonly status: 'True' | 'False';
  readonly reason: CertificateReason;
  readonly message: string;
}

const hours = (ms: number): string => `${String(Math.round(ms / 3_600_000))}h`;

/** The addresses whose certificates count: seen by a probe, and published (never a denied one). */
function certified(
  views: readonly AddressView[],
): (AddressView & { certificateNotAfter: number })[] {
  return views
    .filter(
      (v): v is AddressView & { certificateNotAfter: number } =>
        v.certificateNotAfter !== undefined && v.state !== 'Denied',
    )
    .sort((a, b) => a.certificateNotAfter - b.certificateNotAfter || (a.ip < b.ip ? -1 : 1));
}

/** The soonest notAfter (ms) of the backend's certificates, undefined when none was seen. */
export function soonestExpiry(views: readonly AddressView[]): number | undefined {
  return certified(views)[0]?.certificateNotAfter;
}

/**
 * The condition, or undefined when no probe has seen a certificate (a check without TLS). Its
 * message names absolute times only, so that it changes when a certificate does, not every day.
 */
export function certificateCondition(
  views: readonly AddressView[],
  now: number,
  warningMs: number,
): CertificateCondition | undefined {
  const seen = certified(views);
  const first = seen[0];
  if (first === undefined) return undefined;
  const at = (v: { certificateNotAfter: number }): string =>
    new Date(v.certificateNotAfter).toISOString();
  const within = seen.filter((v) => v.certificateNotAfter - now < warningMs);
  if (within.length === 0)
    return {
      status: 'False',
      reason: 'CertificatesValid',
      message: `the soonest certificate to expire, ${first.ip}'s, is valid until ${at(first)}, beyond the ${hours(warningMs)} warning window`,
    };
  const expired = within.filter((v) => v.certificateNotAfter <= now);
  const named = within
    .slice(0, 3)
    .map((v) => `${v.ip}${v.dnsName !== undefined ? ` (${v.dnsName})` : ''} at ${at(v)}`)
    .join(', ');
  const more = within.length > 3 ? ` and ${String(within.length - 3)} more` : '';
  return expired.length > 0
    ? {
        status: 'True',
        reason: 'CertificateExpired',
        message: `${String(expired.length)} of ${String(seen.length)} certificates expired; expiring within ${hours(warningMs)}: ${named}${more}`,
      }
    : {
        status: 'True',
        reason: 'CertificateExpiresSoon',
        message: `${String(within.length)} of ${String(seen.length)} certificates expire within ${hours(warningMs)}: ${named}${more}`,
      };
}

/** The Event for a change of the condition's reason, if it deserves one. */
export function certificateEvent(
  before: { readonly status: string; readonly reason: string } | undefined,
  after: CertificateCondition | undefined,
): { type: 'Normal' | 'Warning'; reason: string; message: string } | undefined {
  if (after === undefined || before?.reason === after.reason) return undefined;
  if (after.status === 'True')
    return { type: 'Warning', reason: after.reason, message: after.message };
  // Back to valid from expiring or expired: a renewed certificate. A first sighting is no news.
  if (before?.status === 'True')
    return { type: 'Normal', reason: 'CertificateRenewed', message: after.message };
  return undefined;
}

/**
 * How long until the soonest certificate enters the warning window (or expires, once inside it),
 * when that is in the future: time alone changes the condition, so the reconciler looks again then.
 */
export function nextCertificateCheckMs(
  views: readonly AddressView[],
  now: number,
  warningMs: number,
): number | undefined {
  const times = certified(views).flatMap((v) => [
    v.certificateNotAfter - warningMs,
    v.certificateNotAfter,
  ]);
  const next = times.filter((t) => t > now).sort((a, b) => a - b)[0];
  return next === undefined ? undefined : next - now;
}
