// `helm uninstall` and a reinstall, with real Helm, while the operator runs as the chart's
// ServiceAccount: tenants' Services, Endpoints and EndpointSlices must keep their last published
// state whatever order Helm deletes things in (it removes RBAC before the kinds it does not know,
// and the ServiceAccount's token stops working), the chart's grant object is kept, and a reinstall
// adopts what exists without writing to it. Witnessed from the API server (resourceVersions and a
// watch-free poll of the objects), not from outrigger's own counters.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { apiVersion, group, plural, version } from '../src/externalbackend/schema.ts';
import { effectivePolicyName, policyName, policyPlural } from '../src/policy/schema.ts';
import { ensureHelm } from './harness/binaries.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { createTestNamespace, serviceAccountKubeconfig, waitFor } from './helpers.ts';

const chartDir = fileURLToPath(new URL('../charts/outrigger', import.meta.url));
const local = process.env.USE_EXISTING_CLUSTER === 'true' ? describe.skip : describe;
const release = 'outrigger';
const releaseNs = 'outrigger-system';
const label = 'outrigger-e2e/uninstall';
const rules = [
  {
    name: 'uninstall',
    namespaceSelector: { matchExpressions: [{ key: label, operator: 'Exists' }] },
    cidrs: ['198.51.100.0/24'],
  },
];
// Documentation addresses with no health check: nothing is ever sent to them.
const addresses = ['198.51.100.10', '198.51.100.11'];

let cluster: Cluster;
let kc: KubeConfig;
let helmBin: string;

function helm(args: readonly string[]): string {
  const r = spawnSync(helmBin, [...args, `--kubeconfig=${cluster.kubeconfigPath}`], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`helm ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

const install = (): string =>
  helm([
    'install',
    release,
    chartDir,
    `--namespace=${releaseNs}`,
    '--create-namespace',
    `--set-json=addressPolicy.rules=${JSON.stringify(rules)}`,
  ]);

async function runOperator(n: number): Promise<OperatorProcess> {
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
    join(cluster.dir ?? '/tmp', `uninstall-${String(n)}.log`),
    { installCrd: false },
  );
}

/** What a tenant's client sees: the published addresses and each object's resourceVersion. */
async function published(ns: string): Promise<{ ips: string[]; versions: string[] }> {
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

beforeAll(async () => {
  helmBin = ensureHelm();
  if (process.env.USE_EXISTING_CLUSTER === 'true') return;
  cluster = await startCluster({ controllers: ['garbage-collector-controller'] });
  kc = cluster.kubeConfig();
}, 240_000);

afterAll(async () => {
  if (process.env.USE_EXISTING_CLUSTER !== 'true') await cluster.stop();
});

local('helm uninstall and reinstall', () => {
  it('keeps every tenant served through an uninstall, and a reinstall adopts without a write', async () => {
    install();
    let op = await runOperator(1);
    const ns = await createTestNamespace(kc, 'tenant');
    await kc
      .makeApiClient(CoreV1Api)
      .patchNamespace(
        { name: ns, body: { metadata: { labels: { [label]: 'yes' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    const objects = kc.makeApiClient(CustomObjectsApi);
    await objects.createNamespacedCustomObject({
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
        const p = await published(ns);
        return p.ips.join() === addresses.join() ? p : undefined;
      },
      30_000,
    );

    // The grants compiled for admission before anything is removed.
    await waitFor('the grants compiled into the object admission reads', () =>
      objects.getClusterCustomObject({
        group,
        version,
        plural: policyPlural,
        name: effectivePolicyName,
      }),
    ).catch((err: unknown) => {
      const log = readFileSync(join(cluster.dir ?? '/tmp', 'uninstall-1.log'), 'utf8');
      throw new Error(
        `${String(err)}; the operator said:\n${log
          .split('\n')
          .filter((l) => /effective|forbidden|externalbackendpolic/i.test(l))
          .slice(-5)
          .join('\n')}`,
      );
    });
    // Uninstall while the operator still runs: RBAC, the ServiceAccount (and so its token), the
    // admission policy and the Deployment go; the operator is left running to see the 401s and
    // 403s that a leader still shutting down would see.
    const t0 = Date.now();
    helm(['uninstall', release, `--namespace=${releaseNs}`, '--wait']);
    const uninstallMs = Date.now() - t0;
    let samples = 0;
    let lost = 0;
    const watchUntil = Date.now() + 15_000;
    while (Date.now() < watchUntil) {
      const p = await published(ns);
      samples++;
      if (p.ips.join() !== addresses.join()) lost++;
      await new Promise((r) => setTimeout(r, 200));
    }
    const after = await published(ns);
    console.log(
      `helm uninstall took ${String(uninstallMs)} ms; over the next 15 s, ${String(lost)} of ${String(samples)} samples saw fewer than both addresses`,
    );
    expect(lost).toBe(0);
    expect(after.versions).toEqual(before.versions);
    // Kept: the CRDs (Helm never deletes them), the backend, the chart's grant object
    // (helm.sh/resource-policy: keep) and the compiled grants the admission policy read.
    const kept: unknown = await objects.getClusterCustomObject({
      group,
      version,
      plural: policyPlural,
      name: policyName,
    });
    expect(kept).toMatchObject({ spec: { rules } });
    await objects.getClusterCustomObject({
      group,
      version,
      plural: policyPlural,
      name: effectivePolicyName,
    });
    await objects.getNamespacedCustomObject({ group, version, namespace: ns, plural, name: 'db' });
    await op.stop();

    // Reinstall: Helm adopts the kept grant object (its release annotations match), and the new
    // operator finds everything as it should be: no write to the tenant's objects.
    install();
    op = await runOperator(2);
    await waitFor(
      'the reinstalled operator to report the backend',
      async () =>
        (await op.metric('outrigger_backend_ready_status', { namespace: ns, name: 'db' })) > 0
          ? true
          : undefined,
      30_000,
    );
    // A few more seconds for anything it would write.
    await new Promise((r) => setTimeout(r, 3000));
    const reinstalled = await published(ns);
    expect(reinstalled.ips).toEqual(addresses);
    expect(reinstalled.versions).toEqual(before.versions);
    await op.stop();
    helm(['uninstall', release, `--namespace=${releaseNs}`]);
  }, 180_000);
});
