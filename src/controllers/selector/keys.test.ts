import { describe, expect, it } from '@jest/globals';
import type { V1Endpoints } from '@kubernetes/client-node';
import { labelEndpointsManagedBy, managerName } from '../../api/names.ts';
import { pod, svc } from '../../endpoints/fixtures.test-helpers.ts';
import {
  endpointsDeleteKey,
  endpointsUpdateKey,
  otherWriters,
  podEventKeys,
  serviceKey,
  startupKeys,
} from './keys.ts';

const inScope = (ns: string): boolean => ns !== 'elsewhere';

function ep(name: string, managedBy?: string, ns = 'ns'): V1Endpoints {
  return {
    metadata: {
      namespace: ns,
      name,
      labels: managedBy === undefined ? {} : { [labelEndpointsManagedBy]: managedBy },
    },
  };
}

describe('serviceKey', () => {
  it('keys a Service in scope by namespace/name, and none out of scope', () => {
    expect(serviceKey(svc('web'), inScope)).toBe('ns/web');
    expect(serviceKey(svc('web', { ns: 'elsewhere' }), inScope)).toBeUndefined();
  });
});

describe('podEventKeys', () => {
  const services = [
    svc('web'),
    svc('api', { selector: { app: 'api' } }),
    svc('all', { selector: {} }),
    svc('manual', { selector: null }),
  ];
  const servicesIn = (ns: string) => (ns === 'ns' ? services : []);

  it('keys every Service selecting an added or deleted pod', () => {
    const p = pod('a', { labels: { app: 'web' } });
    expect(podEventKeys(undefined, p, inScope, servicesIn).sort()).toEqual(['ns/all', 'ns/web']);
    expect(podEventKeys(p, undefined, inScope, servicesIn).sort()).toEqual(['ns/all', 'ns/web']);
  });

  it('keys the Services whose membership a label change moves, and none for a no-op update', () => {
    const before = pod('a', { labels: { app: 'web' }, rv: '1' });
    const after = pod('a', { labels: { app: 'api' }, rv: '2' });
    expect(podEventKeys(before, after, inScope, servicesIn).sort()).toEqual(['ns/api', 'ns/web']);
    expect(podEventKeys(before, { ...before }, inScope, servicesIn)).toEqual([]);
  });

  it('keys nothing for a pod out of scope, without reading its Services', () => {
    const p = pod('a', { ns: 'elsewhere' });
    expect(
      podEventKeys(undefined, p, inScope, () => {
        throw new Error('read the Services of a namespace out of scope');
      }),
    ).toEqual([]);
  });
});

describe('endpointsUpdateKey', () => {
  it("keys an Endpoints whose managed-by label stops being outrigger's", () => {
    expect(
      endpointsUpdateKey(ep('web', managerName), ep('web', 'endpoint-controller'), inScope),
    ).toBe('ns/web');
    expect(endpointsUpdateKey(ep('web', managerName), ep('web'), inScope)).toBe('ns/web');
  });

  it('ignores every other update, and Endpoints out of scope', () => {
    expect(
      endpointsUpdateKey(ep('web', managerName), ep('web', managerName), inScope),
    ).toBeUndefined();
    expect(endpointsUpdateKey(ep('web', 'other'), ep('web', managerName), inScope)).toBeUndefined();
    expect(endpointsUpdateKey(ep('web', 'other'), ep('web', 'another'), inScope)).toBeUndefined();
    expect(
      endpointsUpdateKey(
        ep('web', managerName, 'elsewhere'),
        ep('web', 'endpoint-controller', 'elsewhere'),
        inScope,
      ),
    ).toBeUndefined();
  });
});

describe('endpointsDeleteKey', () => {
  it('keys any deleted Endpoints in scope, whoever wrote it', () => {
    expect(endpointsDeleteKey(ep('web', 'endpoint-controller'), inScope)).toBe('ns/web');
    expect(endpointsDeleteKey(ep('web', managerName, 'elsewhere'), inScope)).toBeUndefined();
  });
});

describe('startupKeys', () => {
  it("keys only outrigger's own Endpoints in scope", () => {
    const all = [
      ep('mine', managerName),
      ep('theirs', 'endpoint-controller'),
      ep('unlabelled'),
      ep('mine-elsewhere', managerName, 'elsewhere'),
    ];
    expect(startupKeys(all, inScope)).toEqual(['ns/mine']);
  });
});

describe('otherWriters', () => {
  it('counts the Endpoints of selector Services in scope by the writer that labelled them', () => {
    const services = new Map([
      ['ns/a', svc('a')],
      ['ns/b', svc('b')],
      ['ns/c', svc('c')],
      ['ns/manual', svc('manual', { selector: null })],
      ['ns/mine', svc('mine')],
      ['elsewhere/d', svc('d', { ns: 'elsewhere' })],
    ]);
    const writers = otherWriters(
      [
        ep('a', 'endpoint-controller'),
        ep('b', 'endpoint-controller'),
        ep('c'),
        ep('manual', 'endpoint-controller'),
        ep('mine', managerName),
        ep('no-service', 'endpoint-controller'),
        ep('d', 'endpoint-controller', 'elsewhere'),
      ],
      (ns, name) => services.get(`${ns}/${name}`),
      inScope,
    );
    expect(Object.fromEntries(writers)).toEqual({ 'endpoint-controller': 2, '': 1 });
  });
});
