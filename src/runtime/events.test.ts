import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { createLogger } from './log.ts';
import {
  boundedEventRecorder,
  maxMessageLength,
  type EventResult,
  type PendingEvent,
} from './events.ts';

const log = createLogger('error');
const obj = (name: string) => ({ kind: 'ExternalBackend', namespace: 'team-a', name });

beforeEach(() => {
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

function recorder(o: Parameters<typeof boundedEventRecorder>[2] = {}) {
  const sent: PendingEvent[] = [];
  const results: EventResult[] = [];
  const r = boundedEventRecorder(
    (e) => {
      sent.push(e);
      return Promise.resolve();
    },
    log,
    { ...o, onResult: (x) => results.push(x) },
  );
  return { r, sent, results };
}

describe('event recorder', () => {
  it('drops identical events within the dedupe window', async () => {
    const { r, sent, results } = recorder();
    r.event(obj('db'), 'Warning', 'AddressDenied', 'x');
    r.event(obj('db'), 'Warning', 'AddressDenied', 'x');
    await jest.advanceTimersByTimeAsync(10);
    expect(sent).toHaveLength(1);
    expect(results).toEqual(['duplicate', 'sent']);
  });

  it('caps the backlog and counts what it drops, never waiting', async () => {
    const { r, sent, results } = recorder({ qps: 1, burst: 1, maxQueued: 5, perObjectBurst: 1000 });
    for (let i = 0; i < 50; i++) r.event(obj('db'), 'Warning', 'AddressDenied', `m${String(i)}`);
    // The first was taken by the sender at once; five wait; the rest were dropped.
    expect(results.filter((x) => x === 'dropped')).toHaveLength(44);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(sent).toHaveLength(6);
  });

  it('paces sending at its own rate', async () => {
    const { r, sent } = recorder({ qps: 2, burst: 2, perObjectBurst: 1000 });
    for (let i = 0; i < 6; i++) r.event(obj('db'), 'Normal', 'R', `m${String(i)}`);
    await jest.advanceTimersByTimeAsync(10);
    expect(sent).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(1000);
    expect(sent).toHaveLength(4);
    await jest.advanceTimersByTimeAsync(1000);
    expect(sent).toHaveLength(6);
  });

  it('filters one noisy object after its burst while others still get through', async () => {
    const { r, sent, results } = recorder({ perObjectBurst: 3, qps: 100, burst: 100 });
    for (let i = 0; i < 10; i++) r.event(obj('noisy'), 'Warning', 'R', `m${String(i)}`);
    r.event(obj('quiet'), 'Warning', 'R', 'hello');
    await jest.advanceTimersByTimeAsync(100);
    expect(sent.map((e) => e.object.name)).toEqual(['noisy', 'noisy', 'noisy', 'quiet']);
    expect(results.filter((x) => x === 'throttled')).toHaveLength(7);
  });

  it('cuts long messages', async () => {
    const { r, sent } = recorder();
    r.event(obj('db'), 'Warning', 'R', 'x'.repeat(5000));
    await jest.advanceTimersByTimeAsync(10);
    expect(sent[0]?.message).toHaveLength(maxMessageLength);
  });

  it('counts a failed write and keeps going', async () => {
    const results: EventResult[] = [];
    let n = 0;
    const r = boundedEventRecorder(
      () => (++n === 1 ? Promise.reject(new Error('503')) : Promise.resolve()),
      log,
      { onResult: (x) => results.push(x) },
    );
    r.event(obj('a'), 'Normal', 'R', '1');
    r.event(obj('b'), 'Normal', 'R', '2');
    await jest.advanceTimersByTimeAsync(10);
    expect(results).toEqual(['failed', 'sent']);
  });
});
