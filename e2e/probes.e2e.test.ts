// The tls, grpc and HTTPS checks end to end: real servers (e2e/fixtures/probe-servers.ts) in a
// network namespace with certificates this test makes, the real operator probing them, CA bundles
// and header values read from labelled Secrets and ConfigMaps, and certificate expiry reported as a
// condition, an Event and a metric when a server's certificate is rotated to a short-lived one.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { ExternalBackendStatus } from '../src/api/externalbackendstatus.ts';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { makeCa, makeLeaf, type Ca } from '../src/health/kinds/kinds.test-helpers.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { createBackendNetwork, netnsUnavailable, type BackendNetwork } from './harness/netns.ts';
import type { ManagedProcess } from './harness/processes.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { createTestNamespace, teardown, waitFor } from './helpers.ts';
import { describeUnless } from './skips.ts';

const skipReason =
  process.env.USE_EXISTING_CLUSTER === 'true'
    ? 'needs its own control plane (backends live in network namespaces on this machine)'
    : netnsUnavailable();
const suite = describeUnless(skipReason);

const day = 86_400_000;
const serverName = 'db.probes.test';
const token = 'e2e-secret-token-7f3a91';
const fixture = new URL('./fixtures/probe-servers.ts', import.meta.url).pathname;

let cluster: Cluster;
let kc: KubeConfig;
let core: CoreV1Api;
let objects: CustomObjectsApi;
let net: BackendNetwork;
let operator: OperatorProcess;
let ca: Ca;
/** One probe-servers process per address, with the directory its certificate is read from. */
const servers: { ip: string; dir: string; proc: ManagedProcess }[] = [];

async function writeCert(dir: string, ip: string, notAfter: Date): Promise<number> {
  const leaf = await makeLeaf(ca, { dns: [serverName], ips: [ip], notAfter });
  writeFileSync(join(dir, 'server.crt'), leaf.certPem);
  writeFileSync(join(dir, 'server.key'), leaf.keyPem, { mode: 0o600 });
  return leaf.notAfter;
}

beforeAll(async () => {
  if (skipReason !== undefined) {
    console.warn(`skipping the probe-kind e2e tests: ${skipReason}`);
    return;
  }
  cluster = await startCluster({ controllers: ['garbage-collector-controller'] });
  kc = cluster.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  objects = kc.makeApiClient(CustomObjectsApi);
  net = createBackendNetwork(cluster.dir ?? '/tmp', 2);
  ca = await makeCa();
  for (const ip of net.ipv4) {
    const dir = join(cluster.dir ?? '/tmp', `probe-servers-${ip}`);
    mkdirSync(dir, { recursive: true });
    await writeCert(dir, ip, new Date(Date.now() + 60 * day));
    writeFileSync(join(dir, 'token'), token);
    const proc = net.run(`probe-servers-${ip}`, process.execPath, [fixture, ip, dir]);
    servers.push({ ip, dir, proc });
  }
  await waitFor(
    'the probe servers listening',
    () =>
      Promise.resolve(
        servers.every((s) => readFileSync(s.proc.logPath, 'utf8').includes('ready'))
          ? true
          : undefined,
      ),
    30_000,
  );
  operator = await startOperator(
    cluster.kubeconfigPath,
    ['--status-batch-period=0', '--zap-log-level=debug', '--certificate-expiry-warning=240h'],
    join(cluster.dir ?? '/tmp', 'outrigger.log'),
  );
}, 240_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  await teardown(
    () => operator.stop(),
    () => net.remove(),
    () => cluster.stop(),
  );
}, 60_000);

const fast = {
  intervalSeconds: 1,
  timeoutSeconds: 1,
  healthyThreshold: 1,
  unhealthyThreshold: 1,
  failOpen: false,
};

async function create(ns: string, name: string, check: Record<string, unknown>, port: number) {
  await objects.createNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural,
    body: {
      apiVersion,
      kind: 'ExternalBackend',
      metadata: { name },
      spec: {
        ports: [{ name: 'p', port }],
        addresses: servers.map((s) => ({ ip: s.ip })),
        healthCheck: { ...check, ...fast },
      },
    },
  });
}

async function status(ns: string, name: string): Promise<ExternalBackendStatus> {
  const xb = (await objects.getNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural,
    name,
  })) as { status?: ExternalBackendStatus };
  return xb.status ?? {};
}

const all = (state: string) => servers.map((s) => `${s.ip} ${state}`);

async function untilStates(ns: string, name: string, want: readonly string[], what: string) {
  let last = '';
  try {
    await waitFor(
      what,
      async () => {
        const st = await status(ns, name);
        last = JSON.stringify(
          st.addresses?.map((a) => `${a.ip} ${a.state ?? ''} ${a.message ?? ''}`),
        );
        const got = (st.addresses ?? []).map((a) => `${a.ip} ${a.state ?? ''}`);
        return JSON.stringify(got) === JSON.stringify(want) ? true : undefined;
      },
      30_000,
    );
  } catch (err) {
    // Say what the addresses showed last: a timeout alone tells nothing.
    throw new Error(`${err instanceof Error ? err.message : String(err)}; last: ${last}`, {
      cause: err,
    });
  }
}

async function eventReasons(ns: string, name: string): Promise<string[]> {
  const list = await core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: `involvedObject.name=${name}`,
  });
  return list.items.map((e) => `${e.reason ?? ''}: ${e.message ?? ''}`);
}

const label = { 'outrigger.dev/health-check': 'true' };

suite('health checks that speak gRPC and TLS, against real servers', () => {
  it('gRPC: SERVING is healthy, NOT_SERVING is not, and back', async () => {
    const ns = await createTestNamespace(kc, 'grpc');
    await create(ns, 'db', { grpc: { port: 'p', service: 'outrigger.test.Db' } }, 50051);
    await untilStates(ns, 'db', all('Healthy'), 'both gRPC servers healthy');
    const [first, second] = servers;
    if (first === undefined || second === undefined) throw new Error('two servers expected');
    process.kill(first.proc.pid, 'SIGUSR1');
    await untilStates(
      ns,
      'db',
      [`${first.ip} Unhealthy`, `${second.ip} Healthy`],
      'the NOT_SERVING server unhealthy',
    );
    const s = await status(ns, 'db');
    expect(s.addresses?.[0]?.message).toBe(
      'health check failing: gRPC health of outrigger.test.Db is NOT_SERVING',
    );
    process.kill(first.proc.pid, 'SIGUSR2');
    await untilStates(ns, 'db', all('Healthy'), 'SERVING again');
  }, 90_000);

  it('gRPC over TLS and the tls check verify against a CA bundle from a labelled ConfigMap', async () => {
    const ns = await createTestNamespace(kc, 'tls');
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'db-ca', labels: label }, data: { 'ca.crt': ca.certPem } },
    });
    const caBundle = { configMapName: 'db-ca', key: 'ca.crt' };
    await create(ns, 'grpcs', { grpc: { port: 'p', tls: true, serverName, caBundle } }, 50052);
    await create(ns, 'tls', { tls: { port: 'p', serverName, caBundle } }, 7443);
    // Verified against the IP when no serverName is given: the certificates name their IPs.
    await create(ns, 'byip', { tls: { port: 'p', caBundle } }, 7443);
    await create(
      ns,
      'wrongname',
      { tls: { port: 'p', serverName: 'other.probes.test', caBundle } },
      7443,
    );
    for (const name of ['grpcs', 'tls', 'byip'])
      await untilStates(ns, name, all('Healthy'), `${name} healthy`);
    await untilStates(ns, 'wrongname', all('Unhealthy'), 'a name the certificate lacks fails');
    expect((await status(ns, 'wrongname')).addresses?.[0]?.message).toBe(
      'health check failing: TLS: the certificate does not name other.probes.test',
    );
    // Each address reports its certificate's expiry, beyond the 240h window: condition False.
    const s = await status(ns, 'tls');
    for (const a of s.addresses ?? [])
      expect(Date.parse(a.certificateNotAfter ?? '')).toBeGreaterThan(Date.now() + 50 * day);
    expect(s.conditions?.find((c) => c.type === 'CertificateExpiringSoon')).toMatchObject({
      status: 'False',
      reason: 'CertificatesValid',
    });
    // Another CA in the bundle: nothing verifies any more.
    const other = await makeCa('another-ca');
    await core.patchNamespacedConfigMap({
      namespace: ns,
      name: 'db-ca',
      body: [{ op: 'replace', path: '/data/ca.crt', value: other.certPem }],
    });
    await untilStates(ns, 'tls', all('Unhealthy'), 'a certificate from another CA fails');
    expect((await status(ns, 'tls')).addresses?.[0]?.message).toMatch(
      /^health check failing: TLS: the certificate is not signed by caBundle/,
    );
    // A tenant's bundle is bounded: a value too large is not even kept, and a bundle with a
    // block that is no certificate is refused naming the block; the check says why it cannot run.
    const cannotRun = async (value: string, why: string): Promise<void> => {
      await core.patchNamespacedConfigMap({
        namespace: ns,
        name: 'db-ca',
        body: [{ op: 'replace', path: '/data/ca.crt', value }],
      });
      const message = await waitFor(why, async () => {
        const ready = (await status(ns, 'tls')).conditions?.find((c) => c.type === 'Ready');
        return ready?.message.includes(why) === true ? ready.message : undefined;
      });
      expect(message).toContain(`health check cannot run: caBundle: ConfigMap db-ca ${why}`);
    };
    await cannotRun(
      ca.certPem.repeat(Math.ceil((300 * 1024) / ca.certPem.length)),
      'cannot be read: key ca.crt is larger than 256 KiB, more than any check reads',
    );
    await cannotRun(
      `${ca.certPem}-----BEGIN CERTIFICATE-----\nMIIB\n`,
      'key ca.crt block 2 is not a complete PEM block',
    );
  }, 120_000);

  it('HTTPS sends a header from a labelled Secret, and its value reaches no status, Event or log', async () => {
    const ns = await createTestNamespace(kc, 'https');
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'db-ca', labels: label }, data: { 'ca.crt': ca.certPem } },
    });
    // Not labelled yet: outrigger does not read it, and says so.
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'db-token' }, stringData: { token: `${token}\n` } },
    });
    await create(
      ns,
      'web',
      {
        http: {
          port: 'p',
          scheme: 'HTTPS',
          path: '/health',
          serverName,
          caBundle: { configMapName: 'db-ca', key: 'ca.crt' },
          headers: [
            { name: 'X-Token', valueFrom: { secretKeyRef: { name: 'db-token', key: 'token' } } },
          ],
        },
      },
      8443,
    );
    const refused = await waitFor('the check refusing to run', async () => {
      const ready = (await status(ns, 'web')).conditions?.find((c) => c.type === 'Ready');
      return ready?.message.includes('health check cannot run') === true
        ? ready.message
        : undefined;
    });
    expect(refused).toContain(
      'headers[0] (X-Token): Secret db-token has no key token, or does not exist or lacks the label outrigger.dev/health-check: "true"',
    );
    await core.patchNamespacedSecret({
      namespace: ns,
      name: 'db-token',
      body: [{ op: 'add', path: '/metadata/labels', value: label }],
    });
    await untilStates(ns, 'web', all('Healthy'), 'the header sent once the Secret is labelled');
    // A wrong value: the server refuses it, and status says only the status code.
    await core.patchNamespacedSecret({
      namespace: ns,
      name: 'db-token',
      body: [
        { op: 'replace', path: '/data/token', value: Buffer.from('wrong').toString('base64') },
      ],
    });
    await untilStates(ns, 'web', all('Unhealthy'), 'the changed Secret used at once');
    expect((await status(ns, 'web')).addresses?.[0]?.message).toBe(
      'health check failing: HTTP 401',
    );
    const seen = servers.map((s) => readFileSync(s.proc.logPath, 'utf8'));
    expect(seen.every((l) => l.includes('https GET /health token ok'))).toBe(true);
    expect(seen.every((l) => l.includes('https GET /health token bad'))).toBe(true);
    const everything = [
      JSON.stringify(await status(ns, 'web')),
      JSON.stringify(await eventReasons(ns, 'web')),
      readFileSync(operator.logPath, 'utf8'),
    ].join('\n');
    expect(everything).not.toContain(token);
  }, 120_000);

  it('warns before a certificate expires: condition, Event and metric, and says when it is renewed', async () => {
    const ns = await createTestNamespace(kc, 'expiry');
    await create(ns, 'db', { tls: { port: 'p', serverName, insecureSkipVerify: true } }, 7443);
    await untilStates(ns, 'db', all('Healthy'), 'healthy with long-lived certificates');
    const [first] = servers;
    if (first === undefined) throw new Error('a server expected');
    // The first server's certificate is rotated to one that expires in 3 days (window: 10).
    const soon = await writeCert(first.dir, first.ip, new Date(Date.now() + 3 * day));
    process.kill(first.proc.pid, 'SIGHUP');
    const cond = await waitFor('CertificateExpiringSoon True', async () => {
      const c = (await status(ns, 'db')).conditions?.find(
        (x) => x.type === 'CertificateExpiringSoon',
      );
      return c?.status === 'True' ? c : undefined;
    });
    expect(cond.reason).toBe('CertificateExpiresSoon');
    expect(cond.message).toBe(
      `1 of 2 certificates expire within 240h: ${first.ip} at ${new Date(soon).toISOString()}`,
    );
    await waitFor('the Warning Event', async () =>
      (await eventReasons(ns, 'db')).some((e) => e.startsWith('CertificateExpiresSoon: '))
        ? true
        : undefined,
    );
    expect(
      await operator.metric('outrigger_backend_certificate_expiration_timestamp_seconds', {
        namespace: ns,
        name: 'db',
      }),
    ).toBe(soon / 1000);
    // Renewed: the condition turns False and a Normal Event says so.
    await writeCert(first.dir, first.ip, new Date(Date.now() + 60 * day));
    process.kill(first.proc.pid, 'SIGHUP');
    await waitFor('CertificateExpiringSoon False again', async () =>
      (await status(ns, 'db')).conditions?.find((x) => x.type === 'CertificateExpiringSoon')
        ?.status === 'False'
        ? true
        : undefined,
    );
    await waitFor('the CertificateRenewed Event', async () =>
      (await eventReasons(ns, 'db')).some((e) => e.startsWith('CertificateRenewed: '))
        ? true
        : undefined,
    );
  }, 120_000);
});
