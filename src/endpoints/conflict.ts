// A second endpoints controller writing the Endpoints outrigger writes in selector mode, told apart
// from a takeover, and how long outrigger then holds off. Pure: the controller keeps the state.
//
// The signal is the `endpoints.kubernetes.io/managed-by` label, not managedFields:
// - every write of kube-controller-manager's endpoints controller sets it to `endpoint-controller`
//   (since 1.33 it rewrites an Endpoints whose label says otherwise), and older releases, which
//   replace the labels with the Service's, remove ours; so any write of theirs leaves the label not
//   ours. A third controller that rewrites labels does the same.
// - managedFields would say which *process* wrote last (kube-controller-manager runs dozens of
//   controllers), only for Update entries of fields that changed, and the cache drops them for
//   memory (DESIGN §2); keeping them for every Endpoints in scope would cost more than the label.
// A foreign label alone is not a fight: Endpoints written before selector mode was switched on carry
// `endpoint-controller` too, and taking them over is the point. It is a fight when the label turns
// foreign on an Endpoints outrigger had written (or found labelled as its own) since it started.

/** First hold after a conflict; each further conflict doubles it, up to maxHoldMs. */
export const baseHoldMs = 60_000;
export const maxHoldMs = 30 * 60_000;
/** A conflict this long after the previous one starts the doubling again. */
export const resetAfterMs = 2 * maxHoldMs;

export interface ContestState {
  /** The last write known to have reached this Endpoints is ours. */
  readonly ours: boolean;
  /** Consecutive conflicts (0: none yet). */
  readonly conflicts: number;
  readonly lastConflictAt: number;
  /** Until then outrigger writes nothing over the other controller's Endpoints. */
  readonly holdUntil: number;
}

export const initialState: ContestState = {
  ours: false,
  conflicts: 0,
  lastConflictAt: 0,
  holdUntil: 0,
};

/** The managed-by label of the Endpoints in the cache; `absent` when there is no Endpoints. */
export type Observed =
  | { readonly kind: 'absent' }
  | { readonly kind: 'present'; readonly managedBy: string | undefined };

export type ContestDecision =
  /** Plan and write as usual (nothing in the way, our own, a takeover, or a hold that is over). */
  | { readonly action: 'write'; readonly state: ContestState }
  /** Another controller rewrote our Endpoints just now: report it, write nothing, look again later. */
  | {
      readonly action: 'conflict';
      readonly state: ContestState;
      readonly holdMs: number;
      readonly writer: string;
    }
  /** Still holding off after a conflict. */
  | { readonly action: 'hold'; readonly state: ContestState; readonly untilMs: number };

export function holdFor(conflicts: number): number {
  return Math.min(maxHoldMs, baseHoldMs * 2 ** Math.max(0, Math.min(conflicts - 1, 30)));
}

/** Names the other writer from its label, for messages. */
export function writerName(managedBy: string | undefined): string {
  return managedBy === undefined || managedBy === ''
    ? 'a controller that removed the managed-by label'
    : managedBy === 'endpoint-controller'
      ? "kube-controller-manager's endpoints controller (managed-by: endpoint-controller)"
      : `another controller (managed-by: ${managedBy})`;
}

export function decideContest(
  prev: ContestState,
  observed: Observed,
  ourValue: string,
  now: number,
): ContestDecision {
  // Nobody's Endpoints stands: (re)creating it cannot overwrite anyone.
  if (observed.kind === 'absent') return { action: 'write', state: prev };
  if (observed.managedBy === ourValue) {
    return { action: 'write', state: prev.ours ? prev : { ...prev, ours: true } };
  }
  if (prev.ours) {
    const conflicts = now - prev.lastConflictAt >= resetAfterMs ? 1 : prev.conflicts + 1;
    const holdMs = holdFor(conflicts);
    return {
      action: 'conflict',
      holdMs,
      writer: writerName(observed.managedBy),
      state: { ours: false, conflicts, lastConflictAt: now, holdUntil: now + holdMs },
    };
  }
  if (now < prev.holdUntil) return { action: 'hold', state: prev, untilMs: prev.holdUntil };
  return { action: 'write', state: prev };
}

/** After a successful write of ours. */
export function wrote(prev: ContestState): ContestState {
  return prev.ours ? prev : { ...prev, ours: true };
}
