import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import type { CachedObject } from './cached.ts';
import { FakeClock, settle } from './clock.test-helpers.ts';
import { Informer } from './informer.ts';
import type { ListPage, ResourceClient } from './listers.ts';

/** A client whose every list fails as the API server refusing it would. */
function refusing(code: number): ResourceClient<unknown> & { lists: number } {
  const client = {
    lists: 0,
    list(): Promise<ListPage<unknown>> {
      client.lists++;
      return Promise.reject(Object.assign(new Error(`HTTP ${String(code)}`), { code }));
    },
    watch: () => Promise.reject(new Error('no watch without a list')),
  };
  return client;
}

describe('Informer', () => {
  it("dates a scope's failure by its injected clock, as the controllers comparing it read time", async () => {
    const clock = new FakeClock(Date.UTC(2030, 5, 1));
    const client = refusing(403);
    const informer = new Informer<CachedObject>({
      name: 'pods',
      client,
      transform: (raw) => raw as CachedObject,
      log: pino({ level: 'silent' }),
      clock,
    });
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    await settle();
    expect(client.lists).toBe(1);
    expect(informer.failure()).toEqual({
      code: 403,
      message: 'HTTP 403',
      since: Date.UTC(2030, 5, 1),
    });
    stop.abort();
    await running;
  });
});
