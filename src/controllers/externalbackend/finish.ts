// The end of a reconcile as pure functions: what a failed write means for the backend (its Ready
// reason, whether to retry), whether a status write is due or waits for the batch window, and
// the status, Events, metric values and next look that follow from what was planned.
import type { ExternalBackendStatus } from '../../api/externalbackendstatus.ts';
import { errorMessage } from '../../runtime/runner.ts';
import { nextCertificateCheckMs, soonestExpiry } from './certificates.ts';
import { planStatus, type StatusInput } from './status.ts';
import { readyCondition, type Problem } from './ready.ts';
import type { StatusEvent } from './statusevents.ts';
import { backupsWereActive } from './backups.ts';

/** An object we are about to write is already there or newer than our cache: retry quietly. */
export class CacheLagError extends Error {
  override name = 'CacheLagError';
}

/** An object we are about to create is already there and belongs to someone else. */
export class ForeignObjectError extends Error {
  override name = 'ForeignObjectError';
}

/**
 * How often a backend blocked by a foreign EndpointSlice looks again: such slices are outside the
 * label-selected slice cache, so their removal brings no event.
 */
export const foreignRecheckMs = 10_000;

/** The longest delay a timer takes (about 24.8 days); a longer wait is made of several. */
export const maxTimerMs = 2 ** 31 - 1;

export const addressStates = ['Healthy', 'Unhealthy', 'Unknown', 'Denied'] as const;

/** What a failed write means: retried without a word, or said in status (and maybe retried). */
export type Failure =
  | { readonly retry: Error; readonly problem?: undefined }
  | {
      readonly problem: { readonly reason: Problem; readonly message: string };
      /** Thrown once status is written, for the runner's backoff. */
      readonly retry?: Error;
      readonly requeueAfterMs?: number;
    };

export function classifyFailure(err: unknown): Failure {
  if (err instanceof CacheLagError) return { retry: err };
  if (err instanceof ForeignObjectError)
    return {
      problem: { reason: 'EndpointsConflict', message: err.message },
      requeueAfterMs: foreignRecheckMs,
    };
  return {
    problem: { reason: 'WriteFailed', message: errorMessage(err) },
    retry: err instanceof Error ? err : new Error(errorMessage(err)),
  };
}

/**
 * How long a status write still waits (0: write now). After a write, further ones wait
 * statusBatchMs, so that the address transitions of a burst make one write and one Event per
 * reason; a spec change (new generation) is written at once.
 */
export function statusWaitMs(
  writtenAt: number | undefined,
  batchMs: number,
  now: number,
  newGeneration: boolean,
): number {
  if (newGeneration || writtenAt === undefined) return 0;
  return Math.max(0, writtenAt + batchMs - now);
}

/** The soonest of several requested looks (undefined: none). */
export function soonest(...ms: (number | undefined)[]): number | undefined {
  const set = ms.filter((m): m is number => m !== undefined);
  return set.length === 0 ? undefined : Math.min(...set);
}

/** The metric values a reconcile leaves for the backend (see observe.ts). */
export interface Observed {
  readonly addresses: Readonly<Record<(typeof addressStates)[number], number>>;
  readonly ready: { readonly status: string; readonly reason: string };
  /** When the soonest certificate expires (seconds since the epoch), if any was seen. */
  readonly certificateExpiry: number | undefined;
  /** Whether backups are published; undefined for a backend without spec.backup. */
  readonly backupsActive?: boolean | undefined;
}

export interface Finish {
  readonly observed: Observed;
  /** The status to write; absent when unchanged or held back by the batch window. */
  readonly status?: ExternalBackendStatus;
  /** Said once the status write succeeded, never before. */
  readonly events: readonly StatusEvent[];
  readonly requeueAfterMs?: number | undefined;
}

export function planFinish(
  input: StatusInput,
  statusWrittenAt: number | undefined,
  statusBatchMs: number,
): Finish {
  const now = input.now.getTime();
  const ready = readyCondition(input);
  const count = (state: string): number => input.views.filter((v) => v.state === state).length;
  const expiry = soonestExpiry(input.views);
  const observed: Observed = {
    addresses: {
      Healthy: count('Healthy'),
      Unhealthy: count('Unhealthy'),
      Unknown: count('Unknown'),
      Denied: count('Denied'),
    },
    ready: { status: ready.status, reason: ready.reason },
    certificateExpiry: expiry === undefined ? undefined : expiry / 1000,
    backupsActive: input.backups?.active,
  };
  // Time alone moves a certificate into the warning window: look again when it does.
  const recheck = nextCertificateCheckMs(input.views, now, input.certificateWarningMs ?? 0);
  const certLook = soonest(
    recheck === undefined ? undefined : Math.min(recheck + 1000, maxTimerMs),
    // Time alone makes recovered primaries count for the hand-back: look again when it does.
    input.backups?.handBackInMs === undefined ? undefined : input.backups.handBackInMs + 50,
  );
  const { events, status } = planStatus(input);
  if (status === undefined) return { observed, events: [], requeueAfterMs: certLook };
  // Backups taking over or handing back are written at once, like a spec change: the next
  // decision reads whether backups are published from this status (see backups.ts), and the
  // hand-back's wait must not be shortened by a status that has not caught up.
  const wait = statusWaitMs(
    statusWrittenAt,
    statusBatchMs,
    now,
    status.observedGeneration !== input.previous?.observedGeneration ||
      backupsWereActive(status) !== backupsWereActive(input.previous),
  );
  // Its Events wait too: the write that comes computes them again, for the whole burst.
  if (wait > 0) return { observed, events: [], requeueAfterMs: soonest(certLook, wait) };
  return { observed, status, events, requeueAfterMs: certLook };
}
