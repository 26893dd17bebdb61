// The secure metrics endpoint against a real API server: HTTPS with a certificate the scraper
// verifies, the bearer token reviewed by TokenReview and authorized by SubjectAccessReview for the
// non-resource URL /metrics; ServiceAccount tokens come from the TokenRequest API.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, type PeerCertificate } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, RbacAuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import {
  scrapeSecure,
  startOperator,
  type OperatorProcess,
  type Scrape,
} from './harness/operator.ts';
import { makeCa, makeLeaf } from './harness/pki.ts';
import { createExternalBackend, createTestNamespace, waitFor, teardown } from './helpers.ts';

let cluster: Cluster;
let kc: KubeConfig;
let op: OperatorProcess;
let ca: string;
let granted: string;
let ungranted: string;
let monitoringNs: string;
let certDir: string;
const readerRole = 'e2e-metrics-reader';

async function token(ns: string, sa: string): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
  const t = await core.createNamespacedServiceAccountToken({
    namespace: ns,
    name: sa,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  return t.status?.token ?? '';
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

beforeAll(async () => {
  cluster = await startCluster();
  kc = cluster.kubeConfig();
  const dir = join(cluster.dir ?? '/tmp', 'metrics-certs');
  certDir = dir;
  mkdirSync(dir, { recursive: true });
  const authority = await makeCa('outrigger-metrics-test-ca');
  const leaf = await makeLeaf(authority, { dns: ['localhost'], ips: ['127.0.0.1'] });
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem, { mode: 0o600 });
  ca = authority.certPem;

  // The kube-prometheus convention: a ClusterRole granting get on /metrics, bound to Prometheus's
  // ServiceAccount; "intruder" is a valid ServiceAccount without the grant.
  const ns = await createTestNamespace(kc, 'monitoring');
  monitoringNs = ns;
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createClusterRole({
    body: {
      metadata: { name: readerRole },
      rules: [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }],
    },
  });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: readerRole },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: readerRole },
      subjects: [{ kind: 'ServiceAccount', name: 'prometheus', namespace: ns }],
    },
  });
  granted = await token(ns, 'prometheus');
  ungranted = await token(ns, 'intruder');
  op = await startOperator(
    cluster.kubeconfigPath,
    [`--metrics-cert-path=${dir}`, '--zap-log-level=debug'],
    join(cluster.dir ?? '/tmp', 'metrics-auth-operator.log'),
    { secureMetrics: true },
  );
}, 180_000);

afterAll(async () => {
  await teardown(
    () => op.stop(),
    () => cluster.stop(),
  );
});

describe('secure metrics', () => {
  it('answers 401 without a valid token, 403 without the grant, 200 with it', async () => {
    expect(op.metricsUrl).toMatch(/^https:/);
    const none = await scrapeSecure(op.metricsUrl, { ca });
    expect(none.status).toBe(401);
    expect(none.body).not.toMatch(/outrigger_/);
    const bogus = await scrapeSecure(op.metricsUrl, { ca, token: 'not-a-token' });
    expect(bogus.status).toBe(401);
    const forbidden = await scrapeSecure(op.metricsUrl, { ca, token: ungranted });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).not.toMatch(/outrigger_/);
    const ok = await scrapeSecure(op.metricsUrl, { ca, token: granted });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatch(/^outrigger_build_info\{/m);
    expect(ok.body).toMatch(/^controller_runtime_reconcile_total/m);
    // The outcomes are counted, each review once (the repeats below are answered from memory).
    expect(ok.body).toMatch(
      /^outrigger_metrics_auth_requests_total\{result="forbidden",cached="false"\} 1$/m,
    );
  });

  it('serves a certificate the scraper verifies, and a scraper trusting another CA refuses it', async () => {
    const other = (await makeCa('someone-else')).certPem;
    await expect(scrapeSecure(op.metricsUrl, { ca: other, token: granted })).rejects.toThrow(
      /self.signed|unable to verify|certificate/i,
    );
    // Plain HTTP on the same port gets no metrics.
    const plain = await fetch(op.metricsUrl.replace('https:', 'http:')).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(plain).not.toBe(200);
  });

  it('remembers reviews: a scrape with a known token costs no API request', async () => {
    // Each new token of the granted ServiceAccount is reviewed (a TokenReview and a
    // SubjectAccessReview); a token seen before is answered from memory.
    const core = kc.makeApiClient(CoreV1Api);
    const newToken = async (): Promise<string> =>
      (
        await core.createNamespacedServiceAccountToken({
          namespace: monitoringNs,
          name: 'prometheus',
          body: { spec: { audiences: [], expirationSeconds: 3600 } },
        })
      ).status?.token ?? '';
    const uncached: Scrape[] = [];
    const cached: Scrape[] = [];
    for (let i = 0; i < 15; i++)
      uncached.push(await scrapeSecure(op.metricsUrl, { ca, token: await newToken() }));
    const t = await newToken();
    await scrapeSecure(op.metricsUrl, { ca, token: t });
    const before = await scrapeSecure(op.metricsUrl, { ca, token: t });
    for (let i = 0; i < 15; i++) cached.push(await scrapeSecure(op.metricsUrl, { ca, token: t }));
    expect([...uncached, ...cached].every((s) => s.status === 200)).toBe(true);
    const count = (body: string, cachedLabel: string): number =>
      Number(
        new RegExp(
          `^outrigger_metrics_auth_requests_total\\{result="allowed",cached="${cachedLabel}"\\} (\\d+)$`,
          'm',
        ).exec(body)?.[1] ?? NaN,
      );
    const after = await scrapeSecure(op.metricsUrl, { ca, token: t });
    expect(count(after.body, 'false')).toBe(count(before.body, 'false'));
    expect(count(after.body, 'true')).toBe(count(before.body, 'true') + 16);
    console.log(
      `scrape latency, median of 15 (full /metrics, TLS handshake each): reviewed ${median(uncached.map((s) => s.ms)).toFixed(1)} ms, cached ${median(cached.map((s) => s.ms)).toFixed(1)} ms`,
    );
  }, 60_000);

  it('survives a flood of bad tokens: refusals stay cheap, Prometheus is still served, the operator still works', async () => {
    const ns = await createTestNamespace(kc, 'flood');
    const statuses = new Map<number, number>();
    let grantedOk = 0;
    let grantedTotal = 0;
    const started = Date.now();
    const stopAt = started + 5000;
    const flooder = async (): Promise<void> => {
      while (Date.now() < stopAt) {
        const s = await scrapeSecure(op.metricsUrl, {
          ca,
          token: randomBytes(24).toString('base64url'),
        });
        statuses.set(s.status, (statuses.get(s.status) ?? 0) + 1);
      }
    };
    const prometheus = async (): Promise<void> => {
      while (Date.now() < stopAt) {
        grantedTotal++;
        if ((await scrapeSecure(op.metricsUrl, { ca, token: granted })).status === 200) grantedOk++;
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    // The operator's own work during the flood: an ExternalBackend gets its Endpoints.
    await createExternalBackend(kc, ns, 'db', {
      ports: [{ name: 'pg', port: 5432 }],
      addresses: [{ ip: '10.250.9.1' }],
    });
    await Promise.all([...Array.from({ length: 32 }, flooder), prometheus()]);
    const seconds = (Date.now() - started) / 1000;
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    console.log(
      `bad-token flood: ${String(total)} requests in ${seconds.toFixed(1)} s, by status ${JSON.stringify(Object.fromEntries(statuses))}; granted scrapes ${String(grantedOk)}/${String(grantedTotal)}`,
    );
    // Only refusals: 401 (reviewed) or 429 (refused before any review).
    expect([...statuses.keys()].sort()).toEqual(
      [...statuses.keys()].filter((s) => s === 401 || s === 429).sort(),
    );
    expect(statuses.get(429) ?? 0).toBeGreaterThan(0);
    // Reviews are capped at 10 a second after a burst of 20.
    expect(statuses.get(401) ?? 0).toBeLessThanOrEqual(20 + Math.ceil(seconds * 10) + 4);
    expect(grantedOk).toBe(grantedTotal);
    await waitFor('the ExternalBackend Endpoints', async () =>
      (
        await kc
          .makeApiClient(CoreV1Api)
          .readNamespacedEndpoints({ namespace: ns, name: 'db' })
          .catch(() => undefined)
      )?.subsets?.[0]?.addresses?.length === 1
        ? true
        : undefined,
    );
    const after = await scrapeSecure(op.metricsUrl, { ca, token: granted });
    expect(after.status).toBe(200);
  }, 60_000);

  it('serves a renewed certificate once its files change, without a restart (cert-manager renewing the Secret)', async () => {
    const authority = await makeCa('outrigger-metrics-renewed-ca');
    const leaf = await makeLeaf(authority, { dns: ['localhost'], ips: ['127.0.0.1'] });
    // The key first, then the certificate: in between, the pair does not match and is skipped.
    writeFileSync(join(certDir, 'tls.key'), leaf.keyPem, { mode: 0o600 });
    writeFileSync(join(certDir, 'tls.crt'), leaf.certPem);
    const changed = Date.now();
    const renewed = await waitFor(
      'the renewed certificate served',
      () =>
        scrapeSecure(op.metricsUrl, { ca: authority.certPem, token: granted }).then(
          (r) => r,
          () => undefined,
        ),
      30_000,
      250,
    );
    expect(renewed.status).toBe(200);
    console.log(
      `renewed certificate served ${String(Date.now() - changed)} ms after the files changed`,
    );
    // The old CA no longer verifies it: the process really switched.
    await expect(scrapeSecure(op.metricsUrl, { ca, token: granted })).rejects.toThrow();
    ca = authority.certPem;
  }, 60_000);

  it('generates a self-signed certificate when no --metrics-cert-path is given', async () => {
    const second = await startOperator(
      cluster.kubeconfigPath,
      [],
      join(cluster.dir ?? '/tmp', 'metrics-auth-selfsigned.log'),
      { secureMetrics: true, installCrd: false },
    );
    try {
      const url = new URL(second.metricsUrl);
      const cert = await new Promise<PeerCertificate>((resolve, reject) => {
        const s = connect(
          { host: url.hostname, port: Number(url.port), rejectUnauthorized: false },
          () => {
            resolve(s.getPeerCertificate());
            s.end();
          },
        );
        s.on('error', reject);
      });
      expect(cert.subject.CN).toBe('outrigger-metrics');
      expect(cert.issuer.CN).toBe('outrigger-metrics');
      expect(cert.subjectaltname).toContain('IP Address:127.0.0.1');
      const pem = `-----BEGIN CERTIFICATE-----\n${cert.raw.toString('base64')}\n-----END CERTIFICATE-----\n`;
      expect((await scrapeSecure(second.metricsUrl, { ca: pem })).status).toBe(401);
      expect((await scrapeSecure(second.metricsUrl, { ca: pem, token: granted })).status).toBe(200);
    } finally {
      await second.stop();
    }
  }, 90_000);
});
