import { describe, expect, it } from '@jest/globals';
import { FakeClock, settle } from './clock.test-helpers.ts';
import { createLogger } from './log.ts';
import { createMetrics } from './metrics.ts';
import { Controller, done, type ReconcileResult } from './runner.ts';

function setup(maxRetries = 3): { clock: FakeClock; controller: Controller; runs: string[] } {
  const clock = new FakeClock();
  const controller = new Controller({
    name: 'test',
    workers: 1,
    maxRetries,
    log: createLogger('silent'),
    metrics: createMetrics(),
    clock,
  });
  return { clock, controller, runs: [] };
}

describe('Controller (the runner)', () => {
  it('puts a key back only when its reconcile asks, after the time it asks', async () => {
    const { clock, controller, runs } = setup();
    const results: ReconcileResult[] = [{ requeueAfterMs: 5000 }, done];
    const running = controller.run((key) => {
      runs.push(`${key}@${String(clock.now())}`);
      return Promise.resolve(results.shift() ?? done);
    });
    const start = clock.now();
    controller.queue.add('ns/a');
    await clock.advance(4999);
    expect(runs).toEqual([`ns/a@${String(start)}`]);
    await clock.advance(1);
    expect(runs).toEqual([`ns/a@${String(start)}`, `ns/a@${String(start + 5000)}`]);
    await clock.advance(60_000);
    expect(runs).toHaveLength(2);
    controller.shutDown();
    await running;
  });

  it('retries a failing key with backoff, then drops it after maxRetries', async () => {
    const { clock, controller, runs } = setup(3);
    const running = controller.run((key) => {
      runs.push(key);
      return Promise.reject(new Error('the API server said no'));
    });
    controller.queue.add('ns/a');
    await clock.advance(10 * 60_000);
    // The first try and three retries.
    expect(runs).toHaveLength(4);
    await clock.advance(60 * 60_000);
    expect(runs).toHaveLength(4);
    controller.shutDown();
    await running;
  });

  it('keeps the look a failed reconcile planned, even once the key is dropped from backoff', async () => {
    const { clock, controller, runs } = setup(0);
    const results: ReconcileResult[] = [
      { error: new Error('one write failed'), requeueAfterMs: 30_000 },
      done,
    ];
    const running = controller.run(() => {
      runs.push(String(clock.now()));
      return Promise.resolve(results.shift() ?? done);
    });
    const start = clock.now();
    controller.queue.add('ns/a');
    await clock.advance(29_999);
    expect(runs).toEqual([String(start)]);
    await clock.advance(1);
    expect(runs).toEqual([String(start), String(start + 30_000)]);
    await clock.advance(60 * 60_000);
    expect(runs).toHaveLength(2);
    controller.shutDown();
    await running;
  });

  it('retries a failed reconcile after the sooner of its backoff and its planned look', async () => {
    const { clock, controller, runs } = setup(3);
    const results: ReconcileResult[] = [
      { error: new Error('one write failed'), requeueAfterMs: 60_000 },
      done,
    ];
    const running = controller.run(() => {
      runs.push(String(clock.now()));
      return Promise.resolve(results.shift() ?? done);
    });
    const start = clock.now();
    controller.queue.add('ns/a');
    await clock.advance(1000);
    expect(runs).toHaveLength(2);
    expect(Number(runs[1]) - start).toBeLessThan(1000);
    // The retry planned afresh (done): the earlier plan's look does not come on its own.
    await clock.advance(60 * 60_000);
    expect(runs).toHaveLength(2);
    controller.shutDown();
    await running;
  });

  it('says how long the oldest reconcile has been running, by its clock', async () => {
    const { clock, controller } = setup();
    let release = (): void => undefined;
    const running = controller.run(
      () =>
        new Promise<ReconcileResult>((resolve) => {
          release = () => {
            resolve(done);
          };
        }),
    );
    expect(controller.stuckForMs()).toBe(0);
    controller.queue.add('ns/a');
    await settle();
    await clock.advance(1234);
    expect(controller.stuckForMs()).toBe(1234);
    release();
    await settle();
    expect(controller.stuckForMs()).toBe(0);
    controller.shutDown();
    await running;
  });
});
