import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from '@jest/globals';
import { currentConcern, installLastResort, withConcern, type ErrorSource } from './errors.ts';

let uninstall: (() => void) | undefined;
afterEach(() => {
  uninstall?.();
  uninstall = undefined;
});

// Jest installs its own process handlers; ours are exercised by emitting the process events the
// runtime would emit, from inside and outside a concern.
const emit = (event: string, ...args: unknown[]): boolean =>
  (process.emit as (e: string, ...a: unknown[]) => boolean).call(process, event, ...args);

function capture(): {
  reports: { source: ErrorSource; concern: unknown }[];
  exits: number[];
} {
  const reports: { source: ErrorSource; concern: unknown }[] = [];
  const exits: number[] = [];
  uninstall = installLastResort(
    (source) => {
      reports.push({ source, concern: currentConcern() });
    },
    (code) => exits.push(code),
  );
  return { reports, exits };
}

describe('last-resort error handling', () => {
  it('keeps the concern across timers and promises', async () => {
    const seen = await withConcern({ object: 'ns/a' }, async () => {
      await delay(5);
      return currentConcern();
    });
    expect(seen).toEqual({ object: 'ns/a' });
    expect(currentConcern()).toBeUndefined();
  });

  it('an uncaught exception that concerns an object is reported and the process stays up', () => {
    const { reports, exits } = capture();
    withConcern({ controller: 'externalbackend', object: 'team-a/db' }, () => {
      emit('uncaughtException', new Error('boom'), 'uncaughtException');
    });
    expect(reports).toEqual([
      {
        source: 'uncaughtException',
        concern: { controller: 'externalbackend', object: 'team-a/db' },
      },
    ]);
    expect(exits).toEqual([]);
  });

  it('an uncaught exception with no object exits 1 after reporting it', () => {
    const { reports, exits } = capture();
    emit('uncaughtException', new Error('machinery'), 'uncaughtException');
    expect(reports.map((r) => r.source)).toEqual(['uncaughtException']);
    expect(exits).toEqual([1]);
  });

  it('an unhandled rejection is reported, never fatal', () => {
    const { reports, exits } = capture();
    const p = Promise.resolve();
    emit('unhandledRejection', new Error('late'), p);
    withConcern({ probe: 'ns/db/192.0.2.1' }, () => {
      emit('unhandledRejection', new Error('late'), p);
    });
    expect(reports).toEqual([
      { source: 'unhandledRejection', concern: undefined },
      { source: 'unhandledRejection', concern: { probe: 'ns/db/192.0.2.1' } },
    ]);
    expect(exits).toEqual([]);
  });
});
