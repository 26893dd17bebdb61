import { describe, expect, it } from '@jest/globals';
import { setTimeout as delay } from 'node:timers/promises';
import { realClock } from '../../runtime/clock.ts';
import { createLogger } from '../../runtime/log.ts';
import type { Rest } from '../../runtime/rest.ts';
import { ReportWriter } from './report.ts';

function writer(fail: () => boolean, renewMs = 60_000) {
  const sent: { at: number; body: { spec: { backends: unknown[] } } }[] = [];
  const rest: Rest = {
    request: <T>(method: string, _path: string, r?: { body?: unknown }) => {
      if (method === 'PATCH') {
        if (fail()) return Promise.reject(new Error('refused'));
        sent.push({ at: Date.now(), body: JSON.parse(String(r?.body)) as never });
      }
      return Promise.resolve(undefined as T);
    },
    watch: () => Promise.resolve(),
  };
  const w = new ReportWriter({
    rest,
    namespace: 'outrigger',
    name: 'replica-b',
    nodeName: 'node-b',
    zone: () => 'zone-b',
    leaseMs: 30_000,
    renewMs,
    batchMs: 200,
    clock: realClock,
    log: createLogger('silent'),
  });
  return { w, sent };
}

describe('ReportWriter', () => {
  it('makes one write of a burst of changes, with only what changed listed', async () => {
    const { w, sent } = writer(() => false);
    const stop = new AbortController();
    const running = w.run(stop.signal);
    await delay(50);
    const first = sent.length;
    for (let i = 0; i < 5; i++) w.set(`ns/b${String(i)}`, i === 2 ? ['10.0.0.1'] : []);
    w.set('ns/b3', undefined);
    await delay(400);
    stop.abort();
    await running;
    expect(sent.length - first).toBe(1);
    expect(sent.at(-1)?.body.spec.backends).toEqual([
      { name: 'ns/b0' },
      { name: 'ns/b1' },
      { name: 'ns/b2', unhealthy: ['10.0.0.1'] },
      { name: 'ns/b4' },
    ]);
  });

  it('backs off after a refused write instead of sending it again at once', async () => {
    let attempts = 0;
    const { w, sent } = writer(() => ++attempts <= 2);
    const stop = new AbortController();
    const running = w.run(stop.signal);
    w.set('ns/db', ['10.0.0.1']);
    await delay(3500);
    stop.abort();
    await running;
    // Refused at once, again 1 s later, written 2 s after that: three attempts, not dozens.
    expect(attempts).toBe(3);
    expect(sent).toHaveLength(1);
  });
});
