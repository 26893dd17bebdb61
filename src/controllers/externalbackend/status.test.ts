import { describe, expect, it } from '@jest/globals';
import type { AddressView } from './addresses.ts';
import { addressTransitions, transitionEvents, type Transition } from './statusevents.ts';
import { buildStatus, parseStatus, planStatus, setCondition, statusEqual } from './status.ts';
import { readyCondition } from './ready.ts';

const view = (
  ip: string,
  state: AddressView['state'],
  ready: boolean,
  message = '',
): AddressView => ({
  ip,
  state,
  ready,
  message,
});
const t0 = new Date('2026-11-22T10:00:00Z');
const t1 = new Date('2026-11-22T10:05:00Z');

describe('readyCondition', () => {
  const healthy = [view('192.0.2.10', 'Healthy', true), view('192.0.2.11', 'Healthy', true)];

  it('is True with the ready count when something is published ready', () => {
    expect(
      readyCondition({ views: healthy, counts: { ready: 2, total: 2 }, failOpen: false }),
    ).toEqual({ status: 'True', reason: 'AddressesReady', message: '2/2 endpoints ready' });
  });

  it('names unhealthy and denied addresses in the message', () => {
    const views = [
      view('192.0.2.10', 'Healthy', true),
      view('192.0.2.11', 'Unhealthy', false, 'ECONNREFUSED'),
      view('10.0.0.1', 'Denied', false),
    ];
    expect(readyCondition({ views, counts: { ready: 1, total: 2 }, failOpen: false }).message).toBe(
      '1/2 endpoints ready; unhealthy: 192.0.2.11 (ECONNREFUSED); denied, not published: 10.0.0.1',
    );
  });

  it('has a reason for every way to be False; a problem outranks health', () => {
    const down = [view('192.0.2.10', 'Unhealthy', true, 'timeout')];
    expect(
      readyCondition({ views: down, counts: { ready: 1, total: 1 }, failOpen: true }),
    ).toMatchObject({
      status: 'False',
      reason: 'FailingOpen',
    });
    expect(
      readyCondition({ views: [], counts: { ready: 0, total: 0 }, failOpen: false }),
    ).toMatchObject({
      status: 'False',
      reason: 'NoReadyAddresses',
      message: '0/0 endpoints ready',
    });
    for (const reason of [
      'InvalidSpec',
      'PodSelectorDisabled',
      'ServiceNotFound',
      'ServiceHasSelector',
      'EndpointsConflict',
      'WriteFailed',
    ] as const) {
      expect(
        readyCondition({
          views: healthy,
          counts: { ready: 2, total: 2 },
          failOpen: false,
          problem: { reason, message: 'why' },
        }),
      ).toEqual({ status: 'False', reason, message: 'why' });
    }
  });

  it('shortens long lists of bad addresses', () => {
    const views = Array.from({ length: 5 }, (_, i) =>
      view(`192.0.2.${String(i)}`, 'Unhealthy', false),
    );
    expect(readyCondition({ views, counts: { ready: 0, total: 5 }, failOpen: false }).message).toBe(
      '0/5 endpoints ready; unhealthy: 192.0.2.0, 192.0.2.1, 192.0.2.2 and 2 more',
    );
  });
});

describe('setCondition', () => {
  const base = { type: 'Ready', observedGeneration: 1, reason: 'AddressesReady', message: 'm' };

  it('moves lastTransitionTime only when the status changes', () => {
    const first = setCondition(undefined, { ...base, status: 'True' }, t0);
    expect(first[0]?.lastTransitionTime).toBe(t0.toISOString());
    const same = setCondition(first, { ...base, status: 'True', message: 'other' }, t1);
    expect(same[0]).toMatchObject({ lastTransitionTime: t0.toISOString(), message: 'other' });
    const flipped = setCondition(
      same,
      { ...base, status: 'False', reason: 'NoReadyAddresses' },
      t1,
    );
    expect(flipped[0]?.lastTransitionTime).toBe(t1.toISOString());
    expect(flipped).toHaveLength(1);
  });
});

describe('buildStatus', () => {
  const input = {
    generation: 3,
    previous: undefined,
    views: [view('192.0.2.10', 'Healthy', true), view('192.0.2.11', 'Unknown', true)],
    counts: { ready: 2, total: 2 },
    failOpen: false,
    now: t0,
  };

  it('reports generation, counts, per-address state and the Ready condition', () => {
    const s = buildStatus(input);
    expect(s).toEqual({
      observedGeneration: 3,
      readyAddresses: 2,
      totalAddresses: 2,
      addressSummary: '2/2',
      addresses: [
        { ip: '192.0.2.10', ready: true, state: 'Healthy', lastTransitionTime: t0.toISOString() },
        {
          ip: '192.0.2.11',
          ready: true,
          state: 'Unknown',
          lastTransitionTime: t0.toISOString(),
          message: 'not checked yet',
        },
      ],
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'AddressesReady',
          message: '2/2 endpoints ready',
          observedGeneration: 3,
          lastTransitionTime: t0.toISOString(),
        },
      ],
    });
  });

  it('is stable: the same inputs later give an equal status, so nothing is written', () => {
    const first = buildStatus(input);
    expect(statusEqual(buildStatus({ ...input, previous: first, now: t1 }), first)).toBe(true);
  });

  it('equals the same status read back from the API server, whose keys come in another order', () => {
    const first = buildStatus(input);
    // The API server returns an object's keys sorted; parseStatus then orders them by the schema.
    const sortKeys = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(sortKeys)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .sort(([x], [y]) => x.localeCompare(y))
                .map(([k, x]) => [k, sortKeys(x)]),
            )
          : v;
    const readBack = parseStatus(JSON.parse(JSON.stringify(sortKeys(first))));
    expect(JSON.stringify(readBack)).not.toBe(JSON.stringify(first));
    expect(statusEqual(buildStatus({ ...input, previous: readBack, now: t1 }), readBack)).toBe(
      true,
    );
  });

  it('keeps an address transition time until its state changes', () => {
    const first = buildStatus(input);
    const later = buildStatus({
      ...input,
      previous: first,
      now: t1,
      views: [
        view('192.0.2.10', 'Healthy', true),
        view('192.0.2.11', 'Unhealthy', false, 'EHOSTUNREACH'),
      ],
      counts: { ready: 1, total: 2 },
    });
    expect(later.addresses?.[0]?.lastTransitionTime).toBe(t0.toISOString());
    expect(later.addresses?.[1]).toMatchObject({
      lastTransitionTime: t1.toISOString(),
      message: 'health check failing: EHOSTUNREACH',
    });
    expect(statusEqual(later, first)).toBe(false);
  });
});

describe('parseStatus', () => {
  it('reads a stored status and ignores one of the wrong shape', () => {
    expect(parseStatus({ observedGeneration: 2 })).toEqual({ observedGeneration: 2 });
    expect(parseStatus(undefined)).toEqual({});
    expect(parseStatus({ observedGeneration: 'two' })).toBeUndefined();
  });
});

describe('addressTransitions', () => {
  const prev = buildStatus({
    generation: 1,
    previous: undefined,
    views: [view('192.0.2.10', 'Healthy', true), view('192.0.2.11', 'Unhealthy', false, 'x')],
    counts: { ready: 1, total: 2 },
    failOpen: false,
    now: t0,
  });

  it('reports failures and recoveries, not first checks', () => {
    expect(
      addressTransitions(
        prev,
        [
          view('192.0.2.10', 'Unhealthy', false, 'ECONNREFUSED'),
          view('192.0.2.11', 'Healthy', true),
        ],
        false,
      ).map((t) => [t.ip, t.type, t.reason, t.message]),
    ).toEqual([
      [
        '192.0.2.10',
        'Warning',
        'AddressUnhealthy',
        '192.0.2.10 failed its health check (ECONNREFUSED); removed from the ready set',
      ],
      [
        '192.0.2.11',
        'Normal',
        'AddressHealthy',
        '192.0.2.11 passes its health check again; back in the ready set',
      ],
    ]);
    expect(addressTransitions(undefined, [view('192.0.2.12', 'Healthy', true)], false)).toEqual([]);
  });

  it('says when failing open keeps an unhealthy address published, and reports denials once', () => {
    const [t] = addressTransitions(
      undefined,
      [view('192.0.2.10', 'Unhealthy', true, 'timeout')],
      true,
    );
    expect(t?.message).toContain(
      'still published because every address fails and failOpen is true',
    );
    const denied = [
      view('10.0.0.1', 'Denied', false, 'denied: in 10.0.0.0/8 (--denied-cidrs); not published'),
    ];
    expect(addressTransitions(undefined, denied, false).map((x) => x.reason)).toEqual([
      'AddressDenied',
    ]);
    const after = buildStatus({
      generation: 1,
      previous: undefined,
      views: denied,
      counts: { ready: 0, total: 0 },
      failOpen: false,
      now: t0,
    });
    expect(addressTransitions(after, denied, false)).toEqual([]);
  });
});

describe('transitionEvents', () => {
  const t = (ip: string, reason: Transition['reason'], detail = ''): Transition => ({
    ip,
    from: 'Healthy',
    to:
      reason === 'AddressHealthy' ? 'Healthy' : reason === 'AddressDenied' ? 'Denied' : 'Unhealthy',
    type: reason === 'AddressHealthy' ? 'Normal' : 'Warning',
    reason,
    message: `${ip} single`,
    detail,
    outcome: 'removed from the ready set',
  });

  it('keeps a lone transition as it is', () => {
    expect(transitionEvents([t('192.0.2.1', 'AddressUnhealthy', 'ECONNREFUSED')])).toEqual([
      { type: 'Warning', reason: 'AddressUnhealthy', message: '192.0.2.1 single' },
    ]);
  });

  it('makes one Event per reason that names the addresses, up to ten', () => {
    const many = Array.from({ length: 25 }, (_, i) =>
      t(`192.0.2.${String(i + 1)}`, 'AddressDenied', 'in 192.0.2.0/24 (policy)'),
    );
    const events = transitionEvents([
      ...many,
      t('198.51.100.1', 'AddressUnhealthy', 'ECONNREFUSED'),
      t('198.51.100.2', 'AddressUnhealthy', 'no connection within 1000 ms'),
    ]);
    expect(events).toHaveLength(2);
    expect(events[0]?.reason).toBe('AddressDenied');
    expect(events[0]?.message).toMatch(
      /^25 addresses are denied and not published: 192\.0\.2\.1 \(in 192\.0\.2\.0\/24 \(policy\)\), .* and 15 more$/,
    );
    expect(events[1]).toEqual({
      type: 'Warning',
      reason: 'AddressUnhealthy',
      message:
        '2 addresses failed their health check; removed from the ready set: 198.51.100.1 (ECONNREFUSED), 198.51.100.2 (no connection within 1000 ms)',
    });
  });
});

describe('status of DNS names', () => {
  const resolved = (ips: string[], at: number) => ({
    name: 'db.example.com',
    state: 'Resolved' as const,
    ips,
    leftOut: 0,
    resolvedAt: at,
    ttlSeconds: 30,
    failures: 0,
  });
  const input = (
    names: Parameters<typeof planStatus>[0]['names'],
    previous?: ReturnType<typeof planStatus>['status'],
  ) => ({
    generation: 1,
    previous,
    views: [],
    counts: { ready: 0, total: 0 },
    failOpen: false,
    names,
    now: t1,
  });

  it('shows each name, its addresses, TTL and when it was resolved; a first answer is quiet', () => {
    const r = planStatus(input([resolved(['192.0.2.1'], t0.getTime())]));
    expect(r.status?.dnsNames).toEqual([
      {
        name: 'db.example.com',
        state: 'Resolved',
        addresses: ['192.0.2.1'],
        ttlSeconds: 30,
        resolvedAt: t0.toISOString(),
      },
    ]);
    expect(r.events.filter((e) => e.reason.startsWith('DNS'))).toEqual([]);
  });

  it('says when the answer changes, when lookups start failing, and when the answer is withdrawn', () => {
    const first = planStatus(input([resolved(['192.0.2.1'], t0.getTime())])).status;
    const changed = planStatus(input([resolved(['192.0.2.2'], t1.getTime())], first));
    expect(changed.events).toContainEqual({
      type: 'Normal',
      reason: 'DNSAnswerChanged',
      message: 'db.example.com resolves to 192.0.2.2 (was 192.0.2.1)',
    });
    const stale = planStatus(
      input(
        [
          {
            ...resolved(['192.0.2.2'], t1.getTime()),
            state: 'Stale',
            keptUntil: t1.getTime() + 600_000,
            error: 'A lookup: ETIMEOUT',
            failures: 1,
          },
        ],
        changed.status,
      ),
    );
    expect(stale.status?.dnsNames?.[0]?.message).toBe(
      `lookups fail (A lookup: ETIMEOUT); the last answer (${t1.toISOString()}) stays published until 2026-11-22T10:15:00.000Z`,
    );
    expect(stale.events.map((e) => e.reason)).toContain('DNSLookupFailed');
    const failed = planStatus(
      input(
        [
          {
            name: 'db.example.com',
            state: 'Failed',
            ips: [],
            leftOut: 0,
            error: 'A lookup: ETIMEOUT',
            failures: 9,
          },
        ],
        stale.status,
      ),
    );
    expect(failed.events).toContainEqual({
      type: 'Warning',
      reason: 'DNSLookupFailed',
      message:
        'db.example.com: lookups fail (A lookup: ETIMEOUT); nothing of this name is published',
    });
    expect(failed.status?.conditions?.[0]?.message).toContain(
      'DNS lookups failing: db.example.com (no addresses)',
    );
  });
});

describe('AddressPolicyFrozen', () => {
  const base = {
    generation: 1,
    previous: undefined,
    views: [view('192.0.2.10', 'Healthy', true)],
    counts: { ready: 1, total: 1 },
    failOpen: false,
    now: t0,
  };
  const frozen = (s: ReturnType<typeof buildStatus> | undefined) =>
    s?.conditions?.find((c) => c.type === 'AddressPolicyFrozen');

  it('is left out until a freeze is first seen', () => {
    expect(frozen(buildStatus(base))).toBeUndefined();
    expect(planStatus(base).events).toEqual([]);
  });

  it('turns True with a Warning while frozen, and False with a Normal Event when the grants are back', () => {
    const during = planStatus({ ...base, policyFrozen: 'there is no ExternalBackendPolicy' });
    expect(frozen(during.status)).toMatchObject({ status: 'True', reason: 'GrantsMissing' });
    expect(during.status?.conditions?.find((c) => c.type === 'Ready')?.message).toContain(
      'address policy frozen (there is no ExternalBackendPolicy)',
    );
    expect(during.events.map((e) => [e.type, e.reason])).toEqual([
      ['Warning', 'AddressPolicyFrozen'],
    ]);
    // Still frozen a moment later: no second Event, no status write.
    const again = planStatus({
      ...base,
      previous: during.status,
      now: t1,
      policyFrozen: 'there is no ExternalBackendPolicy',
    });
    expect(again.events).toEqual([]);
    expect(again.status).toBeUndefined();
    const after = planStatus({ ...base, previous: during.status, now: t1 });
    expect(frozen(after.status)).toMatchObject({
      status: 'False',
      reason: 'GrantsRead',
      lastTransitionTime: t1.toISOString(),
    });
    expect(after.events.map((e) => [e.type, e.reason])).toEqual([
      ['Normal', 'AddressPolicyResumed'],
    ]);
  });
});

describe('NodeAddressesGranted', () => {
  const base = {
    generation: 1,
    previous: undefined,
    views: [view('172.18.0.3', 'Healthy', true)],
    counts: { ready: 1, total: 1 },
    failOpen: false,
    now: t0,
  };
  const granted = (s: ReturnType<typeof buildStatus> | undefined) =>
    s?.conditions?.find((c) => c.type === 'NodeAddressesGranted');
  const grants = [
    {
      ip: '172.18.0.3',
      grant: 'address of Node worker-1, by ExternalBackendPolicy rule etcd/members',
    },
  ];

  it('is left out while no Node address is published', () => {
    expect(granted(buildStatus(base))).toBeUndefined();
    expect(planStatus(base).events).toEqual([]);
  });

  it('names each granted address and its rule, with one Event per change, not per reconcile', () => {
    const first = planStatus({ ...base, nodeGrants: grants });
    expect(granted(first.status)).toMatchObject({
      status: 'True',
      reason: 'GrantedByPolicy',
      message:
        "Node addresses published by grant, never on the API server's port: 172.18.0.3 (address of Node worker-1, by ExternalBackendPolicy rule etcd/members)",
    });
    expect(first.events.map((e) => [e.type, e.reason])).toEqual([
      ['Normal', 'NodeAddressesGranted'],
    ]);
    const again = planStatus({ ...base, previous: first.status, now: t1, nodeGrants: grants });
    expect(again.events).toEqual([]);
    expect(again.status).toBeUndefined();
    const other = planStatus({
      ...base,
      previous: first.status,
      now: t1,
      nodeGrants: [
        {
          ...grants[0],
          ip: '172.18.0.3',
          grant: 'address of Node worker-1, by ExternalBackendPolicy rule etcd/other',
        },
      ],
    });
    expect(other.events.map((e) => e.reason)).toEqual(['NodeAddressesGranted']);
    const gone = planStatus({ ...base, previous: first.status, now: t1 });
    expect(granted(gone.status)).toBeUndefined();
    expect(gone.events).toEqual([]);
  });
});

describe('a health check that cannot run', () => {
  const input = (
    checkRefused: string | undefined,
    previous?: ReturnType<typeof planStatus>['status'],
  ) => ({
    generation: 1,
    previous,
    views: [],
    counts: { ready: 0, total: 0 },
    failOpen: false,
    checkRefused,
    now: t1,
  });
  const why = 'caBundle: Secret ca cannot be read: outrigger may not read Secrets in namespace a';

  it('says so once in an Event, and again only when the reason changes', () => {
    const first = planStatus(input(why));
    expect(first.events).toContainEqual({
      type: 'Warning',
      reason: 'HealthCheckCannotRun',
      message: `health check cannot run: ${why}`,
    });
    expect(first.status?.conditions?.find((c) => c.type === 'Ready')?.message).toContain(why);
    const again = planStatus(input(why, first.status));
    expect(again.events.filter((e) => e.reason === 'HealthCheckCannotRun')).toEqual([]);
    const other = planStatus(input(`${why} (changed)`, first.status));
    expect(other.events.map((e) => e.reason)).toContain('HealthCheckCannotRun');
    expect(planStatus(input(undefined, first.status)).events.map((e) => e.reason)).not.toContain(
      'HealthCheckCannotRun',
    );
  });
});
