// Which backends a watch event wakes, without informers or a queue.
import { describe, expect, it } from '@jest/globals';
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import type { CachedExternalBackend } from '../../api/resources.ts';
import type { CachedNamespace } from '../../runtime/transforms.ts';
import type { CachedPod, CachedService } from '../../runtime/cached.ts';
import {
  backendKeyOfTarget,
  keysForFreedRoom,
  keysForNamespace,
  keysForPods,
  keysForRelated,
  keysForSource,
  keysForSourceFailure,
  serviceOfSlice,
} from './keys.ts';

const backend = (name: string, spec: Record<string, unknown>): CachedExternalBackend => ({
  apiVersion: 'outrigger.dev/v1alpha1',
  kind: 'ExternalBackend',
  metadata: { namespace: 'shop', name, uid: `${name}-uid` },
  spec: { ports: [{ name: 'http', port: 80 }], addresses: [{ ip: '192.0.2.1' }], ...spec },
});

const db = backend('db', {});
const renamed = backend('cache', { service: { name: 'redis' } });
const selecting = backend('web', { podSelector: { matchLabels: { app: 'web' } }, addresses: [] });
const checked = backend('api', {
  healthCheck: { tls: { port: 443, caBundle: { secretName: 'ca', key: 'ca.crt' } } },
});
const invalid: CachedExternalBackend = { ...backend('broken', {}), spec: { ports: 'no' } };
const all = [db, renamed, selecting, checked, invalid];

describe('keysForRelated', () => {
  it('wakes the owning backend and the backends publishing into the Service of that name', () => {
    const ep: V1Endpoints = {
      metadata: {
        namespace: 'shop',
        name: 'redis',
        ownerReferences: [
          { apiVersion: 'v1', kind: 'ExternalBackend', name: 'other', uid: 'u', controller: true },
        ],
      },
    };
    expect(keysForRelated(ep, 'redis', all)).toEqual(['shop/other', 'shop/cache']);
  });

  it('ignores an owner of another kind and a Service no backend names', () => {
    const svc: CachedService = {
      metadata: {
        namespace: 'shop',
        name: 'cache',
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name: 'x', uid: 'u', controller: true },
        ],
      },
    };
    // "cache" is the backend's name, not its Service's ("redis").
    expect(keysForRelated(svc, 'cache', all)).toEqual([]);
    expect(keysForRelated(svc, 'db', all)).toEqual(['shop/db']);
  });

  it('reads a slice by its Service label', () => {
    const slice: V1EndpointSlice = {
      addressType: 'IPv4',
      endpoints: [],
      metadata: { namespace: 'shop', name: 'db-x', labels: { 'kubernetes.io/service-name': 'db' } },
    };
    expect(serviceOfSlice(slice)).toBe('db');
    expect(keysForRelated(slice, serviceOfSlice(slice), all)).toEqual(['shop/db']);
  });
});

describe('keysForPods', () => {
  const pod = (labels: Record<string, string>): CachedPod => ({
    metadata: { namespace: 'shop', name: 'p', labels },
  });

  it('wakes the backends whose podSelector matches either version of the pod', () => {
    expect(keysForPods([pod({ app: 'web' })], all)).toEqual(['shop/web']);
    // A label change that takes the pod out of the selection concerns the backend too.
    expect(keysForPods([pod({ app: 'web' }), pod({ app: 'other' })], all)).toEqual(['shop/web']);
    expect(keysForPods([undefined, pod({ app: 'other' })], all)).toEqual([]);
  });
});

describe('keysForNamespace', () => {
  const ns = (labels: Record<string, string>): CachedNamespace => ({
    metadata: { name: 'shop', labels },
  });

  it('wakes every backend of the namespace on add, delete and a label change', () => {
    const keys = all.map((b) => `shop/${b.metadata?.name ?? ''}`);
    expect(keysForNamespace(undefined, ns({}), all)).toEqual(keys);
    expect(keysForNamespace(ns({ a: '1' }), ns({ a: '2' }), all)).toEqual(keys);
  });

  it('wakes none when an update leaves the labels as they were', () => {
    expect(keysForNamespace(ns({ a: '1' }), ns({ a: '1' }), all)).toEqual([]);
  });
});

describe('keysForSource and keysForSourceFailure', () => {
  it('wakes the backends whose check names that Secret', () => {
    expect(keysForSource('Secret', 'ca', all)).toEqual(['shop/api']);
    expect(keysForSource('Secret', 'other', all)).toEqual([]);
    expect(keysForSource('ConfigMap', 'ca', all)).toEqual([]);
  });

  it('wakes the backends whose check reads that kind when its list fails or recovers', () => {
    expect(keysForSourceFailure('Secret', all)).toEqual(['shop/api']);
    expect(keysForSourceFailure('ConfigMap', all)).toEqual([]);
  });
});

describe('keysForFreedRoom', () => {
  it('wakes the limited backends of the same namespace, not the one that freed it', () => {
    expect(keysForFreedRoom('shop/a', new Set(['shop/a', 'shop/b', 'other/c']))).toEqual([
      'shop/b',
    ]);
  });
});

describe('backendKeyOfTarget', () => {
  it('is the target key without its address', () => {
    expect(backendKeyOfTarget('shop/db/2001:db8::1')).toBe('shop/db');
  });
});
