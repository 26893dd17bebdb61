import {
  labelServiceName,
  labelSkipMirror,
  labelSliceManagedBy,
  managerName,
} from '../../api/names.ts';
import { describe, expect, it } from '@jest/globals';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { initialHealth, observe, type AddressHealth } from '../../health/state.ts';
import { DenyList, defaultDeniedCidrs } from '../../net/denylist.ts';
import { addressViews, denyListJudge, publishedAddresses, publishedCounts } from './addresses.ts';
import { decideService } from './service.ts';
import {
  desiredEndpoints,
  desiredSlices,
  endpointsUpToDate,
  podSubsets,
  planBackendSlices,
  sliceEndpoints,
} from './desired.ts';
import { ownership } from './owner.ts';
import { pod, svc } from '../../endpoints/fixtures.test-helpers.ts';
import { externalBackendSpec, type ExternalBackendSpecInput } from '../../api/externalbackend.ts';
import { candidateAddresses, noResolutions } from '../../sources/index.ts';

const xb = { name: 'etcd-k8s', namespace: 'kube-system', uid: 'xb-uid' };
const spec = (s: Partial<ExternalBackendSpecInput> = {}) =>
  externalBackendSpec.parse({
    ports: [{ name: 'port', port: 2379 }],
    addresses: [
      { ip: '192.0.2.10', nodeName: 'etc-master1' },
      { ip: '192.0.2.11', nodeName: 'etc-master2' },
      { ip: '192.0.2.12', nodeName: 'etc-master3' },
    ],
    ...s,
  });
const deny = denyListJudge(new DenyList(defaultDeniedCidrs));
const t = { healthyThreshold: 2, unhealthyThreshold: 3 };
const down = (): AddressHealth =>
  [false, false, false].reduce((h, ok) => observe(h, ok, t, 1, 'ECONNREFUSED'), initialHealth(0));
const up = (): AddressHealth => observe(initialHealth(0), true, t, 1);

describe('decideService', () => {
  it('creates and owns a selectorless Service when none exists', () => {
    const d = decideService(xb, spec(), undefined);
    expect(d.action).toBe('create');
    if (d.action !== 'create') return;
    expect(d.service.spec?.selector).toBeUndefined();
    expect(d.service.spec?.ports).toEqual([
      { name: 'port', port: 2379, targetPort: 2379, protocol: 'TCP' },
    ]);
    expect(d.service.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'ExternalBackend',
      uid: 'xb-uid',
      controller: true,
    });
  });

  it('asks for a headless Service when clusterIP is None', () => {
    const d = decideService(xb, spec({ service: { clusterIP: 'None' } }), undefined);
    expect(d.action === 'create' && d.service.spec?.clusterIP).toBe('None');
  });

  it('refuses to create when create is false, and refuses a Service with a selector', () => {
    expect(decideService(xb, spec({ service: { create: false } }), undefined)).toMatchObject({
      action: 'refuse',
      reason: 'ServiceNotFound',
    });
    const withSelector: V1Service = {
      metadata: { name: 'etcd-k8s' },
      spec: { selector: { app: 'etcd' } },
    };
    expect(decideService(xb, spec(), withSelector)).toMatchObject({
      action: 'refuse',
      reason: 'ServiceHasSelector',
    });
  });

  it('adopts an existing selectorless Service without touching it', () => {
    const existing: V1Service = { metadata: { name: 'etcd-k8s' }, spec: { ports: [{ port: 1 }] } };
    expect(decideService(xb, spec(), existing)).toEqual({ action: 'none', adopted: true });
  });

  it('updates the ports of a Service it owns, and leaves it alone when they match', () => {
    const first = decideService(xb, spec(), undefined);
    if (first.action !== 'create') throw new Error('expected create');
    expect(decideService(xb, spec(), first.service)).toEqual({ action: 'none', adopted: false });
    const changed = decideService(
      xb,
      spec({ ports: [{ name: 'port', port: 2380 }] }),
      first.service,
    );
    expect(changed.action === 'update' && changed.ports[0]?.port).toBe(2380);
  });
});

describe('addressViews', () => {
  it('publishes every address as ready without a health check', () => {
    const { views, failOpen } = addressViews(spec(), new Map(), deny);
    expect(views.map((v) => [v.ip, v.ready, v.state])).toEqual([
      ['192.0.2.10', true, 'Healthy'],
      ['192.0.2.11', true, 'Healthy'],
      ['192.0.2.12', true, 'Healthy'],
    ]);
    expect(failOpen).toBe(false);
  });

  it('marks unhealthy addresses not ready, and unknown ones ready', () => {
    const s = spec({ healthCheck: { tcp: { port: 'port' } } });
    const health = new Map([
      ['192.0.2.10', up()],
      ['192.0.2.11', down()],
    ]);
    const { views } = addressViews(s, health, deny);
    expect(views.map((v) => [v.state, v.ready])).toEqual([
      ['Healthy', true],
      ['Unhealthy', false],
      ['Unknown', true],
    ]);
    expect(views[1]?.message).toBe('ECONNREFUSED');
  });

  it('fails open when every address is unhealthy, and not when failOpen is off', () => {
    const health = new Map(['192.0.2.10', '192.0.2.11', '192.0.2.12'].map((ip) => [ip, down()]));
    const open = addressViews(spec({ healthCheck: { tcp: { port: 'port' } } }), health, deny);
    expect(open.failOpen).toBe(true);
    expect(open.views.every((v) => v.ready && v.state === 'Unhealthy')).toBe(true);
    const closed = addressViews(
      spec({ healthCheck: { tcp: { port: 'port' }, failOpen: false } }),
      health,
      deny,
    );
    expect(closed.failOpen).toBe(false);
    expect(closed.views.some((v) => v.ready)).toBe(false);
  });

  it('fails open when none passes though some are not checked yet (an address added while the prober is cut off)', () => {
    const hc = spec({ healthCheck: { tcp: { port: 'port' } } });
    const unknownToo = new Map([
      ['192.0.2.10', down()],
      ['192.0.2.11', down()],
    ]);
    const open = addressViews(hc, unknownToo, deny);
    expect(open.failOpen).toBe(true);
    expect(open.views.map((v) => [v.state, v.ready])).toEqual([
      ['Unhealthy', true],
      ['Unhealthy', true],
      ['Unknown', true],
    ]);
    // One passing address is enough to publish only what passes.
    const oneUp = new Map([...unknownToo, ['192.0.2.12', up()]]);
    expect(addressViews(hc, oneUp, deny).failOpen).toBe(false);
    // Nothing checked yet: nothing fails, so no fail-open (all are ready as Unknown anyway).
    expect(addressViews(hc, new Map(), deny).failOpen).toBe(false);
  });

  it('never publishes a denied address, even failing open', () => {
    const s = spec({
      addresses: [{ ip: '10.96.0.1' }, { ip: '192.0.2.10' }],
      healthCheck: { tcp: { port: 'port' } },
    });
    const cluster = denyListJudge(new DenyList([...defaultDeniedCidrs, '10.96.0.0/12']));
    const { views } = addressViews(s, new Map([['192.0.2.10', down()]]), cluster);
    expect(views[0]).toMatchObject({
      state: 'Denied',
      ready: false,
      message: 'denied: in 10.96.0.0/12 (--denied-cidrs); not published',
    });
    expect(views[1]).toMatchObject({ state: 'Unhealthy', ready: true });
  });

  it('judges what a DNS name resolves to like a spec address: a name rebound to denied ranges publishes none of them', () => {
    const s = spec({ addresses: [], dnsNames: [{ name: 'db.example.com' }] });
    const answer = ['127.0.0.1', '169.254.169.254', '192.0.2.10'];
    const resolutions = new Map([
      [
        'db.example.com',
        {
          name: 'db.example.com',
          state: 'Resolved' as const,
          ips: answer,
          leftOut: 0,
          failures: 0,
        },
      ],
    ]);
    const { views } = addressViews(
      s,
      new Map(),
      deny,
      undefined,
      candidateAddresses({ spec: s, resolutions }),
    );
    expect(views.map((v) => [v.ip, v.dnsName, v.state, v.ready])).toEqual([
      ['127.0.0.1', 'db.example.com', 'Denied', false],
      ['169.254.169.254', 'db.example.com', 'Denied', false],
      ['192.0.2.10', 'db.example.com', 'Healthy', true],
    ]);
  });
});

describe('desiredEndpoints and desiredSlices', () => {
  const s = spec({
    addresses: [{ ip: '192.0.2.10', nodeName: 'n1' }, { ip: '2001:db8::10' }, { ip: '192.0.2.11' }],
  });
  const views = addressViews(s, new Map(), deny).views.map((v) =>
    v.ip === '192.0.2.11' ? { ...v, ready: false } : v,
  );

  it('writes skip-mirror Endpoints owned by the ExternalBackend', () => {
    const ep = desiredEndpoints(xb, s, views);
    expect(ep.metadata?.name).toBe('etcd-k8s');
    expect(ep.metadata?.labels?.[labelSkipMirror]).toBe('true');
    expect(ep.metadata?.ownerReferences?.[0]?.uid).toBe('xb-uid');
    expect(ep.subsets).toEqual([
      {
        addresses: [{ ip: '192.0.2.10', nodeName: 'n1' }, { ip: '2001:db8::10' }],
        notReadyAddresses: [{ ip: '192.0.2.11' }],
        ports: [{ name: 'port', port: 2379, protocol: 'TCP' }],
      },
    ]);
  });

  it('writes one EndpointSlice per address family with ready/serving/terminating', () => {
    const slices = desiredSlices(xb, s, views);
    expect(slices.map((x) => [x.metadata?.name, x.addressType, x.endpoints?.length])).toEqual([
      ['etcd-k8s-outrigger-ipv4', 'IPv4', 2],
      ['etcd-k8s-outrigger-ipv6', 'IPv6', 1],
    ]);
    expect(slices[0]?.metadata?.labels).toMatchObject({
      [labelServiceName]: 'etcd-k8s',
      [labelSliceManagedBy]: managerName,
    });
    expect(slices[0]?.endpoints?.[1]).toEqual({
      addresses: ['192.0.2.11'],
      conditions: { ready: false, serving: false, terminating: false },
    });
    expect(slices[0]?.ports).toEqual([{ name: 'port', port: 2379, protocol: 'TCP' }]);
  });

  it('has no subsets and no slices when nothing can be published', () => {
    const s2 = spec({ addresses: [{ ip: '10.96.0.1' }] });
    const v2 = addressViews(s2, new Map(), denyListJudge(new DenyList(['10.0.0.0/8']))).views;
    expect(desiredEndpoints(xb, s2, v2).subsets).toEqual([]);
    expect(desiredSlices(xb, s2, v2)).toEqual([]);
  });
});

describe('ownership', () => {
  it('tells ours from foreign and absent', () => {
    expect(ownership(undefined, xb)).toBe('absent');
    expect(
      ownership(
        {
          metadata: { ownerReferences: [{ apiVersion: 'v', kind: 'k', name: 'n', uid: 'xb-uid' }] },
        },
        xb,
      ),
    ).toBe('ours');
    expect(ownership({ metadata: { labels: { x: 'y' } } }, xb)).toBe('foreign');
  });
});

describe('pods selected by podSelector (hybrid backends)', () => {
  const hybrid = spec({
    ports: [{ name: 'http', port: 8080 }],
    addresses: [{ ip: '192.0.2.10' }],
    podSelector: { matchLabels: { app: 'web' } },
  });
  const service = svc('etcd-k8s', { selector: null, ns: 'kube-system' });
  const pods = [
    pod('web-1', { ns: 'kube-system', ips: ['10.0.0.1'] }),
    pod('web-2', { ns: 'kube-system', ips: ['10.0.0.2'], ready: false }),
    pod('web-3', { ns: 'kube-system', ips: ['10.0.0.3'], deleting: true }),
    pod('done', { ns: 'kube-system', ips: ['10.0.0.4'], phase: 'Succeeded' }),
    pod('db', { ns: 'kube-system', ips: ['10.0.0.5'], labels: { app: 'db' } }),
  ];

  it('follows the upstream readiness rules: ready, not ready, terminating and finished pods', () => {
    const subsets = podSubsets(hybrid, service, pods);
    expect(subsets).toHaveLength(1);
    expect(subsets[0]?.addresses?.map((a) => [a.ip, a.targetRef?.name])).toEqual([
      ['10.0.0.1', 'web-1'],
    ]);
    expect(subsets[0]?.notReadyAddresses?.map((a) => a.ip)).toEqual(['10.0.0.2']);
    expect(subsets[0]?.ports).toEqual([{ name: 'http', port: 8080, protocol: 'TCP' }]);
  });

  it('selects nothing without a podSelector', () => {
    expect(podSubsets(spec(), service, pods)).toEqual([]);
  });

  it('publishes pods next to addresses in the Endpoints and the slice, and counts both', () => {
    const views = addressViews(hybrid, new Map(), deny).views;
    const subsets = podSubsets(hybrid, service, pods);
    expect(publishedCounts(views, subsets)).toEqual({ ready: 2, total: 3 });
    const ep = desiredEndpoints(xb, hybrid, views, subsets);
    expect(ep.subsets?.[0]?.addresses?.map((a) => a.ip)).toEqual(['10.0.0.1', '192.0.2.10']);
    expect(ep.subsets?.[0]?.notReadyAddresses?.map((a) => a.ip)).toEqual(['10.0.0.2']);
    const [slice] = desiredSlices(xb, hybrid, views, subsets);
    expect(slice?.endpoints?.find((e) => e.addresses[0] === '10.0.0.1')).toEqual({
      addresses: ['10.0.0.1'],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: 'node-a',
      targetRef: { kind: 'Pod', namespace: 'kube-system', name: 'web-1', uid: 'uid-web-1' },
    });
  });

  it('spreads past 100 endpoints over slices, and truncates the Endpoints at 1000, ready first', () => {
    const many = Array.from({ length: 1001 }, (_, i) =>
      pod(`p${String(i)}`, {
        ns: 'kube-system',
        ips: [`10.1.${String(Math.floor(i / 250))}.${String(i % 250)}`],
        ready: i !== 0,
      }),
    );
    const subsets = podSubsets(hybrid, service, many);
    const slices = desiredSlices(xb, hybrid, [], subsets);
    expect(slices).toHaveLength(11);
    expect(slices.every((x) => (x.endpoints?.length ?? 0) <= 100)).toBe(true);
    expect(slices.flatMap((x) => x.endpoints ?? [])).toHaveLength(1001);
    expect(desiredSlices(xb, hybrid, [], subsets, 1000)).toHaveLength(2);
    const ep = desiredEndpoints(xb, hybrid, [], subsets);
    expect(ep.metadata?.annotations).toEqual({
      'endpoints.kubernetes.io/over-capacity': 'truncated',
    });
    expect(ep.subsets?.flatMap((x) => x.addresses ?? [])).toHaveLength(1000);
    expect(ep.subsets?.flatMap((x) => x.notReadyAddresses ?? [])).toHaveLength(0);
  });
});

describe('endpointsUpToDate and the slice plan against stored slices', () => {
  const s = spec();
  const views = addressViews(s, new Map(), deny).views;
  const ep = desiredEndpoints(xb, s, views);
  const [slice] = desiredSlices(xb, s, views);
  const planAgainst = (stored: V1EndpointSlice) =>
    planBackendSlices(xb, s, [stored], sliceEndpoints(views), 100);

  it('accept what the API server stores back, in any order, with labels others added', () => {
    const stored = {
      ...ep,
      metadata: { ...ep.metadata, labels: { ...ep.metadata?.labels, team: 'a' } },
      subsets: [
        { ...ep.subsets?.[0], addresses: [...(ep.subsets?.[0]?.addresses ?? [])].reverse() },
      ],
    };
    expect(endpointsUpToDate(stored, ep)).toBe(true);
    if (slice === undefined) throw new Error('no slice');
    expect(
      planAgainst({
        ...slice,
        metadata: { ...slice.metadata, labels: { ...slice.metadata?.labels, team: 'a' } },
        endpoints: [...(slice.endpoints ?? [])].reverse(),
      }),
    ).toEqual({ creates: [], updates: [], deletes: [] });
  });

  it('see a changed address, a lost label, a lost owner, or absence', () => {
    if (slice === undefined) throw new Error('no slice');
    expect(endpointsUpToDate(undefined, ep)).toBe(false);
    expect(endpointsUpToDate({ ...ep, subsets: [] }, ep)).toBe(false);
    expect(endpointsUpToDate({ ...ep, metadata: { ...ep.metadata, labels: {} } }, ep)).toBe(false);
    expect(
      endpointsUpToDate({ ...ep, metadata: { ...ep.metadata, ownerReferences: [] } }, ep),
    ).toBe(false);
    const flipped = (slice.endpoints ?? []).map((e, i) =>
      i === 0 ? { ...e, conditions: { ready: false, serving: false, terminating: false } } : e,
    );
    expect(planAgainst({ ...slice, endpoints: flipped }).updates).toHaveLength(1);
    expect(planAgainst({ ...slice, ports: [] }).updates).toHaveLength(1);
    expect(
      planAgainst({ ...slice, metadata: { ...slice.metadata, labels: {} } }).updates,
    ).toHaveLength(1);
  });
});

describe('zones', () => {
  const zoned = (s: Partial<ExternalBackendSpecInput>) => {
    const parsed = spec(s);
    return addressViews(
      parsed,
      new Map(),
      deny,
      undefined,
      candidateAddresses({ spec: parsed, resolutions: noResolutions }),
    ).views;
  };

  it('land in each endpoint, with a hint of its own zone when every endpoint has one', () => {
    const views = zoned({
      zone: 'zone-a',
      addresses: [{ ip: '192.0.2.10' }, { ip: '192.0.2.11', zone: 'zone-b' }],
    });
    expect(
      sliceEndpoints(views)
        .get('IPv4')
        ?.map((e) => [e.addresses[0], e.zone, e.hints]),
    ).toEqual([
      ['192.0.2.10', 'zone-a', { forZones: [{ name: 'zone-a' }] }],
      ['192.0.2.11', 'zone-b', { forZones: [{ name: 'zone-b' }] }],
    ]);
  });

  it('are hinted per family: an IPv6 address without a zone leaves the IPv4 hints alone', () => {
    const views = zoned({
      addresses: [{ ip: '192.0.2.10', zone: 'zone-a' }, { ip: '2001:db8::1' }],
    });
    const eps = sliceEndpoints(views);
    expect(eps.get('IPv4')?.[0]?.hints).toEqual({ forZones: [{ name: 'zone-a' }] });
    expect(eps.get('IPv6')?.[0]?.hints).toBeUndefined();
  });

  it('give no hints in a family where one endpoint has no zone (kube-proxy would ignore them)', () => {
    const views = zoned({
      addresses: [{ ip: '192.0.2.10', zone: 'zone-a' }, { ip: '192.0.2.11' }],
    });
    const eps = sliceEndpoints(views).get('IPv4') ?? [];
    expect(eps.map((e) => e.zone)).toEqual(['zone-a', undefined]);
    expect(eps.some((e) => e.hints !== undefined)).toBe(false);
  });

  it('are refused at run time when they are not label values', () => {
    expect(
      externalBackendSpec.safeParse({
        ports: [{ name: 'p', port: 1 }],
        addresses: [{ ip: '192.0.2.1', zone: 'zone a' }],
      }).success,
    ).toBe(false);
  });
});

describe('publishedAddresses', () => {
  const owner = {
    apiVersion: 'outrigger.dev/v1alpha1',
    kind: 'ExternalBackend',
    name: xb.name,
    uid: xb.uid,
  };
  const slice = (
    endpoints: NonNullable<V1EndpointSlice['endpoints']>,
    ports: V1EndpointSlice['ports'] = [{ name: 'port', port: 2379, protocol: 'TCP' }],
    ownerReferences = [owner],
  ): V1EndpointSlice => ({
    addressType: 'IPv4',
    metadata: { name: 's', namespace: xb.namespace, ownerReferences },
    endpoints,
    ports,
  });
  const ports = (...p: [number, string?][]) => ({
    ports: p.map(([port, protocol]) => ({
      name: `p${String(port)}`,
      port,
      protocol: (protocol ?? 'TCP') as 'TCP',
    })),
  });

  it("takes the external addresses of the backend's own slices", () => {
    const got = publishedAddresses(
      [
        slice([
          { addresses: ['10.1.0.1'] },
          { addresses: ['10.1.0.2'], conditions: { ready: false } },
        ]),
        slice([{ addresses: ['10.9.9.9'] }], undefined, [{ ...owner, uid: 'another' }]),
      ],
      xb,
      ports([2379]),
    );
    expect([...got].sort()).toEqual(['10.1.0.1', '10.1.0.2']);
  });

  it('leaves pods out: a pod address is not one a grant allowed', () => {
    const got = publishedAddresses(
      [
        slice([
          { addresses: ['10.1.0.1'] },
          {
            addresses: ['10.244.1.7'],
            targetRef: { kind: 'Pod', namespace: xb.namespace, name: 'p', uid: 'u' },
          },
        ]),
      ],
      xb,
      ports([2379]),
    );
    expect([...got]).toEqual(['10.1.0.1']);
  });

  it('counts an address as published only on the ports it was published on', () => {
    const s = [
      slice(
        [{ addresses: ['10.1.0.1'] }],
        [
          { name: 'a', port: 5432, protocol: 'TCP' },
          { name: 'b', port: 6432, protocol: 'TCP' },
        ],
      ),
    ];
    // Fewer ports, or the same ones renamed: still published.
    expect([...publishedAddresses(s, xb, ports([5432]))]).toEqual(['10.1.0.1']);
    // A port added, or another protocol on the same number: that is new.
    expect([...publishedAddresses(s, xb, ports([5432], [22]))]).toEqual([]);
    expect([...publishedAddresses(s, xb, ports([5432, 'UDP']))]).toEqual([]);
  });
});
