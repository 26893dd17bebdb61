// Backup servers (spec.backup): whether they are published, as a pure function of how the
// primaries stand, what the last status said, and the clock; and the condition and Events that
// say so. addresses.ts applies the decision to the address views.
import type { ExternalBackendStatus } from '../../api/externalbackendstatus.ts';

/** The condition that says whether backups carry traffic; present only on a backend with backups. */
export const backupConditionType = 'BackupActive';

/** Whether backups were published by the last status (condition BackupActive True). */
export function backupsWereActive(previous: ExternalBackendStatus | undefined): boolean {
  return (
    previous?.conditions?.some((c) => c.type === backupConditionType && c.status === 'True') ===
    true
  );
}

/** How one primary address stands, for the decision. */
export interface PrimaryStanding {
  /**
   * Published ready by its own check, before fail-open: an address not checked yet counts (it is
   * published ready), a draining, unhealthy or unchecked (probe-limit) one does not.
   */
  readonly ready: boolean;
  /**
   * Since when its check has said so (ms), for the hand-back; undefined while it is ready only
   * because it has not been checked yet, which proves nothing about the server.
   */
  readonly readySince?: number | undefined;
}

export interface BackupInput {
  readonly minReadyPrimaries: number;
  /** The primary addresses the deny list and the policy allow. */
  readonly primaries: readonly PrimaryStanding[];
  /** Ready pods of spec.podSelector: primaries whose readiness is the kubelet's. */
  readonly readyPods: number;
  /** The last status said backups were published (condition BackupActive True). */
  readonly wasActive: boolean;
  readonly now: number;
  /**
   * How long a primary must have been ready before it counts for the hand-back: healthyThreshold
   * checks (healthyThreshold × intervalSeconds); 0 without a health check.
   */
  readonly settleMs: number;
}

export interface BackupDecision {
  readonly active: boolean;
  readonly readyPrimaries: number;
  readonly minReadyPrimaries: number;
  /**
   * While backups are published although enough primaries are ready again: how long until enough
   * of them have been ready for healthyThreshold checks (the planner looks again then).
   * Undefined when no hand-back is pending or it waits for a check to pass.
   */
  readonly handBackInMs?: number;
}

/**
 * Backups are published while fewer than minReadyPrimaries primaries are ready, at once. They are
 * withdrawn once minReadyPrimaries primaries have been ready for healthyThreshold checks, so that a
 * primary that passes one check between failures does not pull the traffic back and forth.
 */
export function decideBackups(i: BackupInput): BackupDecision {
  const ready = i.primaries.filter((p) => p.ready).length + i.readyPods;
  const base = { readyPrimaries: ready, minReadyPrimaries: i.minReadyPrimaries };
  if (ready < i.minReadyPrimaries) return { active: true, ...base };
  if (!i.wasActive) return { active: false, ...base };
  const waits: number[] = [];
  let settled = i.readyPods;
  for (const p of i.primaries) {
    if (!p.ready || p.readySince === undefined) continue;
    const left = p.readySince + i.settleMs - i.now;
    if (left <= 0) settled++;
    else waits.push(left);
  }
  if (settled >= i.minReadyPrimaries) return { active: false, ...base };
  waits.sort((x, y) => x - y);
  const due = waits[i.minReadyPrimaries - settled - 1];
  return { active: true, ...base, ...(due !== undefined ? { handBackInMs: due } : {}) };
}

const listed = (ips: readonly string[], max = 3): string =>
  ips.length > max
    ? `${ips.slice(0, max).join(', ')} and ${String(ips.length - max)} more`
    : ips.join(', ');

/** The BackupActive condition for a decision; `published` are the backups now published. */
export function backupCondition(
  d: BackupDecision,
  published: readonly string[],
): { status: 'True' | 'False'; reason: string; message: string } {
  const primaries = `${String(d.readyPrimaries)} primaries ready`;
  if (!d.active)
    return {
      status: 'False',
      reason: 'PrimariesReady',
      message: `${primaries} (minReadyPrimaries ${String(d.minReadyPrimaries)}): backups stand by, checked but not published`,
    };
  const what =
    published.length === 0
      ? 'no backup can be published (none is allowed and resolved)'
      : `backups published: ${listed(published)}`;
  if (d.readyPrimaries >= d.minReadyPrimaries)
    return {
      status: 'True',
      reason: 'PrimariesRecovering',
      message: `${primaries} again; ${what} until ${String(d.minReadyPrimaries)} of them have been ready for healthyThreshold checks`,
    };
  return {
    status: 'True',
    reason: 'PrimariesNotReady',
    message: `${primaries}, fewer than minReadyPrimaries ${String(d.minReadyPrimaries)}; ${what}`,
  };
}

/** The Event when backups take over or hand back (none while the state holds). */
export function backupEvent(
  wasActive: boolean,
  d: BackupDecision,
  condition: { readonly message: string },
): { type: 'Normal' | 'Warning'; reason: string; message: string } | undefined {
  if (d.active === wasActive) return undefined;
  return d.active
    ? { type: 'Warning', reason: 'BackupsTookOver', message: condition.message }
    : { type: 'Normal', reason: 'BackupsHandedBack', message: condition.message };
}
