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
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { labelEndpointsManagedBy, managerName } from '../src/api/names.ts';
import { ensureHelm } from './harness/binaries.ts';
import { kubectl } from './harness/crd.ts';
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
import { describeUnless, localOnly } from './skips.ts';

const chartDir = fileURLToPath(new URL('../charts/outrigger', import.meta.url));
const local = describeUnless(localOnly);
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

/**
 * The line among `lines` (the operator's log, the authorizer's reviews) that refuses `verb` on one
 * of `rule`'s resources, or undefined: only such a refusal proves the verb needed. The API
 * server's 403 names verb, resource and group; an informer's failed watch logs only "Forbidden",
 * under the resource's name, with "watch from" as what it retries; a missing finalizers grant is
 * refused as the owner reference that needs it.
 */
function refusal(lines: readonly string[], rule: V1PolicyRule, verb: string): string | undefined {
  const groups = rule.apiGroups ?? [''];
  return lines.find((raw) => {
    // JSON in JSON: the 403's body is quoted once or twice in a log line.
    const l = raw.replaceAll('\\', '');
    return (rule.resources ?? []).some(
      (res) =>
        groups.some((g) => l.includes(`cannot ${verb} resource "${res}" in API group "${g}"`)) ||
        (verb === 'watch' &&
          l.includes(`"informer":"${res}"`) &&
          l.includes('"err":"Error: Forbidden"') &&
          l.includes('"next":"watch from')) ||
        (verb === 'update' && res.endsWith('/finalizers') && l.includes("can't set finalizers on")),
    );
  });
}

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
    const authz = () => kc.makeApiClient(AuthorizationV1Api);
    const saUser = `system:serviceaccount:${releaseNs}:${release}`;
    const readerRole = `${release}-health-check-reader`;
    let runs = 0;

    /**
     * The modes the chart's RBAC has, each installed with every choice spelled out (an unset one
     * would keep the previous mode's, see _rbac.tpl) and proved on its own: what the operator does
     * in it is allowed, and no verb of it is spare.
     */
    interface Mode {
      readonly name: string;
      readonly sources: 'namespaced' | 'cluster';
      readonly podSelector: boolean;
      readonly selector: boolean;
      /** watchNamespaces' one namespace, fixed at install (namespaced RBAC). */
      readonly namespace?: string;
    }
    const watched = 'rbac-watched';
    const defaultMode: Mode = {
      name: 'default',
      sources: 'namespaced',
      podSelector: false,
      selector: false,
    };
    const modes: readonly Mode[] = [
      defaultMode,
      {
        name: 'cluster-wide Secret reads',
        sources: 'cluster',
        podSelector: false,
        selector: false,
      },
      {
        name: 'pods: podSelector and selector mode',
        sources: 'namespaced',
        podSelector: true,
        selector: true,
      },
      {
        name: 'namespaced (watchNamespaces)',
        sources: 'namespaced',
        podSelector: true,
        selector: true,
        namespace: watched,
      },
    ];
    const modeValues = (m: Mode): string[] => [
      ...modeChoices(m),
      `--set-json=addressPolicy.rules=${JSON.stringify(scenarioRules)}`,
      `--set-json=metrics.readers=${JSON.stringify([{ name: scraper, namespace: releaseNs }])}`,
    ];
    const modeChoices = (m: Mode): string[] => [
      `--set=rbac.healthCheckSources=${m.sources}`,
      `--set=podSelector.enabled=${String(m.podSelector)}`,
      `--set=selectorMode=${m.selector ? (m.namespace ?? 'all') : 'off'}`,
      `--set-json=watchNamespaces=${JSON.stringify(m.namespace === undefined ? [] : [m.namespace])}`,
    ];
    const operatorArgs = (m: Mode): string[] => [
      `--selector-mode=${m.selector ? (m.namespace ?? 'all') : 'off'}`,
      `--pod-selector=${String(m.podSelector)}`,
      `--watch-namespaces=${m.namespace ?? ''}`,
      `--health-check-reader-role=${readerRole}`,
    ];
    const upgradeTo = (values: readonly string[]): void => {
      const r = helm([
        'upgrade',
        release,
        chartDir,
        `--kubeconfig=${cluster.kubeconfigPath}`,
        `--namespace=${releaseNs}`,
        ...values,
      ]);
      if (r.status !== 0) throw new Error(`helm upgrade failed:\n${r.out}`);
    };
    const render = (values: readonly string[]): unknown[] => {
      const r = helm(['template', release, chartDir, `--kube-version=${kubeVersion}`, ...values]);
      if (r.status !== 0) throw new Error(`helm template failed:\n${r.out}`);
      return loadAll(r.out);
    };
    /**
     * What rendered roles grant the operator, one entry per (kind, group, resource, names, verb):
     * the roles for teams (`-externalbackends-edit` and `-view`) are not the operator's.
     */
    const grants = (docs: readonly unknown[]): Set<string> => {
      const out = new Set<string>();
      for (const d of docs as (V1Role & { kind?: string })[]) {
        if (d.kind !== 'ClusterRole' && d.kind !== 'Role') continue;
        if (/-externalbackends-(edit|view)$/.test(d.metadata?.name ?? '')) continue;
        for (const r of d.rules ?? [])
          for (const g of r.apiGroups ?? [''])
            for (const res of r.resources ?? [])
              for (const v of r.verbs)
                out.add(
                  `${d.kind} ${g || 'core'}/${res}${r.resourceNames ? `[${r.resourceNames.join(',')}]` : ''} ${v}`,
                );
      }
      return out;
    };
    const can = async (verb: string, resource: string, namespace: string): Promise<boolean> =>
      (
        await authz().createSubjectAccessReview({
          body: { spec: { user: saUser, resourceAttributes: { namespace, verb, resource } } },
        })
      ).status?.allowed === true;

    /** A fresh token of a ServiceAccount in the release's namespace (never reviewed before). */
    async function tokenOf(sa: string): Promise<string> {
      const t = await core.createNamespacedServiceAccountToken({
        namespace: releaseNs,
        name: sa,
        body: { spec: { audiences: [], expirationSeconds: 600 } },
      });
      return t.status?.token ?? '';
    }

    /** Empties the fixed namespace of what an earlier run left (no controller-manager runs). */
    async function emptyNamespace(ns: string): Promise<void> {
      const ignore = (): undefined => undefined;
      await objects()
        .deleteCollectionNamespacedCustomObject({ group, version, namespace: ns, plural })
        .catch(ignore);
      for (const svc of (await core.listNamespacedService({ namespace: ns })).items)
        await core
          .deleteNamespacedService({ namespace: ns, name: svc.metadata?.name ?? '' })
          .catch(ignore);
      await Promise.all([
        core.deleteCollectionNamespacedEndpoints({ namespace: ns }).catch(ignore),
        discovery().deleteCollectionNamespacedEndpointSlice({ namespace: ns }).catch(ignore),
        core.deleteCollectionNamespacedEvent({ namespace: ns }).catch(ignore),
        core.deleteCollectionNamespacedPod({ namespace: ns, gracePeriodSeconds: 0 }).catch(ignore),
        core.deleteCollectionNamespacedSecret({ namespace: ns }).catch(ignore),
        core.deleteCollectionNamespacedConfigMap({ namespace: ns }).catch(ignore),
        rbac
          .deleteNamespacedRoleBinding({ namespace: ns, name: 'team-grants-health-checks' })
          .catch(ignore),
      ]);
      await waitFor('the namespace emptied', async () =>
        (
          (await objects().listNamespacedCustomObject({
            group,
            version,
            namespace: ns,
            plural,
          })) as {
            items: unknown[];
          }
        ).items.length === 0 && (await core.listNamespacedPod({ namespace: ns })).items.length === 0
          ? true
          : undefined,
      );
    }

    /**
     * Runs the operator as the chart's ServiceAccount through everything it does in a mode: an
     * ExternalBackend (Service, Endpoints and EndpointSlice created; status; an Event), a rename
     * (the old ones deleted), a port change (patches), selector mode (Endpoints created, updated
     * on a readiness flip), podSelector (a pod published), the cluster's ranges (discovered and
     * denied), a check reading a labelled Secret and ConfigMap (where the namespace grants it:
     * refused with the RoleBinding command until it does) and the leader lease (created, read,
     * renewed). Resolves with what went wrong, if anything.
     */
    async function runScenario(m: Mode, found: string[]): Promise<string | undefined> {
      const n = ++runs;
      const logPath = join(cluster.dir ?? '/tmp', `rbac-${String(n)}.log`);
      await kc
        .makeApiClient(CoordinationV1Api)
        .deleteNamespacedLease({ namespace: releaseNs, name: leaseName })
        .catch(() => undefined);
      let ns: string;
      if (m.namespace === undefined) ns = await createTestNamespace(kc, `rbac${String(n)}`);
      else {
        ns = m.namespace;
        await emptyNamespace(ns);
      }
      await core.patchNamespace(
        { name: ns, body: { metadata: { labels: { [scenarioLabel]: 'yes' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      let op: OperatorProcess | undefined;
      let exited = false;
      const hasExited = (): boolean => exited;
      // Until the namespace grants reads of its Secrets and ConfigMaps, refusals of those are
      // what the scenario expects (namespaced sources); every other refusal fails it. A refusal
      // the API server answered before the grant held may be logged a little after (a busy
      // process, a buffered log): those logged within 5 s of it are expected too. (A verb the
      // grant lacks still fails the steps below: the check never reads what it names.)
      let expectedUntil = 0;
      const loggedAt = (l: string): number => {
        const ts = /"ts":"([^"]+)"/.exec(l)?.[1];
        return ts === undefined ? Number.POSITIVE_INFINITY : Date.parse(ts);
      };
      const refusals = (): string[] =>
        readFileSync(logPath, 'utf8')
          .split('\n')
          .filter(
            (l) =>
              /forbidden/i.test(l) &&
              !(loggedAt(l) < expectedUntil && /"informer":"(secrets|configmaps)"/.test(l)),
          );
      const forbidden = (): string | undefined => refusals()[0];
      // Fails at once when the log shows a refused request or the operator has exited (saying
      // its last words: a lost lease on a loaded machine is no refusal), else after 10 s.
      const step = async <T>(what: string, fn: () => Promise<T | undefined>): Promise<T> => {
        const deadline = Date.now() + 10_000;
        for (;;) {
          const f = forbidden();
          if (f !== undefined) throw new Error(`${what}: forbidden: ${f.slice(0, 240)}`);
          if (hasExited())
            throw new Error(
              `${what}: the operator exited: ${readFileSync(logPath, 'utf8').trimEnd().split('\n').at(-1)?.slice(0, 240) ?? ''}`,
            );
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
        if (m.sources === 'namespaced') expectedUntil = Number.POSITIVE_INFINITY;
        op = await startOperator(
          saKubeconfig,
          [
            '--leader-elect',
            `--leader-election-namespace=${releaseNs}`,
            `--leader-election-id=${leaseName}`,
            '--leader-elect-lease-duration=4s',
            '--leader-elect-renew-deadline=3s',
            '--leader-elect-retry-period=500ms',
            ...operatorArgs(m),
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
        if (m.selector) {
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
        }
        if (m.podSelector) {
          // podSelector: the ready pod published with a backend that selects it.
          await objects().createNamespacedCustomObject({
            group,
            version,
            namespace: ns,
            plural,
            body: {
              ...xb({
                ports: [{ name: 'http', port: 80 }],
                podSelector: { matchLabels: { app: 'web' } },
              }),
              metadata: { name: 'pods' },
            },
          });
          await step('the selected pod published', async () =>
            (await slice('pods-outrigger-ipv4'))?.endpoints?.some((e) =>
              e.addresses.includes('10.244.1.1'),
            ) === true
              ? true
              : undefined,
          );
        }
        // The cluster's own ranges are denied, discovered as this ServiceAccount: a ClusterIP (the
        // ServiceCIDR), a Node created now (its address and pod CIDR, seen through the watch).
        const node = `rbac-node-${String(n)}`;
        await core.createNode({
          body: { metadata: { name: node }, spec: { podCIDRs: [`10.245.${String(n)}.0/24`] } },
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
            { ip: `10.245.${String(n)}.9` },
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
          const msgs = (o.status?.addresses ?? []).map(
            (a) => `${a.state ?? ''} ${a.message ?? ''}`,
          );
          return msgs.length === 3 &&
            msgs[0]?.includes('ServiceCIDR kubernetes') &&
            msgs[1]?.includes(`address of Node ${node}`) &&
            msgs[2]?.includes(`pod CIDR of Node ${node}`)
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
        if (m.sources === 'namespaced') {
          // Not granted yet: the check says so, with the command that grants it; the team runs
          // it (its consent) and the operator picks the grant up without a restart.
          const grant = `kubectl create rolebinding outrigger-health-check-reader --namespace=${ns} --clusterrole=${readerRole} --serviceaccount=${releaseNs}:${release}`;
          let said: string | undefined;
          await step('a check its namespace has not granted says how to grant it', async () => {
            said = await readStatus('checked');
            return said?.includes(grant) === true ? true : undefined;
          }).catch((err: unknown) => {
            throw new Error(`${String(err)} (Ready says: ${said ?? 'nothing'})`);
          });
          await rbac.createNamespacedRoleBinding({
            namespace: ns,
            body: {
              metadata: { name: 'team-grants-health-checks' },
              roleRef: {
                apiGroup: 'rbac.authorization.k8s.io',
                kind: 'ClusterRole',
                name: readerRole,
              },
              subjects: [{ kind: 'ServiceAccount', name: release, namespace: releaseNs }],
            },
          });
          // A refusal still in flight when the grant lands is expected; none after the API
          // server answers that the grant holds (the proof removes verbs from it: then it never
          // does, and the steps below fail on the refusals).
          // A grant that never holds is refused by the API server's authorizer (the review says
          // which verb), worded as its 403s are so that the proof can tell which removal it was.
          const reads = ['secrets', 'configmaps'].flatMap((r) =>
            ['list', 'watch'].map((v) => ({ v, r })),
          );
          const held = await waitFor(
            'the grant to hold',
            async () =>
              (await Promise.all(reads.map(({ v, r }) => can(v, r, ns)))).every(Boolean) ||
              undefined,
            10_000,
          ).catch(() => false);
          if (!held) {
            const denied: string[] = [];
            for (const { v, r } of reads)
              if (!(await can(v, r, ns)))
                denied.push(
                  `SubjectAccessReview: forbidden: ${saUser} cannot ${v} resource "${r}" in API group "" in the namespace "${ns}"`,
                );
            found.push(...denied);
            return `the namespace's grant does not hold: ${denied.join('; ') || 'no refusal'}`;
          }
          expectedUntil = Date.now() + 5000;
        }
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
          const msg = await readStatus('checked');
          return msg !== undefined && !msg.includes('health check cannot run') ? true : undefined;
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
        // Read once the operator has stopped: every refusal it met, not only the first.
        found.push(...refusals());
      }
    }

    /** What went wrong in a mode's scenario, and every refusal met on the way (see refusal()). */
    async function scenario(m: Mode): Promise<{ reason: string; refusals: string[] } | undefined> {
      const found: string[] = [];
      const reason = await runScenario(m, found);
      return reason === undefined ? undefined : { reason, refusals: found };
    }

    it('grants a fresh install the least, and an upgrade keeps what the release had', async () => {
      const live = async () => {
        const cr = await rbac.readClusterRole({ name: release });
        const bound = await rbac
          .readClusterRoleBinding({ name: readerRole })
          .then(() => true)
          .catch(() => false);
        const args =
          (
            await kc
              .makeApiClient(AppsV1Api)
              .readNamespacedDeployment({ name: release, namespace: releaseNs })
          ).spec?.template.spec?.containers[0]?.args ?? [];
        return {
          annotations: {
            sources: cr.metadata?.annotations?.['outrigger.dev/health-check-sources'],
            pods: cr.metadata?.annotations?.['outrigger.dev/pod-selector'],
          },
          pods: (cr.rules ?? []).some((r) => r.resources?.includes('pods') === true),
          secrets: (cr.rules ?? []).some((r) => r.resources?.includes('secrets') === true),
          secretsBoundClusterWide: bound,
          podSelectorFlag: args.find((a) => a.startsWith('--pod-selector=')),
        };
      };
      // The install in beforeAll named neither choice: the least.
      expect(await live()).toEqual({
        annotations: { sources: 'namespaced', pods: 'false' },
        pods: false,
        secrets: false,
        secretsBoundClusterWide: false,
        podSelectorFlag: '--pod-selector=false',
      });
      // What the ServiceAccount may do, as `kubectl auth can-i --list` tells an administrator, in
      // a namespace that granted nothing: no Secret, ConfigMap or pod anywhere.
      const elsewhere = await createTestNamespace(kc, 'cani');
      const list = kubectl(cluster.kubeconfigPath, [
        'auth',
        'can-i',
        '--list',
        `--as=${saUser}`,
        `--namespace=${elsewhere}`,
      ]);
      console.log(`kubectl auth can-i --list --as=${saUser} (default install):\n${list}`);
      expect(list).not.toMatch(/^(secrets|configmaps|pods)\b/m);
      expect(list).toMatch(/^nodes\b/m);
      // A release installed by the chart before these choices existed: one ClusterRole that reads
      // pods and Secrets everywhere, and no annotations. Upgrading it without naming the choices
      // keeps both, so running checks and podSelector backends go on working.
      const cr = await rbac.readClusterRole({ name: release });
      await rbac.replaceClusterRole({
        name: release,
        body: {
          ...cr,
          metadata: { ...cr.metadata, annotations: {} },
          rules: [
            ...(cr.rules ?? []),
            {
              apiGroups: [''],
              resources: ['pods', 'secrets', 'configmaps'],
              verbs: ['list', 'watch'],
            },
          ],
        },
      });
      upgradeTo([`--set-json=addressPolicy.rules=${JSON.stringify(scenarioRules)}`]);
      const kept = {
        annotations: { sources: 'cluster', pods: 'true' },
        pods: true,
        secrets: false,
        secretsBoundClusterWide: true,
        podSelectorFlag: '--pod-selector=true',
      };
      expect(await live()).toEqual(kept);
      // And again: what the release has is now recorded, and kept.
      upgradeTo([`--set-json=addressPolicy.rules=${JSON.stringify(scenarioRules)}`]);
      expect(await live()).toEqual(kept);
      // Named explicitly, the least again.
      upgradeTo(modeValues(defaultMode));
      expect((await live()).annotations).toEqual({ sources: 'namespaced', pods: 'false' });
    }, 60_000);

    it('refuses podSelector at admission where pods are not granted, saying why', async () => {
      upgradeTo(modeValues(defaultMode));
      const ns = await createTestNamespace(kc, 'nopods');
      const err = await waitFor('the admission policy', async () => {
        try {
          await objects().createNamespacedCustomObject({
            group,
            version,
            namespace: ns,
            plural,
            body: {
              apiVersion,
              kind: 'ExternalBackend',
              metadata: { name: 'pods' },
              spec: {
                ports: [{ name: 'http', port: 80 }],
                podSelector: { matchLabels: { app: 'web' } },
              },
            },
          });
          await objects()
            .deleteNamespacedCustomObject({ group, version, namespace: ns, plural, name: 'pods' })
            .catch(() => undefined);
          return undefined;
        } catch (e) {
          return String((e as { body?: unknown }).body ?? e);
        }
      });
      expect(err).toContain('spec.podSelector is not enabled in this installation');
    }, 60_000);

    it('grants no verb that no mode needs: every rendering of the chart stays within the proved modes', () => {
      const proved = new Set<string>();
      for (const m of modes) for (const g of grants(render(modeChoices(m)))) proved.add(g);
      const spare: string[] = [];
      for (const sources of ['namespaced', 'cluster'])
        for (const podSelector of ['true', 'false'])
          for (const selectorMode of ['off', 'all', 'team-a', 'team-b'])
            for (const wn of [[], ['team-a'], ['team-a', 'default']]) {
              const values = [
                `--set=rbac.healthCheckSources=${sources}`,
                `--set=podSelector.enabled=${podSelector}`,
                `--set=selectorMode=${selectorMode}`,
                `--set-json=watchNamespaces=${JSON.stringify(wn)}`,
              ];
              for (const g of grants(render(values)))
                if (!proved.has(g)) spare.push(`${values.join(' ')}: ${g}`);
            }
      expect(spare).toEqual([]);
    }, 120_000);

    // The proof removes each verb of each role in turn and runs the mode's scenario: something must
    // break. By default a verb of a rule already proved needed in an earlier mode is not proved
    // again, whatever role holds it (the namespaced mode's Roles are the same rules, from the same
    // template, as the cluster-wide ones), so CI runs about one scenario per distinct verb; each
    // mode is still proved sufficient. RBAC_PROOF=full proves every verb of every role of every
    // mode (about four times as long).
    const full = process.env.RBAC_PROOF === 'full';
    const provedAlready = new Set<string>();
    for (const m of modes) {
      describe(`mode: ${m.name}`, () => {
        beforeAll(async () => {
          if (m.namespace !== undefined)
            await core
              .createNamespace({ body: { metadata: { name: m.namespace } } })
              .catch(() => undefined);
          upgradeTo(modeValues(m));
          saKubeconfig = await serviceAccountKubeconfig(
            kc,
            releaseNs,
            release,
            cluster.dir ?? '/tmp',
          );
          // The API server applies a changed ValidatingAdmissionPolicy a moment after the upgrade
          // returns, and the operator starts in well under a second: until the write guard of this
          // mode is in force, its first selector-mode write is refused by the last mode's guard,
          // a refusal the scenario rightly counts. Wait until the guard admits (dry run, as the
          // ServiceAccount) the write this mode allows.
          if (m.selector) {
            const sa = new KubeConfig();
            sa.loadFromFile(saKubeconfig);
            const saCore = sa.makeApiClient(CoreV1Api);
            await waitFor('the write guard of this mode', async () => {
              try {
                await saCore.createNamespacedEndpoints({
                  namespace: m.namespace ?? releaseNs,
                  dryRun: 'All',
                  body: {
                    metadata: {
                      name: 'write-guard-ready',
                      labels: { [labelEndpointsManagedBy]: managerName },
                    },
                  },
                });
                return true;
              } catch {
                return undefined;
              }
            });
          }
        }, 60_000);

        it("is sufficient: as the chart's ServiceAccount, the operator does everything it needs", async () => {
          expect(await scenario(m)).toBeUndefined();
        }, 120_000);

        it('is minimal: without any single verb of any rule, something breaks', async () => {
          const started = Date.now();
          const roles: {
            kind: 'ClusterRole' | 'Role';
            namespace?: string;
            role: V1ClusterRole | V1Role;
          }[] = [
            { kind: 'ClusterRole', role: await rbac.readClusterRole({ name: release }) },
            { kind: 'ClusterRole', role: await rbac.readClusterRole({ name: readerRole }) },
            {
              kind: 'ClusterRole',
              role: await rbac.readClusterRole({ name: `${release}-metrics-auth` }),
            },
            {
              kind: 'Role',
              namespace: releaseNs,
              role: await rbac.readNamespacedRole({
                namespace: releaseNs,
                name: `${release}-leader-election`,
              }),
            },
          ];
          if (m.namespace !== undefined)
            for (const namespace of [m.namespace, 'default'])
              roles.push({
                kind: 'Role',
                namespace,
                role: await rbac.readNamespacedRole({ namespace, name: release }),
              });
          const put = async (r: (typeof roles)[number], rules: V1PolicyRule[]) => {
            const body = {
              ...r.role,
              metadata: { ...r.role.metadata, resourceVersion: undefined },
              rules,
            } as never;
            if (r.kind === 'ClusterRole')
              await rbac.replaceClusterRole({ name: r.role.metadata?.name ?? '', body });
            else
              await rbac.replaceNamespacedRole({
                namespace: r.namespace ?? '',
                name: r.role.metadata?.name ?? '',
                body,
              });
          };
          const results: string[] = [];
          const unbroken: string[] = [];
          const unproved: string[] = [];
          for (const r of roles) {
            const rules = r.role.rules ?? [];
            for (const [i, rule] of rules.entries()) {
              for (const verb of rule.verbs) {
                const what = `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.role.metadata?.name ?? ''}: ${[...(rule.apiGroups ?? [])].join(',') || 'core'}/${(rule.resources ?? []).join(',')}${rule.resourceNames ? `[${rule.resourceNames.join(',')}]` : ''} ${verb}`;
                const key = JSON.stringify([
                  rule.apiGroups,
                  rule.resources,
                  rule.resourceNames,
                  verb,
                ]);
                if (!full && provedAlready.has(key)) continue;
                const without = rules
                  .map((x, j) => (j === i ? { ...x, verbs: x.verbs.filter((v) => v !== verb) } : x))
                  .filter((x) => x.verbs.length > 0);
                await put(r, without);
                // RBAC is served from the API server's informers; give them a moment.
                await new Promise((res) => setTimeout(res, 300));
                let broke = await scenario(m);
                // Anything but a refusal of this verb is no proof: run once more before calling
                // it a failure, so that one flake (a lease lost to a loaded machine) costs one
                // scenario, not the test.
                if (broke !== undefined && refusal(broke.refusals, rule, verb) === undefined) {
                  results.push(`${what}: ${broke.reason} (no refusal of this verb; again)`);
                  broke = await scenario(m);
                }
                const proof = broke && refusal(broke.refusals, rule, verb);
                results.push(
                  `${what}: ${broke === undefined ? 'NOTHING BROKE' : `${broke.reason}${proof === undefined ? ' (NOT A REFUSAL OF THIS VERB)' : ''}`}`,
                );
                if (broke === undefined) unbroken.push(what);
                else if (proof === undefined)
                  // A timeout, a flake, a refusal of something else: no proof that this verb is
                  // needed, and a reason to look.
                  unproved.push(`${what}: ${broke.reason}`);
                else provedAlready.add(key);
                await put(r, rules);
              }
            }
          }
          console.log(
            `mode ${m.name}: removing one verb at a time (${String(results.length)} runs, ${String(Math.round((Date.now() - started) / 1000))} s):\n${results.join('\n')}`,
          );
          expect(unbroken).toEqual([]);
          expect(unproved).toEqual([]);
        }, 1_800_000);
      });
    }
  });
});
