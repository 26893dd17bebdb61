import { describe, expect, it } from '@jest/globals';
import type { CachedProberReport } from '../../api/resources.ts';
import type { AddressHealth } from '../../health/state.ts';
import { QuorumView } from './view.ts';

const healthy: AddressHealth = {
  state: 'Healthy',
  successes: 3,
  failures: 0,
  since: 0,
  message: '',
};
const failing: AddressHealth = {
  state: 'Unhealthy',
  successes: 0,
  failures: 3,
  since: 0,
  message: 'ECONNREFUSED',
};
const ips = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
const key = 'ns/db';

function report(name: string, failingIps: string[], expiresAt: number, zone?: string) {
  return {
    metadata: { name, namespace: 'outrigger' },
    report: {
      expiresAt,
      ...(zone !== undefined ? { zone } : {}),
      backends: new Map([[key, new Set(failingIps)]]),
    },
  } satisfies CachedProberReport;
}

function view(o: {
  reports: () => CachedProberReport[];
  own: (ip: string) => AddressHealth;
  now: () => number;
  probersPerAddress?: number;
}) {
  return new QuorumView({
    reports: { list: () => o.reports() },
    self: 'leader',
    probersPerAddress: o.probersPerAddress ?? 3,
    zone: () => 'zone-a',
    now: o.now,
    ownTargets: () => [[key, new Set(ips.map((ip) => `${key}/${ip}`))] as const],
    ownHealth: (t) => o.own(t.slice(t.lastIndexOf('/') + 1)),
    partitionEveryMs: 0,
    partitionHoldMs: 5000,
  });
}

describe('QuorumView', () => {
  it('leaves the decision to the leader alone while no standby reports', () => {
    const v = view({ reports: () => [], own: () => failing, now: () => 0 });
    expect(v.decide(key, ips[0] ?? '', failing, 0)).toBeUndefined();
  });

  it('ignores expired reports and its own old one', () => {
    const v = view({
      reports: () => [report('b', [], 10), report('leader', [], 1000)],
      own: () => healthy,
      now: () => 100,
    });
    expect(v.fresh()).toEqual([]);
    expect(v.decide(key, ips[0] ?? '', failing, 100)).toBeUndefined();
  });

  it('outvotes the leader: its failure alone does not withdraw, two standbys’ do', () => {
    const v = view({
      reports: () => [report('b', [], 1e9, 'zone-b'), report('c', [], 1e9, 'zone-c')],
      own: () => healthy,
      now: () => 0,
    });
    const d = v.decide(key, ips[0] ?? '', failing, 0);
    expect(d?.health.state).toBe('Healthy');
    expect(d?.health.message).toBe('2 of 3 probers reach it; this one fails: ECONNREFUSED');
    expect(d?.verdict).toMatchObject({ healthy: 2, against: 1, zonesUnhealthy: ['zone-a'] });
    const w = view({
      reports: () => [report('b', [ips[0] ?? ''], 1e9), report('c', [ips[0] ?? ''], 1e9)],
      own: () => healthy,
      now: () => 0,
    });
    const e = w.decide(key, ips[0] ?? '', healthy, 0);
    expect(e?.health.state).toBe('Unhealthy');
    expect(e?.health.message).toBe('2 of 3 probers see it fail');
  });

  it('marks a prober partitioned only once its lone failures have held for the hold, and lets it back after as long', () => {
    let now = 0;
    let cut = true;
    const v = view({
      reports: () => [report('b', cut ? ips : [], 1e12), report('c', [], 1e12)],
      own: () => healthy,
      now: () => now,
    });
    expect(v.partitioned().set.has('b')).toBe(false);
    now = 4999;
    expect(v.partitioned().set.has('b')).toBe(false);
    now = 5000;
    expect(v.partitioned().set.has('b')).toBe(true);
    expect(v.partitioned().dissent.get('b')).toEqual({ prober: 'b', shared: 3, alone: 3 });
    // Its ballots no longer count: the leader failing it too makes 1–1, and it stays.
    expect(v.decide(key, ips[0] ?? '', failing, now)?.health.state).toBe('Healthy');
    cut = false;
    now = 6000;
    expect(v.partitioned().set.has('b')).toBe(true);
    now = 11_000;
    expect(v.partitioned().set.has('b')).toBe(false);
  });

  it('a lone failure that ends within the hold never partitions', () => {
    let now = 0;
    let early = true;
    const v = view({
      reports: () => [
        report('b', early ? [ips[0] ?? '', ips[1] ?? ''] : [], 1e12),
        report('c', [], 1e12),
      ],
      own: () => healthy,
      now: () => now,
    });
    v.partitioned();
    now = 2000;
    early = false;
    v.partitioned();
    now = 9000;
    expect(v.partitioned().set.size).toBe(0);
  });

  it('counts only the standbys assigned to the backend, and none for a backend that asked for the leader alone', () => {
    // Two probers per address: the leader and one of the two standbys.
    const reports = [report('b', [ips[0] ?? ''], 1e9), report('c', [ips[0] ?? ''], 1e9)];
    const v = view({
      reports: () => reports,
      own: () => healthy,
      now: () => 0,
      probersPerAddress: 2,
    });
    const d = v.decide(key, ips[0] ?? '', healthy, 0);
    expect((d?.verdict.healthy ?? 0) + (d?.verdict.against ?? 0)).toBe(2);
    // Both fail it, but only the assigned one's ballot counts: 1–1, it stays.
    expect(d?.health.state).toBe('Healthy');
    expect(v.decide(key, ips[0] ?? '', healthy, 0, 1)).toBeUndefined();
  });

  it('dates a state the leader does not share from when the decision changed', () => {
    let failing3: string[] = [];
    const v = view({
      reports: () => [report('b', failing3, 1e9), report('c', failing3, 1e9)],
      own: () => failing,
      now: () => 0,
    });
    // The leader has failed it since 0; at 1000 both standbys reach it again: Healthy since 1000.
    failing3 = [ips[0] ?? ''];
    expect(v.decide(key, ips[0] ?? '', failing, 500)?.health.state).toBe('Unhealthy');
    failing3 = [];
    const back = v.decide(key, ips[0] ?? '', failing, 1000);
    expect(back?.health).toMatchObject({ state: 'Healthy', since: 1000 });
    expect(v.decide(key, ips[0] ?? '', failing, 1500)?.health.since).toBe(1000);
  });
});
