import { describe, expect, it } from '@jest/globals';
import { MetricsAuthorizer, type Reviewer, type UserInfo } from './metricsauth.ts';

/** A reviewer over a table of tokens and grants, counting the reviews it is asked for. */
function table(users: Record<string, { user: string; granted: boolean }>) {
  const calls = { authn: 0, authz: 0 };
  let gate: Promise<void> = Promise.resolve();
  let failing = false;
  const reviewer: Reviewer = {
    async authenticate(token) {
      calls.authn++;
      await gate;
      if (failing) throw new Error('API server unavailable');
      const u = users[token];
      return u === undefined ? undefined : { username: u.user };
    },
    authorize(user: UserInfo) {
      calls.authz++;
      return Promise.resolve(
        Object.values(users).some((u) => u.user === user.username && u.granted),
      );
    },
  };
  return {
    reviewer,
    calls,
    hold(): () => void {
      let release = (): void => undefined;
      gate = new Promise((r) => (release = r));
      return release;
    },
    fail(on: boolean): void {
      failing = on;
    },
  };
}

const users = {
  prom: { user: 'system:serviceaccount:monitoring:prometheus', granted: true },
  other: { user: 'system:serviceaccount:default:app', granted: false },
};

describe('MetricsAuthorizer', () => {
  it('refuses a missing or malformed header without asking the API server', async () => {
    const t = table(users);
    const a = new MetricsAuthorizer(t.reviewer);
    for (const h of [undefined, '', 'Basic abc', 'Bearer', `Bearer ${'x'.repeat(20_000)}`])
      expect(await a.review(h, 'get', '/metrics')).toEqual({
        outcome: 'unauthenticated',
        cached: true,
      });
    expect(t.calls).toEqual({ authn: 0, authz: 0 });
  });

  it('keeps serving a token allowed before while junk tokens keep the review budget spent, or a review fails', async () => {
    let now = 0;
    const t = table(users);
    const a = new MetricsAuthorizer(t.reviewer, {
      allowTtlMs: 60_000,
      staleAllowedMs: 600_000,
      reviewsPerSecond: 1,
      reviewBurst: 1,
      now: () => now,
    });
    expect((await a.review('Bearer prom', 'get', '/metrics')).outcome).toBe('allowed');
    // Past its TTL, with the budget spent by a stranger's junk token at the same moment.
    now = 61_000;
    expect((await a.review('Bearer junk-1', 'get', '/metrics')).outcome).toBe('unauthenticated');
    expect((await a.review('Bearer junk-2', 'get', '/metrics')).outcome).toBe('throttled');
    expect(await a.review('Bearer prom', 'get', '/metrics')).toMatchObject({
      outcome: 'allowed',
      cached: true,
    });
    // A review that fails keeps the last answer too, and does not replace it.
    now = 120_000;
    t.fail(true);
    expect((await a.review('Bearer prom', 'get', '/metrics')).outcome).toBe('allowed');
    // Long past it (the stale window), a spent budget is a 429 for it as for anyone.
    now = 60_000 + 600_001;
    t.fail(false);
    expect((await a.review('Bearer junk-3', 'get', '/metrics')).outcome).toBe('unauthenticated');
    expect((await a.review('Bearer prom', 'get', '/metrics')).outcome).toBe('throttled');
    // A stranger's token was never allowed: no stale answer for it.
    expect((await a.review('Bearer other', 'get', '/metrics')).outcome).toBe('throttled');
  });

  it('allows, forbids and rejects, and answers repeats from memory until their TTL', async () => {
    let now = 0;
    const t = table(users);
    const a = new MetricsAuthorizer(t.reviewer, {
      allowTtlMs: 60_000,
      denyTtlMs: 10_000,
      now: () => now,
    });
    expect(await a.review('Bearer prom', 'get', '/metrics')).toMatchObject({
      outcome: 'allowed',
      cached: false,
      user: users.prom.user,
    });
    expect(await a.review('Bearer other', 'get', '/metrics')).toMatchObject({
      outcome: 'forbidden',
      cached: false,
    });
    expect(await a.review('bearer nobody', 'get', '/metrics')).toMatchObject({
      outcome: 'unauthenticated',
      cached: false,
    });
    expect(t.calls).toEqual({ authn: 3, authz: 2 });
    now = 9_999;
    for (const tok of ['prom', 'other', 'nobody'])
      expect((await a.review(`Bearer ${tok}`, 'get', '/metrics')).cached).toBe(true);
    expect(t.calls.authn).toBe(3);
    // Refusals expire first; an allowed token stays trusted for its longer TTL.
    now = 10_000;
    expect((await a.review('Bearer other', 'get', '/metrics')).cached).toBe(false);
    expect((await a.review('Bearer prom', 'get', '/metrics')).cached).toBe(true);
    now = 60_000;
    expect((await a.review('Bearer prom', 'get', '/metrics')).cached).toBe(false);
    // Another path or verb is another question.
    expect((await a.review('Bearer prom', 'get', '/other')).cached).toBe(false);
  });

  it('shares one review among concurrent requests with the same token', async () => {
    const t = table(users);
    const a = new MetricsAuthorizer(t.reviewer);
    const release = t.hold();
    const all = Promise.all(Array.from({ length: 5 }, () => a.review('Bearer prom', 'get', '/m')));
    release();
    expect((await all).map((d) => d.outcome)).toEqual(Array(5).fill('allowed'));
    expect(t.calls.authn).toBe(1);
  });

  it('caps reviews in flight and in rate, refusing the excess at once, yet still serves known tokens', async () => {
    let now = 0;
    const t = table(users);
    const a = new MetricsAuthorizer(t.reviewer, {
      maxInFlight: 2,
      reviewsPerSecond: 1,
      reviewBurst: 3,
      now: () => now,
    });
    await a.review('Bearer prom', 'get', '/metrics');
    const release = t.hold();
    const flood = ['a', 'b', 'c', 'd'].map((x) => a.review(`Bearer ${x}`, 'get', '/metrics'));
    // Two in flight; the other two are refused without a review.
    expect(t.calls.authn).toBe(3);
    expect((await a.review('Bearer prom', 'get', '/metrics')).outcome).toBe('allowed');
    release();
    expect((await Promise.all(flood)).map((d) => d.outcome)).toEqual([
      'unauthenticated',
      'unauthenticated',
      'throttled',
      'throttled',
    ]);
    // The burst of three is spent; one more review a second.
    expect((await a.review('Bearer e', 'get', '/metrics')).outcome).toBe('throttled');
    now = 1000;
    expect((await a.review('Bearer e', 'get', '/metrics')).outcome).toBe('unauthenticated');
    expect((await a.review('Bearer f', 'get', '/metrics')).outcome).toBe('throttled');
  });

  it('reports a failed review as an error, remembered briefly, and keeps the denied map bounded', async () => {
    let now = 0;
    const t = table(users);
    const a = new MetricsAuthorizer(t.reviewer, {
      errorTtlMs: 2000,
      maxDenied: 2,
      reviewBurst: 100,
      now: () => now,
    });
    t.fail(true);
    const d = await a.review('Bearer prom', 'get', '/metrics');
    expect(d.outcome).toBe('error');
    expect(String(d.error)).toContain('API server unavailable');
    expect(await a.review('Bearer prom', 'get', '/metrics')).toEqual({
      outcome: 'error',
      cached: true,
    });
    t.fail(false);
    now = 2000;
    expect((await a.review('Bearer prom', 'get', '/metrics')).outcome).toBe('allowed');
    for (const x of ['x', 'y', 'z']) await a.review(`Bearer ${x}`, 'get', '/metrics');
    // x, the oldest refusal, was dropped: asking again costs a review.
    const before = t.calls.authn;
    expect((await a.review('Bearer z', 'get', '/metrics')).cached).toBe(true);
    expect((await a.review('Bearer x', 'get', '/metrics')).cached).toBe(false);
    expect(t.calls.authn).toBe(before + 1);
  });

  it('gives up on a review that takes too long', async () => {
    const t = table(users);
    const a = new MetricsAuthorizer(t.reviewer, { timeoutMs: 20 });
    const release = t.hold();
    const d = await a.review('Bearer prom', 'get', '/metrics');
    release();
    expect(d.outcome).toBe('error');
    expect(String(d.error)).toContain('review took over 20 ms');
  });
});
