// outrigger's alerts and dashboard, proven: promtool's unit tests of the chart's rule file, and a
// real Prometheus (built from the Go module proxy, on loopback) scraping a running outrigger: the
// alert for a backend whose servers all died fires, then resolves when they return, and every
// query of the dashboard returns data. Beside it Prometheus scrapes another operator that exports
// the same controller-runtime names, failing every way: none of outrigger's alerts fires for it.
// Last, outrigger stops and OutriggerDown fires.
import { spawnSync } from 'node:child_process';
import { createServer, type Server as HttpServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { ensureDataPlaneBinary } from './harness/binaries.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import {
  createBackendNetwork,
  netnsUnavailable,
  type BackendNetwork,
  type Server,
} from './harness/netns.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { makeCa, makeLeaf } from './harness/pki.ts';
import { freePort } from './harness/ports.ts';
import { ProcessGroup, tail, type ManagedProcess } from './harness/processes.ts';
import { jobPlaceholder, panels, renderDashboard } from './scripts/dashboard.ts';
import { createExternalBackend, fastTcpBackend, teardown, waitFor } from './helpers.ts';
import { describeUnless } from './skips.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const rulesFile = join(root, 'charts/outrigger/rules/outrigger.rules.yaml');
const probeServers = join(root, 'e2e/fixtures/probe-servers.ts');

describe('the alert rules (promtool)', () => {
  it('check clean and pass their unit tests (e2e/rules/outrigger.rules.test.yaml)', () => {
    const promtool = ensureDataPlaneBinary('promtool');
    const check = spawnSync(promtool, ['check', 'rules', rulesFile], { encoding: 'utf8' });
    expect(check.stdout + check.stderr).toContain('SUCCESS');
    expect(check.status).toBe(0);
    const test = spawnSync(promtool, ['test', 'rules', 'outrigger.rules.test.yaml'], {
      cwd: join(root, 'e2e/rules'),
      encoding: 'utf8',
    });
    expect(test.stdout + test.stderr).toContain('SUCCESS');
    expect(test.status).toBe(0);
  });

  it('the chart ships the dashboard exactly as generated (run `npm run generate`)', () => {
    expect(readFileSync(join(root, 'charts/outrigger/dashboards/outrigger.json'), 'utf8')).toBe(
      renderDashboard(),
    );
  });
});

const skipReason =
  process.env.USE_EXISTING_CLUSTER === 'true'
    ? 'needs its own control plane (backends live in network namespaces on this machine)'
    : netnsUnavailable();
const suite = describeUnless(skipReason);

let cluster: Cluster;
let net: BackendNetwork;
let operator: OperatorProcess;
let procs: ProcessGroup;
let prometheus: ManagedProcess;
let promUrl: string;
let otherOperator: HttpServer;
const servers: Server[] = [];

/**
 * Another controller-runtime operator in the same Prometheus: no leader, a reconcile stuck for 15
 * minutes, panics and API errors that grow on every scrape. Unscoped, outrigger's rules fire for it.
 */
function serveOtherOperator(): Promise<string> {
  let scrapes = 0;
  otherOperator = createServer((_req, res) => {
    scrapes++;
    res.setHeader('Content-Type', 'text/plain; version=0.0.4');
    res.end(
      [
        'leader_election_master_status{name="other-leader"} 0',
        'workqueue_longest_running_processor_seconds{controller="widget",name="widget"} 900',
        `controller_runtime_reconcile_panics_total{controller="widget"} ${String(scrapes)}`,
        `controller_runtime_reconcile_total{controller="widget",result="error"} ${String(scrapes * 10)}`,
        `controller_runtime_reconcile_errors_total{controller="widget"} ${String(scrapes * 10)}`,
        `rest_client_requests_total{code="500",method="GET"} ${String(scrapes * 10)}`,
        `outrigger_endpoints_conflicts_total ${String(scrapes)}`,
        '',
      ].join('\n'),
    );
  });
  return new Promise((resolve) => {
    otherOperator.listen(0, '127.0.0.1', () => {
      const addr = otherOperator.address();
      resolve(typeof addr === 'object' && addr !== null ? `127.0.0.1:${String(addr.port)}` : '');
    });
  });
}

beforeAll(async () => {
  if (skipReason !== undefined) {
    console.warn(`skipping the real-Prometheus tests: ${skipReason}`);
    return;
  }
  const bin = ensureDataPlaneBinary('prometheus');
  cluster = await startCluster();
  const dir = cluster.dir ?? '/tmp';
  net = createBackendNetwork(dir, 2);
  for (const ip of net.ipv4) servers.push(await net.serve(ip, 7000, 'tcp'));
  // A TLS server (port 7443) with a test-made certificate, for the certificate-expiry panel.
  const [tlsIp = ''] = net.ipv4;
  const certDir = join(dir, 'tls-server');
  mkdirSync(certDir, { recursive: true });
  const leaf = await makeLeaf(await makeCa(), { ips: [tlsIp] });
  writeFileSync(join(certDir, 'server.crt'), leaf.certPem);
  writeFileSync(join(certDir, 'server.key'), leaf.keyPem, { mode: 0o600 });
  writeFileSync(join(certDir, 'token'), 'unused');
  const tlsServer = net.run('probe-servers', process.execPath, [probeServers, tlsIp, certDir]);
  await waitFor(
    'the TLS server listening',
    () => Promise.resolve(readFileSync(tlsServer.logPath, 'utf8').includes('ready') || undefined),
    30_000,
  );
  // As the chart runs it: with leader election (the leader metric exists only then), and metrics
  // over HTTPS for tokens granted get on /metrics. Prometheus verifies the serving certificate
  // against its CA and presents its ServiceAccount's token, bound as the chart's metrics-reader
  // ClusterRole is meant to be bound.
  const metricsDir = join(dir, 'metrics-certs');
  mkdirSync(metricsDir, { recursive: true });
  const metricsCa = await makeCa('outrigger-metrics-ca');
  const metricsLeaf = await makeLeaf(metricsCa, { ips: ['127.0.0.1'] });
  writeFileSync(join(metricsDir, 'tls.crt'), metricsLeaf.certPem);
  writeFileSync(join(metricsDir, 'tls.key'), metricsLeaf.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'metrics-ca.crt'), metricsCa.certPem);
  const kc = cluster.kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({
    namespace: 'default',
    body: { metadata: { name: 'prometheus' } },
  });
  await rbac.createClusterRole({
    body: {
      metadata: { name: 'outrigger-metrics-reader' },
      rules: [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }],
    },
  });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: 'outrigger-metrics-reader' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'outrigger-metrics-reader',
      },
      subjects: [{ kind: 'ServiceAccount', name: 'prometheus', namespace: 'default' }],
    },
  });
  const promToken = await core.createNamespacedServiceAccountToken({
    namespace: 'default',
    name: 'prometheus',
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  writeFileSync(join(dir, 'prometheus.token'), promToken.status?.token ?? '', { mode: 0o600 });
  operator = await startOperator(
    cluster.kubeconfigPath,
    ['--leader-elect', '--leader-election-namespace=default', `--metrics-cert-path=${metricsDir}`],
    join(dir, 'outrigger.log'),
    { secureMetrics: true },
  );

  // The chart's rules as they are, but for their `for:` durations (minutes, proven by promtool
  // above), so that this test sees an alert fire within seconds.
  const rules = readFileSync(rulesFile, 'utf8').replaceAll(/^(\s+)for: \S+$/gm, '$1for: 3s');
  writeFileSync(join(dir, 'rules.yaml'), rules);
  const target = new URL(operator.metricsUrl).host;
  const other = await serveOtherOperator();
  // outrigger's job is named as the chart's ServiceMonitor names it for a release called outrigger
  // (its metrics Service), which is the matcher the rules and dashboard are written with.
  expect(jobPlaceholder).toBe('job="outrigger-metrics"');
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'rule_files: [rules.yaml]',
      'scrape_configs:',
      '  - job_name: outrigger-metrics',
      '    scheme: https',
      `    tls_config: { ca_file: ${join(dir, 'metrics-ca.crt')} }`,
      `    authorization: { credentials_file: ${join(dir, 'prometheus.token')} }`,
      `    static_configs: [{ targets: ['${target}'] }]`,
      '  - job_name: other-operator',
      `    static_configs: [{ targets: ['${other}'] }]`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  promUrl = `http://127.0.0.1:${String(port)}`;
  procs = new ProcessGroup(join(dir, 'prometheus'));
  procs.reapOnExit();
  prometheus = procs.start('prometheus', bin, [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${String(port)}`,
    '--log.level=warn',
  ]);
  await waitFor(
    'Prometheus to be ready',
    async () => {
      if (prometheus.hasExited()) throw new Error(tail(prometheus.logPath));
      return (await fetch(`${promUrl}/-/ready`)).ok || undefined;
    },
    60_000,
    200,
  );
}, 900_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  await teardown(
    () => operator.stop(),
    () => new Promise((resolve) => otherOperator.close(resolve)),
    () => procs.stopAll(),
    () => net.remove(),
    () => cluster.stop(),
  );
}, 60_000);

async function alerts(): Promise<{ labels: Record<string, string>; state: string }[]> {
  const body = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as {
    data: { alerts: { labels: Record<string, string>; state: string }[] };
  };
  return body.data.alerts;
}

async function firing(alertname: string): Promise<Record<string, string>[]> {
  return (await alerts())
    .filter((a) => a.labels.alertname === alertname && a.state === 'firing')
    .map((a) => a.labels);
}

async function query(expr: string): Promise<unknown[]> {
  const body = (await (
    await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`)
  ).json()) as { status: string; data?: { result: unknown[] }; error?: string };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error ?? body.status}`);
  return body.data?.result ?? [];
}

suite('on a real Prometheus scraping outrigger', () => {
  it('scrapes over HTTPS, verifying the CA, with a token that outrigger reviews once and then remembers', async () => {
    await waitFor(
      'the outrigger target up',
      async () => {
        const r = (await (await fetch(`${promUrl}/api/v1/targets`)).json()) as {
          data: { activeTargets: { scrapePool: string; scrapeUrl: string; health: string }[] };
        };
        const t = r.data.activeTargets.find((x) => x.scrapePool === 'outrigger-metrics');
        return t?.health === 'up' && t.scrapeUrl.startsWith('https://') ? true : undefined;
      },
      30_000,
      200,
    );
    // Scraped every second: one review, every later scrape answered from memory.
    await waitFor('scrapes answered from memory', async () =>
      (await query('outrigger_metrics_auth_requests_total{result="allowed",cached="true"} > 3'))
        .length > 0
        ? true
        : undefined,
    );
    expect(
      await query('outrigger_metrics_auth_requests_total{result="allowed",cached="false"}'),
    ).toEqual([expect.objectContaining({ value: [expect.any(Number), '1'] })]);
  }, 60_000);

  it('fires OutriggerBackendAllAddressesFailing when every server dies, and resolves when they return', async () => {
    await createExternalBackend(
      cluster.kubeConfig(),
      'default',
      'legacy',
      fastTcpBackend(net.ipv4, 7000),
    );
    await waitFor(
      'Prometheus to see the backend Ready',
      async () =>
        (await query('outrigger_backend_ready_status{name="legacy",status="True"} == 1')).length ===
          1 || undefined,
      60_000,
      500,
    );
    expect(await firing('OutriggerBackendAllAddressesFailing')).toEqual([]);

    const diedAt = Date.now();
    for (const s of servers.splice(0)) await s.stop();
    const alert = await waitFor(
      'the alert to fire',
      async () => (await firing('OutriggerBackendAllAddressesFailing'))[0],
      60_000,
      500,
    );
    console.log(
      `every server dead: OutriggerBackendAllAddressesFailing firing ${String(Date.now() - diedAt)} ms later (for: 3s here, 2m in the chart)`,
    );
    expect(alert).toMatchObject({
      namespace: 'default',
      name: 'legacy',
      reason: 'FailingOpen',
      severity: 'critical',
    });

    const backAt = Date.now();
    for (const ip of net.ipv4) servers.push(await net.serve(ip, 7000, 'tcp'));
    await waitFor(
      'the alert to resolve',
      async () =>
        (await firing('OutriggerBackendAllAddressesFailing')).length === 0 ? true : undefined,
      60_000,
      500,
    );
    console.log(`servers back: the alert resolved ${String(Date.now() - backAt)} ms later`);
  }, 180_000);

  it('every dashboard query returns data', async () => {
    const [tlsIp = ''] = net.ipv4;
    await createExternalBackend(cluster.kubeConfig(), 'default', 'certified', {
      ports: [{ name: 'tls', port: 7443 }],
      addresses: [{ ip: tlsIp }],
      healthCheck: { tls: { port: 'tls' }, intervalSeconds: 1, timeoutSeconds: 1 },
    });
    await waitFor(
      'Prometheus to see the certificate',
      async () =>
        (
          await query(
            'outrigger_backend_certificate_expiration_timestamp_seconds{name="certified"}',
          )
        ).length === 1 || undefined,
      60_000,
      500,
    );
    // rate() over 5m needs two samples; the scrape interval is 1 s.
    await delay(3000);
    const empty: string[] = [];
    for (const p of panels)
      for (const q of p.queries)
        if ((await query(q.expr)).length === 0) empty.push(`${p.title}: ${q.expr}`);
    expect(empty).toEqual([]);
  }, 60_000);

  it("fires none of outrigger's alerts for another operator's controller-runtime metrics", async () => {
    await waitFor(
      'Prometheus to scrape the other operator',
      async () => (await query('up{job="other-operator"} == 1')).length === 1 || undefined,
      30_000,
      500,
    );
    // Its rates need a few samples, and every rule here waits 3 s (for: 3s).
    await delay(8000);
    expect(await query('increase(controller_runtime_reconcile_panics_total[1m]) > 0')).not.toEqual(
      [],
    );
    const active = (await alerts()).filter(
      (a) =>
        a.labels.job === 'other-operator' ||
        a.labels.controller === 'widget' ||
        a.labels.name === 'other-leader',
    );
    expect(active).toEqual([]);
    expect(await firing('OutriggerEndpointsConflict')).toEqual([]);
    expect(await firing('OutriggerDown')).toEqual([]);
  }, 60_000);

  // Last: it stops outrigger.
  it('fires OutriggerDown when no replica is up', async () => {
    await operator.stop();
    const stoppedAt = Date.now();
    const alert = await waitFor(
      'OutriggerDown to fire',
      async () => (await firing('OutriggerDown'))[0],
      60_000,
      500,
    );
    expect(alert).toMatchObject({ alertname: 'OutriggerDown', severity: 'critical' });
    console.log(
      `outrigger stopped: OutriggerDown firing ${String(Date.now() - stoppedAt)} ms later (for: 3s here, 5m in the chart)`,
    );
  }, 90_000);
});
