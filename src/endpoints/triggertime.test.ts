import { describe, expect, it } from '@jest/globals';
import { pod, svc } from './fixtures.test-helpers.ts';
import type { CachedPod, CachedService } from '../runtime/cached.ts';
import { formatRFC3339Nano, nextTriggerTime, TriggerTimeTracker } from './triggertime.ts';

/** Computes and commits, as a successful sync does. */
function sync(
  t: TriggerTimeTracker,
  key: string,
  service: CachedService,
  pods: readonly CachedPod[],
): Date | undefined {
  const r = nextTriggerTime(t.get(key), service, pods);
  t.set(key, r.state);
  return r.time;
}

describe('TriggerTimeTracker', () => {
  const service = svc('web', { created: '2026-01-01T00:00:00Z' });

  it('reports the Service creation on the first sync', () => {
    const t = new TriggerTimeTracker();
    expect(sync(t, 'ns/web', service, [pod('a', { readySince: '2026-01-02T00:00:00Z' })])).toEqual(
      new Date('2026-01-01T00:00:00Z'),
    );
  });

  it('then reports the earliest Ready transition that moved since the previous sync', () => {
    const t = new TriggerTimeTracker();
    sync(t, 'ns/web', service, [pod('a', { readySince: '2026-01-02T00:00:00Z' })]);
    const later = [
      pod('a', { readySince: '2026-01-03T00:00:00Z' }),
      pod('b', { readySince: '2026-01-04T00:00:00Z' }),
    ];
    expect(sync(t, 'ns/web', service, later)).toEqual(new Date('2026-01-03T00:00:00Z'));
  });

  it('reports nothing when no pod transitioned (e.g. a pod was deleted)', () => {
    const t = new TriggerTimeTracker();
    const pods = [
      pod('a', { readySince: '2026-01-02T00:00:00Z' }),
      pod('b', { readySince: '2026-01-02T00:00:00Z' }),
    ];
    sync(t, 'ns/web', service, pods);
    expect(sync(t, 'ns/web', service, pods.slice(0, 1))).toBeUndefined();
  });

  it('keeps reporting a change until a sync commits it (a failed write is retried with it)', () => {
    const t = new TriggerTimeTracker();
    sync(t, 'ns/web', service, [pod('a', { readySince: '2026-01-02T00:00:00Z' })]);
    const moved = [pod('a', { readySince: '2026-01-03T00:00:00Z' })];
    expect(nextTriggerTime(t.get('ns/web'), service, moved).time).toEqual(
      new Date('2026-01-03T00:00:00Z'),
    );
    expect(sync(t, 'ns/web', service, moved)).toEqual(new Date('2026-01-03T00:00:00Z'));
    expect(sync(t, 'ns/web', service, moved)).toBeUndefined();
  });

  it('forgets deleted Services', () => {
    const t = new TriggerTimeTracker();
    sync(t, 'ns/web', service, []);
    t.delete('ns/web');
    expect(sync(t, 'ns/web', service, [])).toEqual(new Date('2026-01-01T00:00:00Z'));
  });
});

describe('formatRFC3339Nano', () => {
  it.each([
    ['2026-01-02T03:04:05.000Z', '2026-01-02T03:04:05Z'],
    ['2026-01-02T03:04:05.120Z', '2026-01-02T03:04:05.12Z'],
    ['2026-01-02T03:04:05.123Z', '2026-01-02T03:04:05.123Z'],
  ])('%s → %s', (iso, expected) => {
    expect(formatRFC3339Nano(new Date(iso))).toBe(expected);
  });
});
