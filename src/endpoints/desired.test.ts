import { labelEndpointsManagedBy, managerName } from '../api/names.ts';
import { describe, expect, it } from '@jest/globals';
import type { V1EndpointAddress, V1Endpoints, V1EndpointSubset } from '@kubernetes/client-node';
import {
  annotationOverCapacity,
  annotationTriggerTime,
  desiredSubsets,
  isSelectorService,
  labelHeadless,
  planEndpoints,
} from './desired.ts';
import { pod, svc } from './fixtures.test-helpers.ts';

/** "ip/pod" strings per subset, readiness and ports — compact expectations for the tables. */
function summarize(subsets: V1EndpointSubset[]): unknown[] {
  const addr = (a: V1EndpointAddress): string => `${a.ip}/${a.targetRef?.name ?? '-'}`;
  return subsets.map((s) => ({
    ready: (s.addresses ?? []).map(addr),
    notReady: (s.notReadyAddresses ?? []).map(addr),
    ports: (s.ports ?? []).map((p) => `${p.name ?? ''}:${p.port}/${p.protocol ?? ''}`),
  }));
}

describe('membership and readiness', () => {
  const http = [{ name: 'http', port: 8080 }];
  it.each([
    [
      'ready pod → addresses',
      [pod('a', { ports: http })],
      {},
      [{ ready: ['10.0.0.1/a'], notReady: [], ports: ['http:8080/TCP'] }],
    ],
    [
      'unready pod → notReadyAddresses',
      [pod('a', { ready: false })],
      {},
      [{ ready: [], notReady: ['10.0.0.1/a'], ports: ['http:8080/TCP'] }],
    ],
    ['Failed pod excluded', [pod('a', { phase: 'Failed' })], {}, []],
    ['Succeeded pod excluded', [pod('a', { phase: 'Succeeded' })], {}, []],
    [
      'Pending but Ready counts as ready',
      [pod('a', { phase: 'Pending' })],
      {},
      [{ ready: ['10.0.0.1/a'], notReady: [], ports: ['http:8080/TCP'] }],
    ],
    ['pod without IP excluded', [pod('a', { ips: [] })], {}, []],
    ['terminating pod dropped', [pod('a', { deleting: true })], {}, []],
    [
      'terminating pod kept with publishNotReadyAddresses',
      [pod('a', { deleting: true, ready: false })],
      { publishNotReadyAddresses: true },
      [{ ready: ['10.0.0.1/a'], notReady: [], ports: ['http:8080/TCP'] }],
    ],
    [
      'publishNotReadyAddresses makes unready pods ready',
      [pod('a', { ready: false })],
      { publishNotReadyAddresses: true },
      [{ ready: ['10.0.0.1/a'], notReady: [], ports: ['http:8080/TCP'] }],
    ],
  ] as const)('%s', (_name, pods, spec, expected) => {
    expect(summarize(desiredSubsets(svc('web', spec), pods))).toEqual(expected);
  });

  it('leaves Services without a selector and ExternalName Services alone', () => {
    expect(isSelectorService(svc('web', { selector: null }))).toBe(false);
    expect(isSelectorService(svc('web', { type: 'ExternalName' }))).toBe(false);
    expect(isSelectorService(svc('web', { selector: {} }))).toBe(true);
    expect(isSelectorService(svc('web'))).toBe(true);
  });
});

describe('ports', () => {
  const named = { name: 'http', port: 80, targetPort: 'web', protocol: 'TCP' };
  it('resolves a named targetPort per pod and skips pods without it for that port only', () => {
    const pods = [
      pod('a', { ips: ['10.0.0.1'], ports: [{ name: 'web', port: 8080 }] }),
      pod('b', { ips: ['10.0.0.2'], ports: [{ name: 'web', port: 9090 }] }),
      pod('c', { ips: ['10.0.0.3'], ports: [] }),
    ];
    const s = svc('web', {
      ports: [named, { name: 'metrics', port: 9100, targetPort: 9100, protocol: 'TCP' }],
    });
    expect(summarize(desiredSubsets(s, pods))).toEqual([
      { ready: ['10.0.0.1/a'], notReady: [], ports: ['http:8080/TCP'] },
      { ready: ['10.0.0.2/b'], notReady: [], ports: ['http:9090/TCP'] },
      {
        ready: ['10.0.0.1/a', '10.0.0.2/b', '10.0.0.3/c'],
        notReady: [],
        ports: ['metrics:9100/TCP'],
      },
    ]);
  });

  it('matches the protocol as well as the name', () => {
    const p = pod('a', { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] });
    const tcp = svc('web', {
      ports: [{ name: 'dns', port: 53, targetPort: 'dns', protocol: 'TCP' }],
    });
    const udp = svc('web', {
      ports: [{ name: 'dns', port: 53, targetPort: 'dns', protocol: 'UDP' }],
    });
    expect(desiredSubsets(tcp, [p])).toEqual([]);
    expect(summarize(desiredSubsets(udp, [p]))).toEqual([
      { ready: ['10.0.0.1/a'], notReady: [], ports: ['dns:53/UDP'] },
    ]);
  });

  it('looks in restartable init containers (sidecars) but not in plain init containers', () => {
    const s = svc('web', {
      ports: [{ name: 'http', port: 80, targetPort: 'side', protocol: 'TCP' }],
    });
    const sidecar = pod('a', {
      sidecarPorts: [{ name: 'side', port: 7070, restartPolicy: 'Always' }],
    });
    const plainInit = pod('b', { ips: ['10.0.0.2'], sidecarPorts: [{ name: 'side', port: 7070 }] });
    expect(summarize(desiredSubsets(s, [sidecar, plainInit]))).toEqual([
      { ready: ['10.0.0.1/a'], notReady: [], ports: ['http:7070/TCP'] },
    ]);
  });

  it('copies name, protocol and appProtocol into the endpoint port', () => {
    const s = svc('web', {
      ports: [
        {
          name: 'grpc',
          port: 80,
          targetPort: 9000,
          protocol: 'TCP',
          appProtocol: 'kubernetes.io/h2c',
        },
      ],
    });
    expect(desiredSubsets(s, [pod('a')])[0]?.ports).toEqual([
      { name: 'grpc', port: 9000, protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' },
    ]);
  });

  it('gives a headless Service without ports its addresses without ports', () => {
    const s = svc('web', { clusterIP: 'None', ports: [] });
    expect(
      summarize(desiredSubsets(s, [pod('a'), pod('b', { ips: ['10.0.0.2'], ready: false })])),
    ).toEqual([{ ready: ['10.0.0.1/a'], notReady: ['10.0.0.2/b'], ports: [] }]);
  });

  it('gives a non-headless Service without ports no subsets', () => {
    expect(desiredSubsets(svc('web', { ports: [] }), [pod('a')])).toEqual([]);
  });
});

describe('IP family', () => {
  const dual = ['10.0.0.1', 'fd00::1'];
  it.each([
    [
      'ipFamilies[0] IPv6',
      { ipFamilies: ['IPv6', 'IPv4'], clusterIP: 'fd00:10:96::1' },
      dual,
      'fd00::1',
    ],
    ['ipFamilies[0] IPv4', { ipFamilies: ['IPv4', 'IPv6'] }, dual, '10.0.0.1'],
    ['ClusterIP family without ipFamilies', { clusterIP: 'fd00:10:96::a' }, dual, 'fd00::1'],
    [
      'headless, no families: pod primary family',
      { clusterIP: 'None' },
      ['fd00::1', '10.0.0.1'],
      'fd00::1',
    ],
    ['headless, no families, IPv4 primary', { clusterIP: 'None' }, dual, '10.0.0.1'],
  ] as const)('%s', (_n, spec, ips, expected) => {
    const subsets = desiredSubsets(svc('web', spec), [pod('a', { ips: [...ips] })]);
    expect(subsets[0]?.addresses?.[0]?.ip).toBe(expected);
  });

  it('skips a pod with no IP of the Service family', () => {
    expect(
      desiredSubsets(svc('web', { ipFamilies: ['IPv6'] }), [pod('a', { ips: ['10.0.0.1'] })]),
    ).toEqual([]);
  });

  it('writes IPv6 addresses in canonical form', () => {
    const subsets = desiredSubsets(svc('web', { ipFamilies: ['IPv6'] }), [
      pod('a', { ips: ['10.0.0.1', 'FD00:0:0::0001'] }),
    ]);
    expect(subsets[0]?.addresses?.[0]?.ip).toBe('fd00::1');
  });
});

describe('address fields', () => {
  it('always sets nodeName and targetRef', () => {
    const a = desiredSubsets(svc('web'), [pod('a', { node: '' })])[0]?.addresses?.[0];
    expect(a).toEqual({
      ip: '10.0.0.1',
      nodeName: '',
      targetRef: { kind: 'Pod', namespace: 'ns', name: 'a', uid: 'uid-a' },
    });
  });

  it.each([
    ['hostname and matching subdomain', { hostname: 'h', subdomain: 'web' }, 'h'],
    ['subdomain of another Service', { hostname: 'h', subdomain: 'other' }, undefined],
    ['hostname without subdomain', { hostname: 'h' }, undefined],
  ] as const)('hostname: %s', (_n, spec, expected) => {
    const a = desiredSubsets(svc('web'), [pod('a', spec)])[0]?.addresses?.[0];
    expect(a?.hostname).toBe(expected);
  });
});

describe('planEndpoints', () => {
  const service = svc('web', { labels: { team: 'x' } });
  const trigger = new Date('2026-01-01T00:00:00Z');

  it('creates Endpoints with the Service labels, the managed-by label and the trigger time', () => {
    const plan = planEndpoints(service, [pod('a')], undefined, trigger);
    expect(plan.action).toBe('create');
    if (plan.action === 'none') return;
    expect(plan.endpoints.metadata).toEqual({
      name: 'web',
      namespace: 'ns',
      labels: { team: 'x', [labelEndpointsManagedBy]: managerName },
      annotations: { [annotationTriggerTime]: '2026-01-01T00:00:00Z' },
    });
  });

  it('adds the headless label for headless Services', () => {
    const plan = planEndpoints(svc('web', { clusterIP: 'None' }), [pod('a')], undefined, undefined);
    expect(plan.action === 'create' && plan.endpoints.metadata?.labels?.[labelHeadless]).toBe('');
  });

  it('does not write when only the trigger time would change', () => {
    const first = planEndpoints(service, [pod('a')], undefined, trigger);
    if (first.action === 'none') throw new Error('expected a create');
    const stored: V1Endpoints = {
      ...first.endpoints,
      metadata: { ...first.endpoints.metadata, resourceVersion: '5' },
    };
    expect(
      planEndpoints(service, [pod('a', { rv: '2' })], stored, new Date('2026-02-01T00:00:00Z')),
    ).toEqual({ action: 'none' });
  });

  it('updates when labels drift, keeping foreign annotations and removing a stale trigger time', () => {
    const stored: V1Endpoints = {
      metadata: {
        name: 'web',
        namespace: 'ns',
        resourceVersion: '5',
        labels: { [labelEndpointsManagedBy]: managerName },
        annotations: { keep: 'me', [annotationTriggerTime]: 'old' },
      },
      subsets: desiredSubsets(service, [pod('a')]),
    };
    const plan = planEndpoints(service, [pod('a')], stored, undefined);
    expect(plan.action).toBe('update');
    if (plan.action === 'none') return;
    expect(plan.endpoints.metadata?.annotations).toEqual({ keep: 'me' });
    expect(plan.endpoints.metadata?.resourceVersion).toBe('5');
    expect(plan.endpoints.metadata?.labels).toEqual({
      team: 'x',
      [labelEndpointsManagedBy]: managerName,
    });
  });

  it('takes over Endpoints written by the upstream controller', () => {
    const stored: V1Endpoints = {
      metadata: {
        name: 'web',
        namespace: 'ns',
        labels: { team: 'x', [labelEndpointsManagedBy]: 'endpoint-controller' },
      },
      subsets: desiredSubsets(service, [pod('a')]),
    };
    expect(planEndpoints(service, [pod('a')], stored, undefined).action).toBe('update');
  });

  it('never modifies the cached object', () => {
    const stored: V1Endpoints = Object.freeze({
      metadata: Object.freeze({
        name: 'web',
        namespace: 'ns',
        annotations: Object.freeze({ a: 'b' }),
      }),
      subsets: Object.freeze([]) as unknown as V1EndpointSubset[],
    });
    expect(() => planEndpoints(service, [pod('a')], stored, trigger)).not.toThrow();
  });

  describe('capacity', () => {
    const many = (n: number, ready: boolean, offset = 0): ReturnType<typeof pod>[] =>
      Array.from({ length: n }, (_, i) => {
        const k = i + offset;
        return pod(`p${k}`, { ips: [`10.1.${Math.floor(k / 250)}.${k % 250}`], ready });
      });

    it('keeps every ready address and drops not-ready ones first, with the annotation', () => {
      const plan = planEndpoints(
        service,
        [...many(900, true), ...many(300, false, 900)],
        undefined,
        undefined,
      );
      if (plan.action === 'none') throw new Error('expected a write');
      expect(plan.truncated).toBe(true);
      const s = plan.endpoints.subsets?.[0];
      expect(s?.addresses).toHaveLength(900);
      expect(s?.notReadyAddresses).toHaveLength(100);
      expect(plan.endpoints.metadata?.annotations?.[annotationOverCapacity]).toBe('truncated');
    });

    it('keeps the first 1000 ready addresses by IP order when ready ones alone are too many', () => {
      const plan = planEndpoints(
        service,
        [...many(1100, true), ...many(10, false, 1100)],
        undefined,
        undefined,
      );
      if (plan.action === 'none') throw new Error('expected a write');
      const s = plan.endpoints.subsets?.[0];
      expect(s?.addresses).toHaveLength(1000);
      expect(s?.notReadyAddresses).toBeUndefined();
      const ips = s?.addresses?.map((a) => a.ip) ?? [];
      expect([...ips].sort()).toEqual(ips);
    });

    it('removes the annotation once back under capacity, and rewrites while over it', () => {
      const over = planEndpoints(service, many(1001, true), undefined, undefined);
      if (over.action === 'none') throw new Error('expected a write');
      // Still over capacity: upstream rewrites on every sync, and so do we.
      expect(planEndpoints(service, many(1001, true), over.endpoints, undefined).action).toBe(
        'update',
      );
      const under = planEndpoints(service, many(999, true), over.endpoints, undefined);
      expect(
        under.action === 'update' &&
          under.endpoints.metadata?.annotations?.[annotationOverCapacity],
      ).toBeUndefined();
    });
  });
});
