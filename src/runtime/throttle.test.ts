import { describe, expect, it } from '@jest/globals';
import { FakeClock, settle } from './clock.test-helpers.ts';
import { NotLeaderError, Throttle } from './throttle.ts';

/** Starts `n` acquires one after another and records the clock's time as each is released. */
function acquireAll(t: Throttle, clock: FakeClock, n: number): { released: number[] } {
  const released: number[] = [];
  void (async () => {
    for (let i = 0; i < n; i++) {
      await t.acquire();
      released.push(clock.now());
    }
  })().catch(() => undefined);
  return { released };
}

describe('Throttle', () => {
  it('lets a burst through at once, then paces requests at the rate', async () => {
    const clock = new FakeClock(0);
    const t = new Throttle(50, 3, () => true, clock);
    const { released } = acquireAll(t, clock, 8);
    await settle();
    // The burst: three at once, without time passing.
    expect(released).toEqual([0, 0, 0]);
    // Then one every 20 ms (50/s).
    await clock.advance(100);
    expect(released).toEqual([0, 0, 0, 20, 40, 60, 80, 100]);
  });

  it('refills the bucket while idle, up to the burst', async () => {
    const clock = new FakeClock(0);
    const t = new Throttle(10, 2, () => true, clock);
    await t.acquire();
    await t.acquire();
    await clock.advance(10_000);
    const { released } = acquireAll(t, clock, 3);
    await settle();
    expect(released).toEqual([10_000, 10_000]);
    await clock.advance(100);
    expect(released).toEqual([10_000, 10_000, 10_100]);
  });

  it('asks mayWrite as each request is released, after its wait', async () => {
    const clock = new FakeClock(0);
    let leader = true;
    const t = new Throttle(10, 1, () => leader, clock);
    await t.acquire();
    const second = t.acquire();
    let outcome: unknown;
    second.then(
      () => (outcome = 'released'),
      (err: unknown) => (outcome = err),
    );
    await clock.advance(50);
    expect(outcome).toBeUndefined();
    // The lease is lost while the request waits for its token: it must not leave.
    leader = false;
    await clock.advance(50);
    expect(outcome).toBeInstanceOf(NotLeaderError);
  });
});
