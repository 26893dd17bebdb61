// The Helm chart against a real control plane: lint and schema, the restricted Pod Security
// Standard checked by the API server's own admission, `helm install`, aggregated roles, and the RBAC
// proof — the operator runs as the chart's ServiceAccount (a TokenRequest token) through a scenario
// that uses every permission, and removing any single verb of any rule makes that scenario fail.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  NetworkingV1Api,
  PatchStrategy,
  setHeaderOptions,
  RbacAuthorizationV1Api,
  type V1ClusterRole,
  type V1PolicyRule,
  type V1Role,
} from '@kubernetes/client-node';
import { loadAll } from 'js-yaml';
import { apiVersion, group, plural, version } from '../src/externalbackend/schema.ts';
import { ensureHelm } from './harness/binaries.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { scrapeSecure, startOperator, type OperatorProcess } from './harness/operator.ts';
import { makeCa } from './harness/pki.ts';
import {
  createRunningPod,
  createTestNamespace,
  serviceAccountKubeconfig,
  waitFor,
  writePodStatus,
} from './helpers.ts';

const chartDir = fileURLToPath(new URL('../charts/outrigger', import.meta.url));
const local = process.env.USE_EXISTING_CLUSTER === 'true' ? describe.skip : describe;
const release = 'outrigger';
const releaseNs = 'outrigger-system';
const leaseName = 'outrigger-leader';
const kubeVersion = '1.36.3';

let cluster: Cluster;
let helmBin: string;
let kc: KubeConfig;
let core: CoreV1Api;
let rbac: RbacAuthorizationV1Api;
let saKubeconfig: string;
let installOutput: string;
/** The chart's generated metrics certificate, as its Secret holds it, mounted for the operator. */
let metricsCertDir: string;
let metricsCa: string;
/** A token of the ServiceAccount that metrics.readers binds to the metrics-reader ClusterRole. */
let scraperToken: string;
const scraper = 'scraper';

const scenarioLabel = 'outrigger-e2e/rbac-scenario';
const scenarioRules = [
  {
    name: 'rbac-scenario',
    namespaceSelector: { matchExpressions: [{ key: scenarioLabel, operator: 'Exists' }] },
    cidrs: ['192.0.2.0/24', '10.0.0.0/8', '172.16.0.0/12'],
  },
];

/** No image is published: every render names one, as a user must (the chart refuses without). */
const imageValue = '--set=image.repository=registry.example/outrigger';

function helm(args: readonly string[]): { status: number | null; out: string } {
  const withImage = ['install', 'upgrade', 'template', 'lint'].includes(args[0] ?? '')
    ? [...args, imageValue]
    : args;
  const r = spawnSync(helmBin, withImage, { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

beforeAll(async () => {
  helmBin = ensureHelm();
  if (process.env.USE_EXISTING_CLUSTER === 'true') return;
  cluster = await startCluster({ controllers: ['clusterrole-aggregation-controller'] });
  kc = cluster.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const installed = helm([
    'install',
    release,
    chartDir,
    `--kubeconfig=${cluster.kubeconfigPath}`,
    `--namespace=${releaseNs}`,
    '--create-namespace',
    // Every rule on: the proof below covers selector mode's `update` on Endpoints too.
    '--set=selectorMode=all',
    `--set-json=metrics.readers=${JSON.stringify([{ name: scraper, namespace: releaseNs }])}`,
  ]);
  if (installed.status !== 0) throw new Error(`helm install failed:\n${installed.out}`);
  installOutput = installed.out;
  // The chart's own grant object needs its CRD served, which the same install creates: the
  // rules come with the next upgrade, as NOTES say. The scenario's namespaces may register
  // documentation and private addresses (the private ones to prove they are still denied as
  // cluster ranges), chosen by a namespace label.
  const upgraded = helm([
    'upgrade',
    release,
    chartDir,
    `--kubeconfig=${cluster.kubeconfigPath}`,
    `--namespace=${releaseNs}`,
    '--reuse-values',
    `--set-json=addressPolicy.rules=${JSON.stringify(scenarioRules)}`,
  ]);
  if (upgraded.status !== 0) throw new Error(`helm upgrade failed:\n${upgraded.out}`);
  saKubeconfig = await serviceAccountKubeconfig(kc, releaseNs, release, cluster.dir ?? '/tmp');
  const tls = await core.readNamespacedSecret({
    namespace: releaseNs,
    name: `${release}-metrics-tls`,
  });
  const data = (k: string): string => Buffer.from(tls.data?.[k] ?? '', 'base64').toString('utf8');
  metricsCertDir = join(cluster.dir ?? '/tmp', 'chart-metrics-certs');
  mkdirSync(metricsCertDir, { recursive: true });
  writeFileSync(join(metricsCertDir, 'tls.crt'), data('tls.crt'));
  writeFileSync(join(metricsCertDir, 'tls.key'), data('tls.key'), { mode: 0o600 });
  metricsCa = data('ca.crt');
  await core.createNamespacedServiceAccount({
    namespace: releaseNs,
    body: { metadata: { name: scraper } },
  });
  scraperToken =
    (
      await core.createNamespacedServiceAccountToken({
        namespace: releaseNs,
        name: scraper,
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      })
    ).status?.token ?? '';
}, 240_000);

afterAll(async () => {
  if (process.env.USE_EXISTING_CLUSTER !== 'true') await cluster.stop();
});

local('the Helm chart', () => {
  it('lints clean, and its values schema rejects unknown and mistyped values', () => {
    const lint = helm(['lint', '--strict', chartDir, `--kube-version=${kubeVersion}`]);
    expect(lint.out).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(lint.status).toBe(0);
    // The monitoring toggles render and lint too: the PrometheusRule from rules/, the dashboard.
    const monitoring = helm([
      'lint',
      '--strict',
      chartDir,
      `--kube-version=${kubeVersion}`,
      '--set=metrics.prometheusRule.enabled=true',
      '--set=metrics.dashboard.enabled=true',
      '--set=metrics.serviceMonitor.enabled=true',
    ]);
    expect(monitoring.out).toContain('1 chart(s) linted, 0 chart(s) failed');
    const rendered = helm([
      'template',
      release,
      chartDir,
      `--kube-version=${kubeVersion}`,
      '--set=metrics.prometheusRule.enabled=true',
      '--set=metrics.dashboard.enabled=true',
    ]);
    const kinds = (
      loadAll(rendered.out) as { kind?: string; spec?: { groups?: unknown[] } }[]
    ).filter((d) => d.kind === 'PrometheusRule' || d.kind === 'ConfigMap');
    expect(kinds.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'PrometheusRule']);
    expect(kinds.find((d) => d.kind === 'PrometheusRule')?.spec?.groups).toHaveLength(3);
    for (const [set, message] of [
      ['replicaCount=2', undefined],
      ['replicas=2', "additional properties 'replicas' not allowed"],
      ['replicaCount=two', 'got string, want integer'],
      ['selectorMode=All', "at '/selectorMode': 'All' does not match pattern"],
      ['deniedCIDRs={10.0.0.0}', "at '/deniedCIDRs/0': '10.0.0.0' does not match pattern"],
      ['leaderElection.leaseDuration=15', 'got number, want string'],
      ['addressPolicy.rules[0].name=Bad Name', "at '/addressPolicy/rules/0'"],
    ] as const) {
      const r = helm([
        'template',
        release,
        chartDir,
        `--kube-version=${kubeVersion}`,
        `--set=${set}`,
      ]);
      if (message === undefined) expect(r.status).toBe(0);
      else expect(r.out).toContain(message);
    }
  });

  it('renders the optional ServiceMonitor and NetworkPolicy, and the API server accepts the policy', async () => {
    const r = helm([
      'template',
      release,
      chartDir,
      `--kube-version=${kubeVersion}`,
      `--namespace=${releaseNs}`,
      '--set=metrics.serviceMonitor.enabled=true',
      '--set=networkPolicy.enabled=true',
    ]);
    expect(r.status).toBe(0);
    const docs = loadAll(r.out) as { kind?: string; spec?: unknown }[];
    const monitor = docs.find((d) => d.kind === 'ServiceMonitor');
    // Secure by default: https, the chart's CA and the Service's name, Prometheus's own token.
    expect(monitor?.spec).toMatchObject({
      endpoints: [
        {
          port: 'metrics',
          interval: '30s',
          scheme: 'https',
          tlsConfig: {
            ca: { secret: { name: `${release}-metrics-tls`, key: 'ca.crt' } },
            serverName: `${release}-metrics.${releaseNs}.svc`,
          },
          bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
        },
      ],
    });
    const policy = docs.find((d) => d.kind === 'NetworkPolicy');
    expect(policy).toBeDefined();
    await kc.makeApiClient(NetworkingV1Api).createNamespacedNetworkPolicy({
      namespace: releaseNs,
      dryRun: 'All',
      body: policy as never,
    });
    // Off by default.
    const plain = helm(['template', release, chartDir, `--kube-version=${kubeVersion}`]);
    expect(plain.out).not.toMatch(/kind: (ServiceMonitor|NetworkPolicy)/);
  });

  it('renders a Deployment that the API server admits under the restricted Pod Security Standard', async () => {
    const r = helm([
      'template',
      release,
      chartDir,
      `--kube-version=${kubeVersion}`,
      `--namespace=${releaseNs}`,
    ]);
    expect(r.status).toBe(0);
    const docs = loadAll(r.out) as { kind?: string; spec?: { template?: { spec?: unknown } } }[];
    const deployment = docs.find((d) => d.kind === 'Deployment');
    const podSpec = deployment?.spec?.template?.spec as Record<string, unknown> | undefined;
    expect(podSpec).toBeDefined();
    const ns = `pss-${String(Date.now())}`;
    await core.createNamespace({
      body: {
        metadata: { name: ns, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
      },
    });
    // The chart's pod is admitted (server-side dry run: nothing is stored)...
    await core.createNamespacedPod({
      namespace: ns,
      dryRun: 'All',
      body: { metadata: { name: 'outrigger' }, spec: podSpec as never },
    });
    // ...and the namespace really enforces the profile: the same pod without its security context
    // is refused.
    const loose = { ...podSpec, securityContext: {} } as never;
    await expect(
      core.createNamespacedPod({
        namespace: ns,
        dryRun: 'All',
        body: { metadata: { name: 'loose' }, spec: loose },
      }),
    ).rejects.toThrow(/violates PodSecurity .*restricted:latest/);
  });

  it('installs with helm into the control plane: CRDs, policy, Deployment with 2 replicas, roles to grant', async () => {
    const apps = kc.makeApiClient(AppsV1Api);
    const d = await apps.readNamespacedDeployment({ name: release, namespace: releaseNs });
    expect(d.spec?.replicas).toBe(2);
    expect(d.spec?.template.spec?.serviceAccountName).toBe(release);
    expect(d.spec?.template.spec?.containers[0]?.args).toEqual(
      expect.arrayContaining(['--leader-elect=true', `--leader-election-id=${leaseName}`]),
    );
    // Helm installed the CRDs with the release (crds.enabled); they are served a moment later.
    await waitFor('ExternalBackends to be served', () =>
      kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group, version, plural }),
    );
    // The policy object from values, and the admission policy that enforces it.
    const policy = (await kc.makeApiClient(CustomObjectsApi).getClusterCustomObject({
      group,
      version,
      plural: 'externalbackendpolicies',
      name: 'cluster',
    })) as { spec?: { rules?: unknown[] } };
    expect(policy.spec?.rules).toEqual(scenarioRules);
    const vap = kc
      .makeApiClient(AdmissionregistrationV1Api)
      .readValidatingAdmissionPolicy({ name: `${release}-addresses` });
    await expect(vap).resolves.toBeDefined();
    // By default a namespace editor may NOT write ExternalBackends (they publish Endpoints, which
    // steer traffic); a viewer may read them; a RoleBinding to the chart's role grants one team.
    const authz = kc.makeApiClient(AuthorizationV1Api);
    const can = async (user: string, ns: string, verb: string): Promise<boolean> => {
      const r = await authz.createSubjectAccessReview({
        body: {
          spec: { user, resourceAttributes: { namespace: ns, verb, group, resource: plural } },
        },
      });
      return r.status?.allowed === true;
    };
    const bind = async (ns: string, user: string, role: string): Promise<void> => {
      await rbac.createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name: `${user}-${role}` },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
        },
      });
    };
    const ns = await createTestNamespace(kc, 'roles');
    await bind(ns, 'alice', 'edit');
    await bind(ns, 'vic', 'view');
    await waitFor('view to be aggregated', async () =>
      (await can('vic', ns, 'list')) ? true : undefined,
    );
    // Aggregation is asynchronous: give it time to (not) happen before asserting the negative.
    await new Promise((r) => setTimeout(r, 2000));
    expect(await can('alice', ns, 'create')).toBe(false);
    expect(await can('vic', ns, 'create')).toBe(false);
    await bind(ns, 'alice', `${release}-externalbackends-edit`);
    await waitFor('the grant', async () => ((await can('alice', ns, 'create')) ? true : undefined));
    expect(await can('alice', ns, 'create')).toBe(true);
    // NOTES name the release's real role and print no placeholder for the user to fill in.
    const notes = installOutput.slice(installOutput.indexOf('NOTES:'));
    expect(notes).toContain(`--clusterrole=${release}-externalbackends-edit`);
    expect(notes).toContain(`leader election on Lease ${leaseName}`);
    expect(notes).not.toMatch(/<[a-z-]+>|…|\.\.\./);
  }, 60_000);

  describe('RBAC', () => {
    const objects = () => kc.makeApiClient(CustomObjectsApi);
    const discovery = () => kc.makeApiClient(DiscoveryV1Api);
    let runs = 0;

    /**
     * Runs the operator as the chart's ServiceAccount through everything it does: an ExternalBackend
     * (Service, Endpoints and EndpointSlice created; status; an Event), a rename (the old ones
     * deleted), a port change (patches), selector mode (Endpoints created, updated on a readiness
     * flip) and the leader lease (created, read, renewed). Resolves with what went wrong, if anything.
     */
    async function scenario(): Promise<string | undefined> {
      const n = ++runs;
      const logPath = join(cluster.dir ?? '/tmp', `rbac-${String(n)}.log`);
      await kc
        .makeApiClient(CoordinationV1Api)
        .deleteNamespacedLease({ namespace: releaseNs, name: leaseName })
        .catch(() => undefined);
      const ns = await createTestNamespace(kc, `rbac${String(n)}`);
      await core.patchNamespace(
        { name: ns, body: { metadata: { labels: { [scenarioLabel]: 'yes' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      let op: OperatorProcess | undefined;
      let exited = false;
      const hasExited = (): boolean => exited;
      const forbidden = (): string | undefined =>
        readFileSync(logPath, 'utf8')
          .split('\n')
          .find((l) => /forbidden/i.test(l));
      // Fails at once when the log shows a refused request, else after 10 s.
      const step = async <T>(what: string, fn: () => Promise<T | undefined>): Promise<T> => {
        const deadline = Date.now() + 10_000;
        for (;;) {
          const f = forbidden();
          if (f !== undefined) throw new Error(`${what}: forbidden: ${f.slice(0, 240)}`);
          const v = await fn().catch(() => undefined);
          if (v !== undefined) return v;
          if (Date.now() > deadline) throw new Error(`${what}: not reached within 10 s`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      // Each run compiles the grants afresh: a compiled object left by an earlier run would need
      // no write, and a missing verb would go unnoticed.
      await objects()
        .deleteClusterCustomObject({
          group,
          version,
          plural: 'externalbackendpolicies',
          name: 'outrigger-effective',
        })
        .catch(() => undefined);
      try {
        op = await startOperator(
          saKubeconfig,
          [
            '--leader-elect',
            `--leader-election-namespace=${releaseNs}`,
            `--leader-election-id=${leaseName}`,
            '--leader-elect-lease-duration=4s',
            '--leader-elect-renew-deadline=3s',
            '--leader-elect-retry-period=500ms',
            '--selector-mode=all',
            '--zap-log-level=debug',
            `--metrics-cert-path=${metricsCertDir}`,
          ],
          logPath,
          { installCrd: false, readyTimeoutMs: 0, secureMetrics: true },
        );
        op.exited.then(
          () => {
            exited = true;
          },
          () => {
            exited = true;
          },
        );
        const xb = (spec: Record<string, unknown>) => ({
          apiVersion,
          kind: 'ExternalBackend',
          metadata: { name: 'db' },
          spec,
        });
        // A documentation address and no health check: nothing is probed.
        const spec = { ports: [{ name: 'pg', port: 5432 }], addresses: [{ ip: '192.0.2.10' }] };
        await objects().createNamespacedCustomObject({
          group,
          version,
          namespace: ns,
          plural,
          body: xb(spec),
        });
        const slice = (name: string) =>
          discovery()
            .readNamespacedEndpointSlice({ namespace: ns, name })
            .catch(() => undefined);
        await step('the slice', () => slice('db-outrigger-ipv4'));
        await step('Ready in status', async () => {
          const o = (await objects().getNamespacedCustomObject({
            group,
            version,
            namespace: ns,
            plural,
            name: 'db',
          })) as {
            status?: { conditions?: { type: string; status: string }[] };
          };
          return o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
            ? true
            : undefined;
        });
        await step('the ServiceCreated event', async () => {
          const ev = await core.listNamespacedEvent({ namespace: ns });
          return ev.items.some((e) => e.reason === 'ServiceCreated') ? true : undefined;
        });
        // Rename the Service: the owned Service, Endpoints and slice under the old name go.
        const renamed = { ...spec, service: { name: 'db2' }, ports: [{ name: 'pg', port: 5433 }] };
        await objects().patchNamespacedCustomObject({
          group,
          version,
          namespace: ns,
          plural,
          name: 'db',
          body: [{ op: 'replace', path: '/spec', value: renamed }],
        });
        await step('the old objects deleted and the new ones written', async () => {
          const [oldSvc, oldEp, oldSlice, newSlice] = await Promise.all([
            core.readNamespacedService({ namespace: ns, name: 'db' }).catch(() => undefined),
            core.readNamespacedEndpoints({ namespace: ns, name: 'db' }).catch(() => undefined),
            slice('db-outrigger-ipv4'),
            slice('db2-outrigger-ipv4'),
          ]);
          return !oldSvc && !oldEp && !oldSlice && newSlice?.ports?.[0]?.port === 5433
            ? true
            : undefined;
        });
        // A port change on an existing backend: Service ports patched, Endpoints and slice applied.
        await objects().patchNamespacedCustomObject({
          group,
          version,
          namespace: ns,
          plural,
          name: 'db',
          body: [{ op: 'replace', path: '/spec/ports/0/port', value: 5434 }],
        });
        await step('the port change', async () => {
          const [svc, ep, s] = await Promise.all([
            core.readNamespacedService({ namespace: ns, name: 'db2' }),
            core.readNamespacedEndpoints({ namespace: ns, name: 'db2' }),
            slice('db2-outrigger-ipv4'),
          ]);
          return svc.spec?.ports?.[0]?.port === 5434 &&
            ep.subsets?.[0]?.ports?.[0]?.port === 5434 &&
            s?.ports?.[0]?.port === 5434
            ? true
            : undefined;
        });
        // Selector mode: Endpoints created, then updated when the pod turns ready.
        await createRunningPod(core, ns, 'web-1', { ip: '10.244.1.1', ready: false });
        await core.createNamespacedService({
          namespace: ns,
          body: {
            metadata: { name: 'web' },
            spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
          },
        });
        await step('selector-mode Endpoints', () =>
          core.readNamespacedEndpoints({ namespace: ns, name: 'web' }).catch(() => undefined),
        );
        await writePodStatus(core, ns, 'web-1', '10.244.1.1', true);
        await step('the Endpoints update', async () => {
          const ep = await core.readNamespacedEndpoints({ namespace: ns, name: 'web' });
          return ep.subsets?.[0]?.addresses?.length === 1 ? true : undefined;
        });
        // The cluster's own ranges are denied, discovered as this ServiceAccount: a ClusterIP (the
        // ServiceCIDR), a Node created now (its address and pod CIDR, seen through the watch).
        const node = `rbac-node-${String(n)}`;
        await core.createNode({
          body: { metadata: { name: node }, spec: { podCIDRs: [`10.244.${String(n)}.0/24`] } },
        });
        await core.replaceNodeStatus({
          name: node,
          body: {
            metadata: { name: node },
            status: { addresses: [{ type: 'InternalIP', address: `172.20.0.${String(n)}` }] },
          },
        });
        const steer = {
          ports: [{ name: 'http', port: 80 }],
          addresses: [
            { ip: '10.96.0.50' },
            { ip: `172.20.0.${String(n)}` },
            { ip: `10.244.${String(n)}.9` },
          ],
        };
        await objects().createNamespacedCustomObject({
          group,
          version,
          namespace: ns,
          plural,
          body: { ...xb(steer), metadata: { name: 'steer' } },
        });
        await step('ClusterIP, node and pod addresses denied as cluster ranges', async () => {
          const o = (await objects().getNamespacedCustomObject({
            group,
            version,
            namespace: ns,
            plural,
            name: 'steer',
          })) as { status?: { addresses?: { state?: string; message?: string }[] } };
          const m = (o.status?.addresses ?? []).map((a) => `${a.state ?? ''} ${a.message ?? ''}`);
          return m.length === 3 &&
            m[0]?.includes('ServiceCIDR kubernetes') &&
            m[1]?.includes(`address of Node ${node}`) &&
            m[2]?.includes(`pod CIDR of Node ${node}`)
            ? true
            : undefined;
        });
        await core.deleteNode({ name: node });
        // A check that names a labelled Secret (a header value) and ConfigMap (a CA bundle): the
        // backend says it cannot run until both exist, then reads them through its watches. Its
        // address is a ClusterIP, denied: nothing is probed.
        const readStatus = async (xbName: string) =>
          (
            (await objects().getNamespacedCustomObject({
              group,
              version,
              namespace: ns,
              plural,
              name: xbName,
            })) as { status?: { conditions?: { type: string; message?: string }[] } }
          ).status?.conditions?.find((c) => c.type === 'Ready')?.message;
        await objects().createNamespacedCustomObject({
          group,
          version,
          namespace: ns,
          plural,
          body: {
            ...xb({
              ports: [{ name: 'https', port: 443 }],
              addresses: [{ ip: '10.96.0.51' }],
              healthCheck: {
                http: {
                  port: 'https',
                  scheme: 'HTTPS',
                  headers: [
                    {
                      name: 'X-Token',
                      valueFrom: { secretKeyRef: { name: 'probe-token', key: 'token' } },
                    },
                  ],
                  caBundle: { configMapName: 'probe-ca', key: 'ca.crt' },
                },
              },
            }),
            metadata: { name: 'checked' },
          },
        });
        await step('a check that cannot read what it names says so', async () =>
          (await readStatus('checked'))?.includes('health check cannot run') === true
            ? true
            : undefined,
        );
        const label = { 'outrigger.dev/health-check': 'true' };
        await core.createNamespacedSecret({
          namespace: ns,
          body: {
            metadata: { name: 'probe-token', labels: label },
            stringData: { token: 't0k3n-value' },
          },
        });
        await core.createNamespacedConfigMap({
          namespace: ns,
          body: {
            metadata: { name: 'probe-ca', labels: label },
            // A real certificate: a bundle of anything else is refused, and the check says so.
            data: { 'ca.crt': (await makeCa()).certPem },
          },
        });
        await step('the check reads the labelled Secret and ConfigMap as they appear', async () => {
          const m = await readStatus('checked');
          return m !== undefined && !m.includes('health check cannot run') ? true : undefined;
        });
        // Read at debug level, the Secret's value is still in no log line.
        if (readFileSync(logPath, 'utf8').includes('t0k3n-value'))
          return "the Secret's value reached the log";
        // The grants compiled into the one object the admission policy reads (a server-side
        // apply of that object only).
        await step('the grants compiled for admission', async () => {
          const eff = (await objects().getClusterCustomObject({
            group,
            version,
            plural: 'externalbackendpolicies',
            name: 'outrigger-effective',
          })) as { spec?: { rules?: unknown[] } };
          return Array.isArray(eff.spec?.rules) ? true : undefined;
        });
        // Secure metrics, with the chart's certificate, verified as the ServiceMonitor does (its
        // CA, the Service's name): the scraper's token reviewed (TokenReview), its grant checked
        // (SubjectAccessReview) by the operator as the chart's ServiceAccount.
        const scrape = (token?: string) =>
          scrapeSecure(op?.metricsUrl ?? '', {
            ca: metricsCa,
            servername: `${release}-metrics.${releaseNs}.svc`,
            ...(token !== undefined && { token }),
          });
        await step('metrics refused without a token', async () =>
          (await scrape()).status === 401 ? true : undefined,
        );
        await step("metrics served to metrics.readers' ServiceAccount", async () => {
          const r = await scrape(scraperToken);
          return r.status === 200 && /^outrigger_build_info/m.test(r.body) ? true : undefined;
        });
        await step('metrics refused to a token without the grant', async () =>
          (await scrape(await tokenOf(release))).status === 403 ? true : undefined,
        );
        // The lease was renewed at least twice.
        await step('lease renewals', async () => {
          const l = await kc
            .makeApiClient(CoordinationV1Api)
            .readNamespacedLease({ namespace: releaseNs, name: leaseName });
          const renewed =
            new Date(String(l.spec?.renewTime)).getTime() -
            new Date(String(l.spec?.acquireTime)).getTime();
          return renewed >= 1000 ? true : undefined;
        });
        const f = forbidden();
        if (f !== undefined) return `forbidden: ${f.slice(0, 300)}`;
        if (hasExited()) return 'the operator exited';
        return undefined;
      } catch (err) {
        return err instanceof Error ? err.message.split('\n')[0] : String(err);
      } finally {
        await op?.kill();
      }
    }

    /** A fresh token of a ServiceAccount in the release's namespace (never reviewed before). */
    async function tokenOf(sa: string): Promise<string> {
      const t = await core.createNamespacedServiceAccountToken({
        namespace: releaseNs,
        name: sa,
        body: { spec: { audiences: [], expirationSeconds: 600 } },
      });
      return t.status?.token ?? '';
    }

    it("is sufficient: as the chart's ServiceAccount, the operator does everything it needs", async () => {
      expect(await scenario()).toBeUndefined();
    }, 90_000);

    it('is minimal: without any single verb of any rule, something breaks', async () => {
      const roles: { kind: 'ClusterRole' | 'Role'; role: V1ClusterRole | V1Role }[] = [
        { kind: 'ClusterRole', role: await rbac.readClusterRole({ name: release }) },
        {
          kind: 'ClusterRole',
          role: await rbac.readClusterRole({ name: `${release}-metrics-auth` }),
        },
        {
          kind: 'Role',
          role: await rbac.readNamespacedRole({
            namespace: releaseNs,
            name: `${release}-leader-election`,
          }),
        },
      ];
      const put = async (
        kind: 'ClusterRole' | 'Role',
        role: V1ClusterRole | V1Role,
        rules: V1PolicyRule[],
      ) => {
        const body = {
          ...role,
          metadata: { ...role.metadata, resourceVersion: undefined },
          rules,
        } as never;
        if (kind === 'ClusterRole')
          await rbac.replaceClusterRole({ name: role.metadata?.name ?? '', body });
        else
          await rbac.replaceNamespacedRole({
            namespace: releaseNs,
            name: role.metadata?.name ?? '',
            body,
          });
      };
      const results: string[] = [];
      const unbroken: string[] = [];
      for (const { kind, role } of roles) {
        const rules = role.rules ?? [];
        for (const [i, rule] of rules.entries()) {
          for (const verb of rule.verbs) {
            const without = rules
              .map((r, j) => (j === i ? { ...r, verbs: r.verbs.filter((v) => v !== verb) } : r))
              .filter((r) => r.verbs.length > 0);
            await put(kind, role, without);
            // RBAC is served from the API server's informers; give them a moment.
            await new Promise((r) => setTimeout(r, 300));
            const what = `${kind} ${[...(rule.apiGroups ?? [])].join(',') || 'core'}/${(rule.resources ?? []).join(',')}${rule.resourceNames ? `[${rule.resourceNames.join(',')}]` : ''} ${verb}`;
            const broke = await scenario();
            results.push(`${what}: ${broke ?? 'NOTHING BROKE'}`);
            if (broke === undefined) unbroken.push(what);
            await put(kind, role, rules);
          }
        }
      }
      console.log(`removing one verb at a time:\n${results.join('\n')}`);
      expect(unbroken).toEqual([]);
      expect(results.length).toBeGreaterThan(20);
    }, 900_000);
  });
});
