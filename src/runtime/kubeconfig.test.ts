// How outrigger finds its API server: the lean loader for the in-cluster ServiceAccount and for
// kubeconfigs with a certificate or a token, client-node for everything else, and the
// ServiceAccount name read from the token.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { serviceAccountOf } from './client.ts';
import { inClusterConnection, leanKubeconfig, loadConnection } from './kubeconfig.ts';

const dir = mkdtempSync(join(tmpdir(), 'outrigger-kc-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function kubeconfig(cluster: object, user: object | undefined): string {
  const path = join(dir, `kubeconfig-${String(n++)}`);
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster }],
      users: user === undefined ? [] : [{ name: 'u', user }],
      contexts: [
        { name: 'x', context: { cluster: 'c', ...(user ? { user: 'u' } : {}), namespace: 'ns' } },
      ],
      'current-context': 'x',
    }),
  );
  return path;
}

async function options(c: {
  applyToHTTPSOptions(o: https.RequestOptions): Promise<void>;
}): Promise<https.RequestOptions> {
  const o: https.RequestOptions = {};
  await c.applyToHTTPSOptions(o);
  return o;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('loadConnection', () => {
  it('reads a client-certificate kubeconfig itself: CA, certificate and key', async () => {
    const path = kubeconfig(
      { server: 'https://127.0.0.1:6443', 'certificate-authority-data': b64('CA') },
      { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') },
    );
    const c = await loadConnection(path, {});
    expect(c.loader).toBe('kubeconfig');
    expect(c.server).toBe('https://127.0.0.1:6443');
    const o = await options(c);
    expect(String(o.ca)).toBe('CA');
    expect(String(o.cert)).toBe('CERT');
    expect(Buffer.isBuffer(o.key) && o.key.toString()).toBe('KEY');
    expect(o.headers).toBeUndefined();
    expect(o.rejectUnauthorized).toBeUndefined();
  });

  it('reads files relative to the kubeconfig, and a token file again at each refresh', async () => {
    mkdirSync(join(dir, 'rel'), { recursive: true });
    writeFileSync(join(dir, 'rel', 'ca.crt'), 'CA-FILE');
    writeFileSync(join(dir, 'rel', 'token'), 'first');
    const path = kubeconfig(
      {
        server: 'https://127.0.0.1:6443',
        'certificate-authority': 'rel/ca.crt',
        'tls-server-name': 'kubernetes',
      },
      { tokenFile: 'rel/token' },
    );
    const c = await loadConnection(path, {});
    const o = await options(c);
    expect(String(o.ca)).toBe('CA-FILE');
    expect(o.servername).toBe('kubernetes');
    expect(o.headers).toEqual({ Authorization: 'Bearer first' });
    writeFileSync(join(dir, 'rel', 'token'), 'second');
    expect((await options(c)).headers).toEqual({ Authorization: 'Bearer second' });
    expect(c.token()).toBe('second');
  });

  it('hands every other form to client-node, which reads it as before', async () => {
    const exec = kubeconfig(
      { server: 'https://127.0.0.1:6443', 'insecure-skip-tls-verify': true },
      { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'true' } },
    );
    expect(leanKubeconfig(exec)).toBeUndefined();
    const c = await loadConnection(exec, {});
    expect(c.loader).toBe('client-node');
    expect(c.server).toBe('https://127.0.0.1:6443');
    const proxied = kubeconfig(
      { server: 'https://127.0.0.1:6443', 'proxy-url': 'http://127.0.0.1:3128' },
      { token: 't' },
    );
    const p = await loadConnection(proxied, {});
    expect(p.loader).toBe('client-node');
    expect(p.proxyUrl).toBe('http://127.0.0.1:3128');
    expect(p.token()).toBe('t');
    // Plain http: client-node's rule (refused unless TLS verification is off), never a token in
    // the clear because the lean loader read the file.
    expect(leanKubeconfig(kubeconfig({ server: 'http://127.0.0.1:8080' }, { token: 't' }))).toBe(
      undefined,
    );
    const http = await loadConnection(
      kubeconfig({ server: 'http://127.0.0.1:8080' }, { token: 't' }),
      {},
    );
    expect(http.loader).toBe('client-node');
    await expect(options(http)).rejects.toThrow('HTTP protocol is not allowed');
    // No user at all: anonymous, client-node's case too.
    expect(leanKubeconfig(kubeconfig({ server: 'https://127.0.0.1:6443' }, undefined))).toBe(
      undefined,
    );
  });

  it('matches entries by name only: nameless entries and no current context match nothing', () => {
    const path = join(dir, 'nameless');
    writeFileSync(
      path,
      JSON.stringify({
        clusters: [{ cluster: { server: 'https://127.0.0.1:1' } }],
        users: [{ user: { token: 't' } }],
        contexts: [{ context: {} }],
      }),
    );
    expect(leanKubeconfig(path)).toBeUndefined();
  });

  it('takes $KUBECONFIG when no path is given, and refuses when nothing is configured', async () => {
    const path = kubeconfig({ server: 'https://10.0.0.1:6443' }, { token: 't' });
    expect((await loadConnection(undefined, { KUBECONFIG: path })).server).toBe(
      'https://10.0.0.1:6443',
    );
    const empty = join(dir, 'empty');
    writeFileSync(
      empty,
      JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [], users: [], contexts: [] }),
    );
    await expect(loadConnection(empty, {})).rejects.toThrow('no Kubernetes cluster configured');
  });

  it('runs in a cluster from the ServiceAccount the kubelet mounts', async () => {
    const sa = join(dir, 'sa');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'pod-token');
    writeFileSync(join(sa, 'ca.crt'), 'CLUSTER-CA');
    const env = { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' };
    const c = inClusterConnection(env, sa);
    expect(c?.server).toBe('https://[fd00::1]:443');
    const o = c === undefined ? {} : await options(c);
    expect(String(o.ca)).toBe('CLUSTER-CA');
    expect(o.headers).toEqual({ Authorization: 'Bearer pod-token' });
    // Outside a pod (no Service environment) there is none.
    expect(inClusterConnection({}, sa)).toBeUndefined();
    expect(inClusterConnection(env, join(dir, 'missing'))).toBeUndefined();
  });
});

describe('serviceAccountOf', () => {
  const jwt = (claims: object): string =>
    `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
  const withToken = (token: string) => ({ token: () => token });

  it("reads the ServiceAccount from the token's subject, and nothing from other tokens", () => {
    expect(serviceAccountOf(withToken(jwt({ sub: 'system:serviceaccount:ops:outrigger' })))).toBe(
      'ops:outrigger',
    );
    expect(serviceAccountOf(withToken(jwt({ sub: 'alice' })))).toBeUndefined();
    expect(serviceAccountOf(withToken('not-a-jwt'))).toBeUndefined();
    expect(serviceAccountOf({ token: () => undefined })).toBeUndefined();
  });
});
