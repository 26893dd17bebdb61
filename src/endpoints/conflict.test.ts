import { describe, expect, it } from '@jest/globals';
import {
  baseHoldMs,
  decideContest,
  holdFor,
  initialState,
  maxHoldMs,
  resetAfterMs,
  wrote,
  type ContestState,
  type Observed,
} from './conflict.ts';

const ours = 'controller.outrigger.dev';
const upstream: Observed = { kind: 'present', managedBy: 'endpoint-controller' };
const mine: Observed = { kind: 'present', managedBy: ours };
const absent: Observed = { kind: 'absent' };

/** Runs a sequence of observations at the given times, writing whenever the decision says so. */
function run(steps: readonly [number, Observed][]): { actions: string[]; state: ContestState } {
  let state = initialState;
  const actions: string[] = [];
  for (const [at, observed] of steps) {
    const d = decideContest(state, observed, ours, at);
    actions.push(d.action === 'conflict' ? `conflict(${String(d.holdMs)})` : d.action);
    state = d.action === 'write' ? wrote(d.state) : d.state;
  }
  return { actions, state };
}

describe('decideContest', () => {
  it('takes over an Endpoints the upstream controller wrote before outrigger started: no conflict', () => {
    expect(decideContest(initialState, upstream, ours, 0)).toEqual({
      action: 'write',
      state: initialState,
    });
  });

  it('creates a missing Endpoints whatever happened before, even while holding off', () => {
    const holding: ContestState = { ours: false, conflicts: 1, lastConflictAt: 0, holdUntil: 1e9 };
    expect(decideContest(holding, absent, ours, 5).action).toBe('write');
  });

  it('remembers an Endpoints found labelled as its own (written by an earlier replica)', () => {
    const d = decideContest(initialState, mine, ours, 0);
    expect(d).toEqual({ action: 'write', state: { ...initialState, ours: true } });
    expect(decideContest(d.state, upstream, ours, 1).action).toBe('conflict');
  });

  it('reports a conflict when the label turns foreign after our write, names the writer, holds off', () => {
    const d = decideContest(wrote(initialState), upstream, ours, 1000);
    expect(d).toEqual({
      action: 'conflict',
      holdMs: baseHoldMs,
      writer: "kube-controller-manager's endpoints controller (managed-by: endpoint-controller)",
      state: { ours: false, conflicts: 1, lastConflictAt: 1000, holdUntil: 1000 + baseHoldMs },
    });
  });

  it('counts an older upstream, which drops the label, and any other value, as another writer', () => {
    const dropped = decideContest(
      wrote(initialState),
      { kind: 'present', managedBy: undefined },
      ours,
      0,
    );
    expect(dropped.action === 'conflict' && dropped.writer).toBe(
      'a controller that removed the managed-by label',
    );
    const other = decideContest(
      wrote(initialState),
      { kind: 'present', managedBy: 'x.example' },
      ours,
      0,
    );
    expect(other.action === 'conflict' && other.writer).toBe(
      'another controller (managed-by: x.example)',
    );
  });

  it('holds while the other controller’s Endpoints stands, then takes it back once', () => {
    const t = baseHoldMs;
    expect(
      run([
        [0, mine], // ours
        [10, upstream], // rewritten: conflict 1
        [20, upstream], // holding
        [t - 1, upstream], // still holding
        [t + 10, upstream], // hold over: write again (one write)
        [t + 20, mine], // the cache shows our write
      ]).actions,
    ).toEqual(['write', `conflict(${String(t)})`, 'hold', 'hold', 'write', 'write']);
  });

  it('doubles the hold on each conflict of a fight, up to the cap, and starts over after a quiet spell', () => {
    let now = 0;
    const steps: [number, Observed][] = [[now, mine]];
    const holds: number[] = [];
    for (let i = 1; i <= 7; i++) {
      now += 1;
      steps.push([now, upstream]); // conflict i
      holds.push(holdFor(i));
      now += holdFor(i);
      steps.push([now, upstream]); // hold over: we write
      steps.push([now + 1, mine]);
      now += 1;
    }
    const { actions, state } = run(steps);
    expect(actions.filter((a) => a.startsWith('conflict'))).toEqual(
      holds.map((h) => `conflict(${String(h)})`),
    );
    expect(holds).toEqual([1, 2, 4, 8, 16, 30, 30].map((m) => m * 60_000));
    expect(actions.filter((a) => a === 'hold')).toEqual([]);
    expect(state.conflicts).toBe(7);
    // A conflict long after the previous one is a new fight, not the eighth round of this one.
    const later = decideContest(
      { ...state, ours: true },
      upstream,
      ours,
      state.lastConflictAt + resetAfterMs,
    );
    expect(later.action === 'conflict' && later.holdMs).toBe(baseHoldMs);
    expect(holdFor(1000)).toBe(maxHoldMs);
  });
});
