// The chart's lifecycle with real Helm while outrigger runs as the chart's ServiceAccount: install
// of the previous chart built from this repository (CRDs from its crds/ directory), the documented
// move to chart-managed CRDs and `helm upgrade` across the CRD change, `helm rollback` to the
// previous chart, `helm uninstall` while the operator still runs (RBAC, the ServiceAccount and so
// its token go first), and a reinstall. Through every step a tenant's Service must keep its last
// published state: witnessed from the API server (a poll of the slices and the Endpoints, and the
// resourceVersions of the tenant's objects), not from outrigger's own counters.
//
// The data path under a real kubelet, with traffic, is the real-node suite's; here the chart and
// the CRDs are what changes.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { effectivePolicyName, policyName, policyPlural } from '../src/api/policy.ts';
import { ensureHelm } from './harness/binaries.ts';
import { createGrant } from './harness/crd.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { createTestNamespace, serviceAccountKubeconfig, waitFor } from './helpers.ts';
import { describeUnless, localOnly } from './skips.ts';

const chartDir = fileURLToPath(new URL('../charts/outrigger', import.meta.url));
/**
 * The chart as it was at 8f194d9, the last commit before the CRDs became templates of the chart
 * (`helm package` of charts/outrigger there): the version a rollback must reach.
 */
const previousChart = fileURLToPath(
  new URL('./fixtures/outrigger-chart-8f194d9.tgz', import.meta.url),
);
const local = describeUnless(localOnly);
const release = 'outrigger';
const releaseNs = 'outrigger-system';
const crdNames = ['externalbackends.outrigger.dev', 'externalbackendpolicies.outrigger.dev'];
const label = 'outrigger-e2e/lifecycle';
const rules = [
  {
    name: 'lifecycle',
    namespaceSelector: { matchExpressions: [{ key: label, operator: 'Exists' }] },
    cidrs: ['198.51.100.0/24'],
  },
];
// Documentation addresses with no health check: nothing is ever sent to them.
const addresses = ['198.51.100.10', '198.51.100.11'];

let cluster: Cluster;
let kc: KubeConfig;
let helmBin: string;
let ns: string;
let operators = 0;

function helm(args: readonly string[]): string {
  // No image is published: a user names one (the chart refuses to render without it).
  const image = ['install', 'upgrade'].includes(args[0] ?? '')
    ? ['--set=image.repository=registry.example/outrigger']
    : [];
  const r = spawnSync(helmBin, [...args, ...image, `--kubeconfig=${cluster.kubeconfigPath}`], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`helm ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

function kubectl(args: readonly string[]): void {
  const r = spawnSync(cluster.kubectl, [`--kubeconfig=${cluster.kubeconfigPath}`, ...args], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed:\n${r.stderr}`);
}

async function runOperator(): Promise<OperatorProcess> {
  const sa = await serviceAccountKubeconfig(kc, releaseNs, release, cluster.dir ?? '/tmp');
  return startOperator(
    sa,
    [
      '--leader-elect',
      `--leader-election-namespace=${releaseNs}`,
      '--leader-election-id=outrigger-leader',
      '--leader-elect-lease-duration=4s',
      '--leader-elect-renew-deadline=3s',
      '--leader-elect-retry-period=500ms',
    ],
    join(cluster.dir ?? '/tmp', `lifecycle-${String(++operators)}.log`),
    { installCrd: false },
  );
}

/** What a tenant's client sees: the published addresses and each object's resourceVersion. */
async function published(): Promise<{ ips: string[]; versions: string[] }> {
  const slices = await kc
    .makeApiClient(DiscoveryV1Api)
    .listNamespacedEndpointSlice({ namespace: ns, labelSelector: 'kubernetes.io/service-name=db' });
  const core = kc.makeApiClient(CoreV1Api);
  const ep = await core
    .readNamespacedEndpoints({ namespace: ns, name: 'db' })
    .catch(() => undefined);
  const svc = await core
    .readNamespacedService({ namespace: ns, name: 'db' })
    .catch(() => undefined);
  const ips = slices.items
    .flatMap((s) => (s.endpoints ?? []).filter((e) => e.conditions?.ready === true))
    .flatMap((e) => e.addresses)
    .sort();
  const epIPs = (ep?.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip)).sort();
  // Both views must agree: a reader of either sees the same servers.
  if (ips.join() !== epIPs.join()) return { ips: [], versions: [] };
  const versions = [
    ...slices.items.map(
      (s) => `slice ${s.metadata?.name ?? ''}@${s.metadata?.resourceVersion ?? ''}`,
    ),
    `endpoints@${ep?.metadata?.resourceVersion ?? 'absent'}`,
    `service@${svc?.metadata?.resourceVersion ?? 'absent'}`,
  ].sort();
  return { ips, versions };
}

interface Step {
  readonly step: string;
  readonly ms: number;
  readonly samples: number;
  readonly lost: number;
  readonly tenantWrites: number;
}
const steps: Step[] = [];
let baseline: string[] = [];

/**
 * Runs one lifecycle action while sampling what tenants see, then watches a further `settleMs`;
 * records the samples that lacked an address and how many of the tenant's objects changed.
 */
async function during(step: string, action: () => Promise<void>, settleMs = 5000): Promise<void> {
  let samples = 0;
  let lost = 0;
  const sampling = { on: true };
  const sampler = (async () => {
    while (sampling.on) {
      const p = await published();
      samples++;
      if (p.ips.join() !== addresses.join()) lost++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const t0 = Date.now();
  let ms: number;
  try {
    await action();
    ms = Date.now() - t0;
    await new Promise((r) => setTimeout(r, settleMs));
  } finally {
    sampling.on = false;
    await sampler;
  }
  const now = await published();
  const tenantWrites = now.versions.filter((v) => !baseline.includes(v)).length;
  steps.push({ step, ms, samples, lost, tenantWrites });
}

const objects = (): CustomObjectsApi => kc.makeApiClient(CustomObjectsApi);

async function crdKept(): Promise<boolean> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  for (const name of crdNames) {
    const c = await ext.readCustomResourceDefinition({ name });
    if (c.metadata?.annotations?.['helm.sh/resource-policy'] !== 'keep') return false;
  }
  return true;
}

beforeAll(async () => {
  helmBin = ensureHelm();
  if (process.env.USE_EXISTING_CLUSTER === 'true') return;
  cluster = await startCluster({ controllers: ['garbage-collector-controller'] });
  kc = cluster.kubeConfig();
}, 240_000);

afterAll(async () => {
  if (process.env.USE_EXISTING_CLUSTER !== 'true') await cluster.stop();
  if (steps.length > 0) {
    const rows = steps.map(
      (s) =>
        `${s.step.padEnd(58)} ${String(s.ms).padStart(6)} ms  ${String(s.lost).padStart(3)}/${String(s.samples)} samples short  ${String(s.tenantWrites)} tenant objects changed`,
    );
    console.log(`lifecycle with real Helm:\n${rows.join('\n')}`);
  }
});

local('the chart lifecycle with real Helm', () => {
  it('install, upgrade across the CRD change, rollback, uninstall and reinstall never touch a tenant', async () => {
    // 1. The previous chart, as an existing install has it: CRDs from its crds/ directory, the
    //    rules in its `cluster` object.
    helm([
      'install',
      release,
      previousChart,
      `--namespace=${releaseNs}`,
      '--create-namespace',
      `--set-json=addressPolicy.rules=${JSON.stringify(rules)}`,
    ]);
    let op = await runOperator();
    ns = await createTestNamespace(kc, 'tenant');
    await kc
      .makeApiClient(CoreV1Api)
      .patchNamespace(
        { name: ns, body: { metadata: { labels: { [label]: 'yes' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    await objects().createNamespacedCustomObject({
      group,
      version,
      namespace: ns,
      plural,
      body: {
        apiVersion,
        kind: 'ExternalBackend',
        metadata: { name: 'db' },
        spec: { ports: [{ name: 'pg', port: 5432 }], addresses: addresses.map((ip) => ({ ip })) },
      },
    });
    const before = await waitFor(
      'both addresses published',
      async () => {
        const p = await published();
        return p.ips.join() === addresses.join() ? p : undefined;
      },
      30_000,
    );
    baseline = before.versions;

    // 2. The documented move to chart-managed CRDs, then `helm upgrade` to this chart, whose
    //    policy CRD changed (any number of grant objects; the "named cluster" rule is gone).
    await during('helm upgrade to chart-managed CRDs (after the move)', async () => {
      for (const crd of crdNames) {
        kubectl(['label', 'crd', crd, 'app.kubernetes.io/managed-by=Helm', '--overwrite']);
        kubectl([
          'annotate',
          'crd',
          crd,
          `meta.helm.sh/release-name=${release}`,
          `meta.helm.sh/release-namespace=${releaseNs}`,
          'helm.sh/resource-policy=keep',
          '--overwrite',
        ]);
      }
      kubectl([
        'annotate',
        'externalbackendpolicy',
        policyName,
        'helm.sh/resource-policy=keep',
        '--overwrite',
      ]);
      helm(['upgrade', release, chartDir, `--namespace=${releaseNs}`, '--reset-then-reuse-values']);
      return Promise.resolve();
    });
    // The new schema is served: a second grant object is admitted (the old CRD refused any
    // name but cluster), and outrigger compiles both for admission.
    await createGrant(kc, 'team-extra', [
      { name: 'none', namespaceSelector: {}, cidrs: ['203.0.113.0/24'] },
    ]);
    expect(await crdKept()).toBe(true);

    // 3. Roll back to the previous chart: Helm would delete the CRDs the old release does not
    //    template, and keeps them for their annotation; the old RBAC comes back.
    await during('helm rollback to the previous chart', async () => {
      helm(['rollback', release, '1', `--namespace=${releaseNs}`]);
      return Promise.resolve();
    });
    expect(await crdKept()).toBe(true);
    await objects().getClusterCustomObject({
      group,
      version,
      plural: policyPlural,
      name: policyName,
    });

    // 4. Forward again, then uninstall while the operator still runs: RBAC, the
    //    ServiceAccount (and so its token), the admission policy and the Deployment go; the
    //    operator is left running to see the 401s and 403s a leader still shutting down sees.
    await during('helm upgrade again (after the rollback)', async () => {
      helm(['upgrade', release, chartDir, `--namespace=${releaseNs}`, '--reset-then-reuse-values']);
      return Promise.resolve();
    });
    await waitFor(
      'the grants compiled into the object admission reads',
      () =>
        objects().getClusterCustomObject({
          group,
          version,
          plural: policyPlural,
          name: effectivePolicyName,
        }),
      30_000,
    ).catch((err: unknown) => {
      const log = readFileSync(join(cluster.dir ?? '/tmp', 'lifecycle-1.log'), 'utf8');
      throw new Error(
        `${String(err)}; the operator said:\n${log
          .split('\n')
          .filter((l) => /effective|forbidden|externalbackendpolic/i.test(l))
          .slice(-5)
          .join('\n')}`,
      );
    });
    await during(
      'helm uninstall (operator still running)',
      async () => {
        helm(['uninstall', release, `--namespace=${releaseNs}`, '--wait']);
        return Promise.resolve();
      },
      15_000,
    );
    // Kept: the CRDs, the backend, the chart's grant object and the compiled grants.
    expect(await crdKept()).toBe(true);
    const kept: unknown = await objects().getClusterCustomObject({
      group,
      version,
      plural: policyPlural,
      name: policyName,
    });
    expect(kept).toMatchObject({ spec: { rules } });
    await objects().getClusterCustomObject({
      group,
      version,
      plural: policyPlural,
      name: effectivePolicyName,
    });
    await objects().getNamespacedCustomObject({
      group,
      version,
      namespace: ns,
      plural,
      name: 'db',
    });
    await op.stop();

    // 5. Reinstall: Helm adopts the kept CRDs and grant object (their release annotations
    //    match), and the new operator finds everything as it should be.
    await during('helm install again, and a new operator', async () => {
      helm(['install', release, chartDir, `--namespace=${releaseNs}`]);
      op = await runOperator();
      await waitFor(
        'the reinstalled operator to report the backend',
        async () =>
          (await op.metric('outrigger_backend_ready_status', { namespace: ns, name: 'db' })) > 0
            ? true
            : undefined,
        30_000,
      );
    });
    await op.stop();
    helm(['uninstall', release, `--namespace=${releaseNs}`]);

    for (const s of steps) {
      expect({ step: s.step, lost: s.lost, tenantWrites: s.tenantWrites }).toEqual({
        step: s.step,
        lost: 0,
        tenantWrites: 0,
      });
      expect(s.samples).toBeGreaterThan(10);
    }
  }, 300_000);
});
