import { afterEach, describe, expect, it } from '@jest/globals';
import { setTimeout as delay } from 'node:timers/promises';
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
afterEach(async () => {
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
      refreshMs: 60_000,
      onChange: (_name, owners) => changes.push([...owners].sort()),
    });
    resolver.want('ns/one', ['a.example.com']);
    resolver.want('ns/two', ['a.example.com']);
    await delay(10);
    expect(resolver.get('a.example.com')?.ips).toEqual(['192.0.2.1']);
    expect(changes).toEqual([['ns/one', 'ns/two']]);
    // Asked again at the TTL floor, and an unchanged answer is not reported.
    await delay(100);
    expect(dns.asked.length).toBeGreaterThanOrEqual(3);
    expect(changes).toHaveLength(1);
    dns.answers.set('a.example.com', ['192.0.2.2']);
    await delay(80);
    expect(resolver.get('a.example.com')?.ips).toEqual(['192.0.2.2']);
    expect(changes).toHaveLength(2);
  });

  it('stops looking a name up when no backend lists it any more', async () => {
    const dns = scripted();
    resolver = new NameResolver({
      lookup: dns.lookup,
      limits,
      concurrency: 4,
      refreshMs: 60_000,
      onChange: () => undefined,
    });
    resolver.want('ns/one', ['a.example.com', 'b.example.com']);
    resolver.want('ns/two', ['b.example.com']);
    await delay(50);
    resolver.want('ns/one', []);
    expect(resolver.get('a.example.com')).toBeUndefined();
    expect(resolver.get('b.example.com')).toBeDefined();
    resolver.want('ns/two', []);
    expect(resolver.size).toBe(0);
    const count = dns.asked.length;
    await delay(100);
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
      refreshMs: 100,
      onChange: () => {
        reports++;
      },
    });
    resolver.want('ns/one', ['a.example.com']);
    await delay(20);
    const first = resolver.get('a.example.com')?.resolvedAt;
    expect(reports).toBe(1);
    await delay(250);
    expect(reports).toBeGreaterThanOrEqual(2);
    expect(resolver.get('a.example.com')?.resolvedAt).toBeGreaterThan(first ?? Infinity);
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
      refreshMs: 60_000,
      onChange: () => undefined,
    });
    resolver.want(
      'noisy/many',
      Array.from({ length: 50 }, (_, i) => `n${String(i)}.example.com`),
    );
    await delay(10);
    resolver.want('quiet/one', ['q.example.com']);
    await delay(10);
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
      refreshMs: 60_000,
      onChange: () => undefined,
    });
    // The noisy namespace lists the shared name first, behind names that never answer.
    resolver.want('noisy/many', [
      ...Array.from({ length: 50 }, (_, i) => `n${String(i)}.example.com`),
      'shared.example.com',
    ]);
    resolver.want('quiet/one', ['shared.example.com']);
    await delay(50);
    expect(resolver.get('shared.example.com')?.state).toBe('Resolved');
    open = true;
    for (const r of hanging) r();
  });
});
