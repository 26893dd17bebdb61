import { describe, expect, it } from '@jest/globals';
import { FakeClock, settle } from './clock.test-helpers.ts';
import { ExponentialBackoff, MaxOf, TokenBucket } from './ratelimit.ts';
import { WorkQueue } from './workqueue.ts';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('WorkQueue', () => {
  it('queues a waiting key once however often it is added', async () => {
    const q = new WorkQueue();
    const seen: string[] = [];
    q.add('a');
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.len()).toBe(2);
    const running = q.run(1, async (k) => {
      seen.push(k);
      await Promise.resolve();
    });
    await settle();
    q.shutDown();
    await running;
    expect(seen).toEqual(['a', 'b']);
  });

  it('never runs one key on two workers, and re-runs a key added while it was processed', async () => {
    const q = new WorkQueue();
    const gate = deferred();
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    // Recorded, not asserted in the handler: the queue would report a failed expect there as a
    // handler error and go on.
    const keys: string[] = [];
    const running = q.run(4, async (k) => {
      keys.push(k);
      active++;
      maxActive = Math.max(maxActive, active);
      runs++;
      if (runs === 1) await gate.promise;
      active--;
    });
    q.add('a');
    await settle();
    q.add('a'); // while processing: remembered
    q.add('a');
    await settle();
    expect(runs).toBe(1);
    gate.resolve();
    await settle();
    q.shutDown();
    await running;
    expect(runs).toBe(2);
    expect(keys).toEqual(['a', 'a']);
    expect(maxActive).toBe(1);
  });

  it('runs different keys concurrently up to the worker count', async () => {
    const q = new WorkQueue();
    const gate = deferred();
    let active = 0;
    let maxActive = 0;
    const running = q.run(3, async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await gate.promise;
      active--;
    });
    for (const k of ['a', 'b', 'c', 'd', 'e']) q.add(k);
    await settle();
    expect(maxActive).toBe(3);
    expect(q.len()).toBe(2);
    gate.resolve();
    await settle();
    q.shutDown();
    await running;
  });

  it('delays addAfter, and an earlier pending delay for the same key wins', async () => {
    const clock = new FakeClock(0);
    const q = new WorkQueue({ clock });
    const seen: [string, number][] = [];
    const running = q.run(1, (k) => {
      seen.push([k, clock.now()]);
      return Promise.resolve();
    });
    q.addAfter('a', 30);
    q.addAfter('a', 500);
    await clock.advance(29);
    expect(seen).toEqual([]);
    await clock.advance(1);
    expect(seen).toEqual([['a', 30]]);
    // The later delay was dropped, not kept for a second run.
    await clock.advance(1000);
    expect(seen).toEqual([['a', 30]]);
    expect(clock.timers).toBe(0);
    q.shutDown();
    await running;
  });

  it('retries a failing key after its backoff (5 ms doubling), and forget starts it over', async () => {
    const clock = new FakeClock(0);
    const q = new WorkQueue({ clock });
    const runs: number[] = [];
    const running = q.run(1, (k) => {
      runs.push(clock.now());
      if (runs.length < 4) q.addRateLimited(k);
      else q.forget(k);
      return Promise.resolve();
    });
    q.add('a');
    await clock.advance(1000);
    expect(runs).toEqual([0, 5, 15, 35]);
    expect(q.numRequeues('a')).toBe(0);
    q.shutDown();
    await running;
  });

  it('shutDown drops delayed keys and their timers', async () => {
    const clock = new FakeClock(0);
    const q = new WorkQueue({ clock });
    const seen: string[] = [];
    const running = q.run(1, (k) => {
      seen.push(k);
      return Promise.resolve();
    });
    q.addAfter('a', 10);
    q.shutDown();
    await running;
    expect(clock.timers).toBe(0);
    await clock.advance(100);
    expect(seen).toEqual([]);
  });

  it('reports a throwing handler and keeps going', async () => {
    const errors: string[] = [];
    const q = new WorkQueue({ onHandlerError: (k) => errors.push(k) });
    const seen: string[] = [];
    const running = q.run(1, (k) => {
      seen.push(k);
      return k === 'bad' ? Promise.reject(new Error('boom')) : Promise.resolve();
    });
    q.add('bad');
    q.add('good');
    await settle();
    q.shutDown();
    await running;
    expect(errors).toEqual(['bad']);
    expect(seen).toEqual(['bad', 'good']);
  });

  it('shutDown waits for keys in flight and drops the rest', async () => {
    const q = new WorkQueue();
    const gate = deferred();
    let finished = 0;
    const running = q.run(1, async () => {
      await gate.promise;
      finished++;
    });
    q.add('a');
    q.add('b');
    await settle();
    q.shutDown();
    let stopped = false;
    running.then(
      () => (stopped = true),
      () => undefined,
    );
    await settle();
    expect(stopped).toBe(false);
    gate.resolve();
    await running;
    expect(finished).toBe(1);
    q.add('c');
    expect(q.len()).toBe(0);
  });
});

describe('WorkQueue with owners', () => {
  const namespaceOf = (k: string): string => k.slice(0, k.indexOf('/'));

  it('takes turns across owners, first come first served within each', async () => {
    const q = new WorkQueue({ ownerOf: namespaceOf });
    for (let i = 0; i < 5; i++) q.add(`flood/b${String(i)}`);
    q.add('quiet/only');
    q.add('other/x');
    q.add('other/y');
    expect(q.len()).toBe(8);
    const seen: string[] = [];
    const running = q.run(1, async (k) => {
      seen.push(k);
      await Promise.resolve();
    });
    await settle();
    q.shutDown();
    await running;
    expect(seen).toEqual([
      'flood/b0',
      'quiet/only',
      'other/x',
      'flood/b1',
      'other/y',
      'flood/b2',
      'flood/b3',
      'flood/b4',
    ]);
  });

  it("serves a newcomer's key next, however many keys another owner has waiting", async () => {
    const q = new WorkQueue({ ownerOf: namespaceOf });
    for (let i = 0; i < 1000; i++) q.add(`flood/b${String(i)}`);
    const seen: string[] = [];
    const running = q.run(2, async (k) => {
      seen.push(k);
      if (seen.length === 3) q.add('quiet/only');
      // A turn of the event loop per key, as a reconcile that does I/O takes.
      await new Promise<void>((r) => setImmediate(r));
    });
    await settle(50);
    const at = seen.indexOf('quiet/only');
    q.shutDown();
    await running;
    // Two workers: at most the two keys in flight and one more turn of the flood come first.
    expect(at).toBeGreaterThan(2);
    expect(at).toBeLessThanOrEqual(5);
  });

  it('keeps the guarantees: once per waiting key, a key re-run after it finished goes to the back of its owner', async () => {
    const q = new WorkQueue({ ownerOf: namespaceOf });
    const seen: string[] = [];
    const running = q.run(1, async (k) => {
      seen.push(k);
      if (k === 'a/1' && seen.length === 1) q.add('a/1');
      await Promise.resolve();
    });
    q.add('a/1');
    q.add('a/1');
    q.add('a/2');
    q.add('b/1');
    await settle();
    q.shutDown();
    await running;
    // a/1 was running, not waiting, when a/2 and b/1 came: a's turn came first with a/2.
    expect(seen).toEqual(['a/1', 'a/2', 'b/1', 'a/1']);
    expect(q.len()).toBe(0);
  });
});

describe('rate limiters', () => {
  it('backs off exponentially per key from 5 ms, capped at 1000 s, and forgets', () => {
    const r = new ExponentialBackoff();
    expect([0, 1, 2, 3].map(() => r.when('a'))).toEqual([5, 10, 20, 40]);
    expect(r.when('b')).toBe(5);
    expect(r.numRequeues('a')).toBe(4);
    for (let i = 0; i < 30; i++) r.when('a');
    expect(r.when('a')).toBe(1_000_000);
    r.forget('a');
    expect(r.numRequeues('a')).toBe(0);
    expect(r.when('a')).toBe(5);
  });

  it('lets a burst through the token bucket, then spaces retries at the rate', () => {
    let now = 0;
    const b = new TokenBucket(10, 3, () => now);
    expect([b.when(), b.when(), b.when()]).toEqual([0, 0, 0]);
    expect(b.when()).toBeCloseTo(100);
    now = 1000;
    expect(b.when()).toBe(0);
  });

  it('takes the larger delay of its limiters', () => {
    let now = 0;
    const r = new MaxOf(new ExponentialBackoff(), new TokenBucket(10, 1, () => now));
    expect(r.when('a')).toBe(5);
    expect(r.when('b')).toBeCloseTo(100);
    now = 0;
  });
});
