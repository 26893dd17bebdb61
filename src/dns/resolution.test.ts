import { describe, expect, it } from '@jest/globals';
import {
  expire,
  nextResolution,
  pending,
  type LookupOutcome,
  type Resolution,
} from './resolution.ts';

const limits = { minTtlMs: 5000, maxTtlMs: 300_000, staleMs: 600_000, maxAddresses: 3 };
const answer = (ips: string[], ttlSeconds = 30): LookupOutcome => ({ ips, ttlSeconds, errors: [] });
const failed = (error = 'ETIMEOUT'): LookupOutcome => ({
  ips: [],
  ttlSeconds: 0,
  errors: [
    { family: 'IPv4', error },
    { family: 'IPv6', error },
  ],
});

function run(steps: { at: number; outcome: LookupOutcome }[]): {
  r: Resolution;
  next: number;
}[] {
  let r = pending('db.example.com');
  return steps.map(({ at, outcome }) => {
    const step = nextResolution(r, outcome, at, limits);
    r = step.resolution;
    return { r, next: step.nextInMs };
  });
}

describe('a DNS name, lookup by lookup', () => {
  it('publishes an answer sorted (IPv4 first), each address once, at most maxAddresses', () => {
    const [s] = run([
      {
        at: 1000,
        outcome: answer(['2001:db8::1', '192.0.2.9', '192.0.2.1', '192.0.2.9', '192.0.2.5']),
      },
    ]);
    expect(s?.r).toMatchObject({
      state: 'Resolved',
      ips: ['192.0.2.1', '192.0.2.5', '192.0.2.9'],
      leftOut: 1,
      resolvedAt: 1000,
      ttlSeconds: 30,
    });
    expect(s?.next).toBe(30_000);
  });

  it('asks again after the TTL, within the floor and the ceiling', () => {
    const at = (ttl: number) => run([{ at: 0, outcome: answer(['192.0.2.1'], ttl) }])[0]?.next;
    expect(at(0)).toBe(5000);
    expect(at(1)).toBe(5000);
    expect(at(60)).toBe(60_000);
    expect(at(86_400)).toBe(300_000);
  });

  it('keeps the last answer while lookups fail, until staleMs after it was confirmed, then withdraws it', () => {
    const steps = run([
      { at: 0, outcome: answer(['192.0.2.1']) },
      { at: 30_000, outcome: failed() },
      { at: 35_000, outcome: failed() },
      { at: 45_000, outcome: failed('ESERVFAIL') },
      { at: 599_999, outcome: failed() },
      { at: 600_000, outcome: failed() },
    ]);
    // Two failures in a row are not news; the third makes it Stale.
    expect(steps.map((s) => s.r.state)).toEqual([
      'Resolved',
      'Resolved',
      'Resolved',
      'Stale',
      'Stale',
      'Failed',
    ]);
    expect(steps[2]?.r.error).toBeUndefined();
    expect(steps[3]?.r).toMatchObject({ ips: ['192.0.2.1'], keptUntil: 600_000, failures: 3 });
    expect(steps[3]?.r.error).toBe('A lookup: ESERVFAIL; AAAA lookup: ESERVFAIL');
    // The next lookup of a stale name comes by the time its answer would expire.
    expect(steps[4]?.next).toBe(1);
    expect(steps[5]?.r).toMatchObject({ ips: [], failures: 5, resolvedAt: 0 });
    expect(steps[5]?.r.keptUntil).toBeUndefined();
  });

  it('withdraws a Stale answer at its bound even when no lookup has finished by then', () => {
    const stale: Resolution = {
      ...pending('db.example.com'),
      state: 'Stale',
      ips: ['192.0.2.1'],
      resolvedAt: 0,
      keptUntil: 600_000,
      error: 'A lookup: ETIMEOUT',
      failures: 3,
    };
    expect(expire(stale, 599_999)).toBe(stale);
    expect(expire(stale, 600_000)).toMatchObject({ state: 'Failed', ips: [], resolvedAt: 0 });
  });

  it('backs off from the floor, doubling up to the ceiling, while it fails', () => {
    const steps = run(Array.from({ length: 9 }, (_, i) => ({ at: i, outcome: failed() })));
    expect(steps.map((s) => s.next)).toEqual([
      5000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000,
    ]);
    expect(steps.every((s) => s.r.state === 'Failed')).toBe(true);
  });

  it('treats no record of either family as a failure, never as an empty answer', () => {
    const steps = run([
      { at: 0, outcome: answer(['192.0.2.1']) },
      ...[1, 2, 3].map((at) => ({ at, outcome: { ips: [], ttlSeconds: 0, errors: [] } })),
    ]);
    expect(steps[3]?.r).toMatchObject({
      state: 'Stale',
      ips: ['192.0.2.1'],
      error: 'no A or AAAA records',
    });
  });

  it('ignores a family that fails when it never had addresses, but not one that had', () => {
    const v6Fails: LookupOutcome = {
      ips: ['192.0.2.2'],
      ttlSeconds: 30,
      errors: [{ family: 'IPv6', error: 'ESERVFAIL' }],
    };
    const v4Only = run([
      { at: 0, outcome: answer(['192.0.2.1']) },
      { at: 1, outcome: v6Fails },
    ]);
    expect(v4Only[1]?.r).toMatchObject({ state: 'Resolved', ips: ['192.0.2.2'] });
    const dual = run([
      { at: 0, outcome: answer(['192.0.2.1', '2001:db8::1']) },
      { at: 1, outcome: v6Fails },
      { at: 2, outcome: v6Fails },
      { at: 3, outcome: v6Fails },
    ]);
    expect(dual[3]?.r).toMatchObject({
      state: 'Stale',
      ips: ['192.0.2.1', '2001:db8::1'],
      error: 'AAAA lookup: ESERVFAIL',
    });
  });

  it('recovers from Failed with the next answer', () => {
    const steps = run([
      { at: 0, outcome: failed() },
      { at: 5000, outcome: answer(['192.0.2.3']) },
    ]);
    expect(steps[1]?.r).toMatchObject({ state: 'Resolved', ips: ['192.0.2.3'], failures: 0 });
    expect(steps[1]?.r.error).toBeUndefined();
  });
});

describe('answers as published', () => {
  it('are canonical, and AAAA records that carry an IPv4 address are left out', async () => {
    const { canonical } = await import('./lookup.ts');
    expect(canonical('192.0.2.1', 'IPv4')).toBe('192.0.2.1');
    expect(canonical('2001:0db8:0:0::1', 'IPv6')).toBe('2001:db8::1');
    expect(canonical('::ffff:8.8.8.8', 'IPv6')).toBeUndefined();
    expect(canonical('::ffff:127.0.0.1', 'IPv6')).toBeUndefined();
    expect(canonical('::8.8.8.8', 'IPv6')).toBeUndefined();
    expect(canonical('::', 'IPv6')).toBeUndefined();
    expect(canonical('not an ip', 'IPv4')).toBeUndefined();
  });
});

describe('a dual-stack name whose AAAA queries fail for good', () => {
  it('keeps both families for the bound, then publishes what A answers', () => {
    const v6Fails = (ip: string): LookupOutcome => ({
      ips: [ip],
      ttlSeconds: 30,
      errors: [{ family: 'IPv6', error: 'ESERVFAIL' }],
    });
    const steps = run([
      { at: 0, outcome: answer(['192.0.2.1', '2001:db8::1']) },
      { at: 1, outcome: v6Fails('192.0.2.9') },
      { at: 2, outcome: v6Fails('192.0.2.9') },
      { at: 3, outcome: v6Fails('192.0.2.9') },
      { at: 600_000, outcome: v6Fails('192.0.2.9') },
    ]);
    expect(steps[3]?.r).toMatchObject({ state: 'Stale', ips: ['192.0.2.1', '2001:db8::1'] });
    expect(steps[4]?.r).toMatchObject({ state: 'Resolved', ips: ['192.0.2.9'] });
  });
});
