import { afterEach, describe, expect, it } from '@jest/globals';
import { FakeClock } from '../runtime/clock.test-helpers.ts';
import type { LookupOutcome } from './resolution.ts';
import { NameResolver } from './resolver.ts';

const limits = { minTtlMs: 30, maxTtlMs: 1000, staleMs: 10_000, maxAddresses: 64 };

/** A scripted DNS: each name's current answer, and every lookup made. */
function scripted() {
  const answers = new Map<string, string[]>();
  const asked: string[] = [];
  const lookup = (name: string): Promise<LookupOutcome> => {
    asked.push(name);
    const ips = answers.get(name) ?? [];
    return Promise.resolve({ ips, ttlSeconds: 0, errors: [] });
  };
  return { answers, asked, lookup };
}

let resolver: NameResolver | undefined;
let clock = new FakeClock(0);
afterEach(async () => {
  clock = new FakeClock(0);
  await resolver?.stop();
});

describe('the name resolver', () => {
  it('looks each name up once however many backends list it, and reports changes to them all', async () => {
    const dns = scripted();
    dns.answers.set('a.example.com', ['192.0.2.1']);
    const changes: string[][] = [];
    resolver = new NameResolver({
      lookup: dns.lookup,
      limits,
      concurrency: 4,
      clock,
      refreshMs: 60_000,
      onChange: (_name, owners) => changes.push([...owners].sort()),
    });
    resolver.want('ns/one', ['a.example.com']);
    resolver.want('ns/two', ['a.example.com']);
    await clock.advance(10);
    expect(resolver.get('a.example.com')?.ips).toEqual(['192.0.2.1']);
    expect(changes).toEqual([['ns/one', 'ns/two']]);
    // Asked again at the TTL floor (30 ms; the answer's TTL is 0), and an unchanged answer is
    // not reported.
    await clock.advance(100);
    expect(dns.asked).toHaveLength(4);
    expect(changes).toHaveLength(1);
    dns.answers.set('a.example.com', ['192.0.2.2']);
    await clock.advance(20);
    expect(resolver.get('a.example.com')?.ips).toEqual(['192.0.2.2']);
    expect(changes).toHaveLength(2);
  });

  it('stops looking a name up when no backend lists it any more', async () => {
    const dns = scripted();
    resolver = new NameResolver({
      lookup: dns.lookup,
      limits,
      concurrency: 4,
      clock,
      refreshMs: 60_000,
      onChange: () => undefined,
    });
    resolver.want('ns/one', ['a.example.com', 'b.example.com']);
    resolver.want('ns/two', ['b.example.com']);
    await clock.advance(50);
    resolver.want('ns/one', []);
    expect(resolver.get('a.example.com')).toBeUndefined();
    expect(resolver.get('b.example.com')).toBeDefined();
    resolver.want('ns/two', []);
    expect(resolver.size).toBe(0);
    const count = dns.asked.length;
    await clock.advance(100);
    expect(dns.asked.length).toBe(count);
  });

  it('reports an unchanged answer again after refreshMs, so that status can show it was confirmed', async () => {
    const dns = scripted();
    dns.answers.set('a.example.com', ['192.0.2.1']);
    let reports = 0;
    resolver = new NameResolver({
      lookup: dns.lookup,
      limits,
      concurrency: 4,
      clock,
      refreshMs: 100,
      onChange: () => {
        reports++;
      },
    });
    resolver.want('ns/one', ['a.example.com']);
    await clock.advance(0);
    const first = resolver.get('a.example.com')?.resolvedAt;
    expect(reports).toBe(1);
    // Lookups at 30, 60 and 90 ms give the same answer: not news yet.
    await clock.advance(90);
    expect(reports).toBe(1);
    // The one at 120 ms is 100 ms after the last report: reported again.
    await clock.advance(30);
    expect(reports).toBe(2);
    expect(resolver.get('a.example.com')?.resolvedAt).toBe(120);
    expect(first).toBe(0);
  });

  it('keeps one namespace with many names from holding every lookup slot', async () => {
    const started: string[] = [];
    const release: (() => void)[] = [];
    let open = false;
    const answer: LookupOutcome = { ips: ['192.0.2.1'], ttlSeconds: 60, errors: [] };
    resolver = new NameResolver({
      lookup: (name) => {
        started.push(name);
        if (open) return Promise.resolve(answer);
        return new Promise((resolve) => {
          release.push(() => {
            resolve(answer);
          });
        });
      },
      limits,
      concurrency: 4,
      clock,
      refreshMs: 60_000,
      onChange: () => undefined,
    });
    resolver.want(
      'noisy/many',
      Array.from({ length: 50 }, (_, i) => `n${String(i)}.example.com`),
    );
    await clock.advance(10);
    resolver.want('quiet/one', ['q.example.com']);
    await clock.advance(10);
    expect(started).toContain('q.example.com');
    expect(started.length).toBeLessThanOrEqual(4);
    open = true;
    for (const r of release) r();
  });

  it("charges a shared name's lookups to the namespace that lists fewest names", async () => {
    const hanging: (() => void)[] = [];
    let open = false;
    const answer: LookupOutcome = { ips: ['192.0.2.1'], ttlSeconds: 60, errors: [] };
    resolver = new NameResolver({
      lookup: (name) =>
        name === 'shared.example.com' || open
          ? Promise.resolve(answer)
          : new Promise((resolve) => {
              hanging.push(() => {
                resolve(answer);
              });
            }),
      limits,
      concurrency: 4,
      clock,
      refreshMs: 60_000,
      onChange: () => undefined,
    });
    // The noisy namespace lists the shared name first, behind names that never answer.
    resolver.want('noisy/many', [
      ...Array.from({ length: 50 }, (_, i) => `n${String(i)}.example.com`),
      'shared.example.com',
    ]);
    resolver.want('quiet/one', ['shared.example.com']);
    await clock.advance(50);
    expect(resolver.get('shared.example.com')?.state).toBe('Resolved');
    open = true;
    for (const r of hanging) r();
  });
});
