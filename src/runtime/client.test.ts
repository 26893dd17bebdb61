import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig, serviceAccountOf } from './client.ts';

const dir = mkdtempSync(join(tmpdir(), 'outrigger-kc-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('loadKubeConfig', () => {
  it('loads an explicit kubeconfig file through @kubernetes/client-node', () => {
    const path = join(dir, 'kubeconfig');
    writeFileSync(
      path,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443' } }],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u', namespace: 'ns' } }],
        'current-context': 'x',
      }),
    );
    const kc = loadKubeConfig(path);
    expect(kc.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe('ns');
  });

  it('refuses a kubeconfig without a current cluster', () => {
    const path = join(dir, 'empty');
    writeFileSync(
      path,
      JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [], users: [], contexts: [] }),
    );
    expect(() => loadKubeConfig(path)).toThrow('no Kubernetes cluster configured');
  });
});

describe('serviceAccountOf', () => {
  const jwt = (claims: object): string =>
    `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
  const kcWith = (token: string): KubeConfig => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:6443' }],
      users: [{ name: 'u', token }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    return kc;
  };

  it("reads the ServiceAccount from the token's subject, and nothing from other tokens", () => {
    expect(serviceAccountOf(kcWith(jwt({ sub: 'system:serviceaccount:ops:outrigger' })))).toBe(
      'ops:outrigger',
    );
    expect(serviceAccountOf(kcWith(jwt({ sub: 'alice' })))).toBeUndefined();
    expect(serviceAccountOf(kcWith('not-a-jwt'))).toBeUndefined();
  });
});
