import { describe, expect, it } from '@jest/globals';
import { initialHealth, observe, type AddressHealth } from '../../health/state.ts';
import { DenyList, defaultDeniedCidrs } from '../../net/denylist.ts';
import { externalBackendSpec, type ExternalBackendSpecInput } from '../../api/externalbackend.ts';
import { candidateAddresses, noResolutions } from '../../sources/index.ts';
import type { Resolution } from '../../dns/resolution.ts';
import { addressViews, denyListJudge, isPublished, publishedCounts } from './addresses.ts';
import { decideBackups, backupCondition, type BackupInput } from './backups.ts';
import { desiredEndpoints, sliceEndpoints } from './desired.ts';
import { planStatus } from './status.ts';

const xb = { name: 'db', namespace: 'team', uid: 'xb-uid' };
const deny = denyListJudge(new DenyList(defaultDeniedCidrs));
const t = { healthyThreshold: 2, unhealthyThreshold: 3 };
const down = (at = 1): AddressHealth =>
  [false, false, false].reduce((h, ok) => observe(h, ok, t, at, 'ECONNREFUSED'), initialHealth(0));
/** Healthy since `at` (ms). */
const up = (at = 1): AddressHealth => observe(initialHealth(0), true, t, at);

const p1 = '198.51.100.1';
const p2 = '198.51.100.2';
const b1 = '203.0.113.1';
const b2 = '203.0.113.2';

const spec = (s: Partial<ExternalBackendSpecInput> = {}) =>
  externalBackendSpec.parse({
    ports: [{ name: 'p', port: 5432 }],
    addresses: [{ ip: p1 }, { ip: p2 }],
    backup: { addresses: [{ ip: b1 }, { ip: b2 }] },
    healthCheck: { tcp: { port: 'p' }, intervalSeconds: 10, healthyThreshold: 2 },
    ...s,
  });

const views = (
  s: ReturnType<typeof spec>,
  health: Record<string, AddressHealth>,
  ctx: { wasActive?: boolean; now?: number; readyPods?: number } = {},
) =>
  addressViews(
    s,
    new Map(Object.entries(health)),
    deny,
    undefined,
    candidateAddresses({ spec: s, resolutions: noResolutions }),
    { readyPods: ctx.readyPods ?? 0, wasActive: ctx.wasActive ?? false, now: ctx.now ?? 1 },
  );

const published = (v: ReturnType<typeof views>) =>
  v.views.filter(isPublished).map((x) => [x.ip, x.ready]);

describe('decideBackups', () => {
  const base: BackupInput = {
    minReadyPrimaries: 1,
    primaries: [],
    readyPods: 0,
    wasActive: false,
    now: 100_000,
    settleMs: 20_000,
  };
  const ready = (since?: number) => ({ ready: true, readySince: since });
  const notReady = { ready: false };
  const cases: [string, Partial<BackupInput>, { active: boolean; handBackInMs?: number }][] = [
    ['one ready primary of two: stand by', { primaries: [ready(0), notReady] }, { active: false }],
    ['no ready primary: take over', { primaries: [notReady, notReady] }, { active: true }],
    ['no primary at all (names not resolved): take over', { primaries: [] }, { active: true }],
    [
      'a primary ready only because not checked yet counts: stand by',
      { primaries: [ready(undefined), notReady] },
      { active: false },
    ],
    [
      'minReadyPrimaries 2, one ready address and one ready pod: stand by',
      { minReadyPrimaries: 2, primaries: [ready(0), notReady], readyPods: 1 },
      { active: false },
    ],
    [
      'minReadyPrimaries 2, one ready: take over',
      { minReadyPrimaries: 2, primaries: [ready(0), notReady] },
      { active: true },
    ],
    [
      'active, a primary ready for 5 s of 20: stay 15 s more',
      { wasActive: true, primaries: [ready(95_000), notReady] },
      { active: true, handBackInMs: 15_000 },
    ],
    [
      'active, a primary ready for 20 s: hand back',
      { wasActive: true, primaries: [ready(80_000), notReady] },
      { active: false },
    ],
    [
      'active, a primary ready but never checked: stay, no time to wait for',
      { wasActive: true, primaries: [ready(undefined)] },
      { active: true },
    ],
    [
      'active, a ready pod counts as settled: hand back',
      { wasActive: true, primaries: [notReady], readyPods: 1 },
      { active: false },
    ],
    [
      'active, minReadyPrimaries 2, two recovering: wait for the later one',
      { wasActive: true, minReadyPrimaries: 2, primaries: [ready(99_000), ready(90_000)] },
      { active: true, handBackInMs: 19_000 },
    ],
    [
      'active, minReadyPrimaries 2, one settled and one recovering: wait for the one',
      { wasActive: true, minReadyPrimaries: 2, primaries: [ready(99_000), ready(10_000)] },
      { active: true, handBackInMs: 19_000 },
    ],
    [
      'active and primaries fail again while recovering: stay, nothing to wait for',
      { wasActive: true, primaries: [notReady, notReady] },
      { active: true },
    ],
    [
      'without a health check (settle 0) a primary back from drain hands back at once',
      { wasActive: true, settleMs: 0, primaries: [ready(0)] },
      { active: false },
    ],
  ];
  it.each(cases)('%s', (_name, input, want) => {
    const d = decideBackups({ ...base, ...input });
    expect({
      active: d.active,
      ...(d.handBackInMs !== undefined ? { handBackInMs: d.handBackInMs } : {}),
    }).toEqual(want);
  });
});

describe('addressViews with backups', () => {
  it('keeps backups on standby, unpublished, while primaries are ready', () => {
    const v = views(spec(), { [p1]: up(), [p2]: down(), [b1]: up(), [b2]: up() });
    expect(v.backups?.active).toBe(false);
    expect(published(v)).toEqual([
      [p1, true],
      [p2, false],
    ]);
    expect(v.views.filter((x) => x.standby === true).map((x) => [x.ip, x.ready])).toEqual([
      [b1, false],
      [b2, false],
    ]);
    expect(publishedCounts(v.views, [])).toEqual({ ready: 1, total: 2 });
    const ep = desiredEndpoints(xb, spec(), v.views);
    const ips = (ep.subsets ?? []).flatMap((s) =>
      [...(s.addresses ?? []), ...(s.notReadyAddresses ?? [])].map((a) => a.ip),
    );
    expect(ips.sort()).toEqual([p1, p2]);
    const slice = [...sliceEndpoints(v.views).values()].flat().flatMap((e) => e.addresses);
    expect(slice.sort()).toEqual([p1, p2]);
  });

  it('publishes backups when no primary is ready, without failing open', () => {
    const v = views(spec(), { [p1]: down(), [p2]: down(), [b1]: up(), [b2]: down() });
    expect(v.backups?.active).toBe(true);
    expect(v.failOpen).toBe(false);
    expect(published(v)).toEqual([
      [p1, false],
      [p2, false],
      [b1, true],
      [b2, false],
    ]);
  });

  it('fails open over primaries and published backups together when all of them fail', () => {
    const v = views(spec(), { [p1]: down(), [p2]: down(), [b1]: down(), [b2]: down() });
    expect(v.backups?.active).toBe(true);
    expect(v.failOpen).toBe(true);
    expect(published(v).every(([, ready]) => ready)).toBe(true);
    expect(published(v)).toHaveLength(4);
  });

  it('never fails open for backups on standby: a healthy primary is enough', () => {
    const v = views(spec(), { [p1]: up(), [p2]: down(), [b1]: down(), [b2]: down() });
    expect(v.failOpen).toBe(false);
    expect(published(v)).toEqual([
      [p1, true],
      [p2, false],
    ]);
  });

  it('counts a draining primary as not ready, and publishes a draining backup draining', () => {
    const s = spec({
      addresses: [{ ip: p1, drain: true }],
      backup: { addresses: [{ ip: b1 }, { ip: b2, drain: true }] },
    });
    const v = views(s, { [p1]: up(), [b1]: up(), [b2]: up() });
    expect(v.backups?.active).toBe(true);
    expect(
      v.views.filter(isPublished).map((x) => [x.ip, x.ready, x.draining === true, x.serving]),
    ).toEqual([
      [p1, false, true, true],
      [b1, true, false, undefined],
      [b2, false, true, true],
    ]);
  });

  it('counts primaries not checked yet as ready: a new backend does not start on its backups', () => {
    const v = views(spec(), {});
    expect(v.backups?.active).toBe(false);
    expect(published(v)).toEqual([
      [p1, true],
      [p2, true],
    ]);
  });

  it('leaves a denied backup denied, and an IP listed as both a primary', () => {
    const s = spec({
      backup: { addresses: [{ ip: '10.96.0.1' }, { ip: p1 }] },
    });
    const judge = (ip: string) => (ip === '10.96.0.1' ? 'denied: cluster range' : undefined);
    const v = addressViews(
      s,
      new Map([
        [p1, down()],
        [p2, down()],
      ]),
      judge,
      undefined,
      candidateAddresses({ spec: s, resolutions: noResolutions }),
      { readyPods: 0, wasActive: false, now: 1 },
    );
    expect(v.views.map((x) => [x.ip, x.state, x.backup === true])).toEqual([
      [p1, 'Unhealthy', false],
      [p2, 'Unhealthy', false],
      ['10.96.0.1', 'Denied', true],
    ]);
    // Active, but nothing to publish: the primaries fail open.
    expect(v.backups?.active).toBe(true);
    expect(v.failOpen).toBe(true);
  });

  it('holds backups after the primaries recover until they have been ready for healthyThreshold checks', () => {
    // healthyThreshold 2 × intervalSeconds 10: 20 s.
    const health = { [p1]: up(100_000), [p2]: down(), [b1]: up(), [b2]: up() };
    const early = views(spec(), health, { wasActive: true, now: 110_000 });
    expect(early.backups).toMatchObject({ active: true, handBackInMs: 10_000 });
    expect(published(early)).toEqual([
      [p1, true],
      [p2, false],
      [b1, true],
      [b2, true],
    ]);
    const later = views(spec(), health, { wasActive: true, now: 120_000 });
    expect(later.backups?.active).toBe(false);
    expect(published(later)).toEqual([
      [p1, true],
      [p2, false],
    ]);
    // Without the last status saying backups were published, nothing holds them.
    expect(views(spec(), health, { wasActive: false, now: 110_000 }).backups?.active).toBe(false);
  });

  it('publishes backup DNS names only while needed, and a name is a primary or a backup', () => {
    const resolutions = new Map<string, Resolution>([
      [
        'db-b.example.com',
        {
          name: 'db-b.example.com',
          state: 'Resolved',
          ips: [b1],
          resolvedAt: 1,
          leftOut: 0,
          failures: 0,
        },
      ],
    ]);
    const s = spec({ backup: { dnsNames: [{ name: 'db-b.example.com' }] } });
    const cands = candidateAddresses({ spec: s, resolutions });
    expect(cands.map((c) => [c.ip, c.dnsName, c.backup])).toEqual([
      [p1, undefined, undefined],
      [p2, undefined, undefined],
      [b1, 'db-b.example.com', true],
    ]);
    expect(
      externalBackendSpec.safeParse({
        ports: [{ name: 'p', port: 1 }],
        dnsNames: [{ name: 'a.example.com' }],
        backup: { dnsNames: [{ name: 'b.example.com' }] },
      }).success,
    ).toBe(true);
  });
});

describe('BackupActive and its Events', () => {
  const now = new Date(200_000);
  const statusOf = (s: ReturnType<typeof spec>, v: ReturnType<typeof views>, previous?: never) =>
    planStatus({
      generation: 1,
      previous,
      now,
      views: v.views,
      counts: publishedCounts(v.views, []),
      failOpen: v.failOpen,
      backups: v.backups,
    });

  it('says when backups take over and when they hand back, once each', () => {
    const s = spec();
    const standby = statusOf(s, views(s, { [p1]: up(), [p2]: up() }));
    expect(standby.status?.conditions?.find((c) => c.type === 'BackupActive')).toMatchObject({
      status: 'False',
      reason: 'PrimariesReady',
    });
    expect(standby.events.map((e) => e.reason)).not.toContain('BackupsHandedBack');
    expect(standby.status?.addresses?.find((a) => a.ip === b1)).toMatchObject({
      backup: true,
      standby: true,
      ready: false,
    });

    const downViews = views(s, { [p1]: down(), [p2]: down(), [b1]: up(), [b2]: up() });
    const took = planStatus({
      generation: 1,
      previous: standby.status,
      now,
      views: downViews.views,
      counts: publishedCounts(downViews.views, []),
      failOpen: downViews.failOpen,
      backups: downViews.backups,
    });
    const active = took.status?.conditions?.find((c) => c.type === 'BackupActive');
    expect(active).toMatchObject({ status: 'True', reason: 'PrimariesNotReady' });
    expect(active?.message).toContain(`backups published: ${b1}, ${b2}`);
    expect(took.events.find((e) => e.reason === 'BackupsTookOver')).toMatchObject({
      type: 'Warning',
    });
    expect(took.status?.conditions?.find((c) => c.type === 'Ready')?.message).toContain(
      'backups published (0 primaries ready, minReadyPrimaries 1)',
    );

    const backViews = views(
      s,
      { [p1]: up(0), [p2]: up(0), [b1]: up(), [b2]: up() },
      {
        wasActive: true,
        now: 200_000,
      },
    );
    const back = planStatus({
      generation: 1,
      previous: took.status,
      now,
      views: backViews.views,
      counts: publishedCounts(backViews.views, []),
      failOpen: backViews.failOpen,
      backups: backViews.backups,
    });
    expect(back.events.find((e) => e.reason === 'BackupsHandedBack')).toMatchObject({
      type: 'Normal',
    });
    expect(back.events.map((e) => e.reason)).not.toContain('BackupsTookOver');
  });

  it('has no BackupActive condition on a backend without backups', () => {
    const s = spec({ backup: undefined });
    const v = views(s, { [p1]: up() });
    expect(v.backups).toBeUndefined();
    expect(statusOf(s, v).status?.conditions?.map((c) => c.type)).toEqual(['Ready']);
  });

  it('names at most three backups in its message', () => {
    const c = backupCondition({ active: true, readyPrimaries: 0, minReadyPrimaries: 1 }, [
      'a',
      'b',
      'c',
      'd',
      'e',
    ]);
    expect(c.message).toBe(
      '0 primaries ready, fewer than minReadyPrimaries 1; backups published: a, b, c and 2 more',
    );
  });
});
