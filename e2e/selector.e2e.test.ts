// Selector-mode behaviour that the differential corpus cannot show (it has no upstream twin):
// namespace scoping, start-up clean-up of our own orphans only, Warning events on failed writes,
// zero writes after a restart, and recovery of the watches across a kube-apiserver restart.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  type KubeConfig,
  type V1Endpoints,
} from '@kubernetes/client-node';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { idle, recordWrites } from './harness/witness.ts';
import { createRunningPod, createTestNamespace, waitFor, writePodStatus } from './helpers.ts';
import { describeUnless, localOnly } from './skips.ts';

let cluster: Cluster;
let kc: KubeConfig;
let core: CoreV1Api;
let operator: OperatorProcess | undefined;
const local = describeUnless(localOnly);

beforeAll(async () => {
  if (process.env.USE_EXISTING_CLUSTER === 'true') return;
  cluster = await startCluster();
  kc = cluster.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
}, 180_000);

afterEach(async () => {
  await operator?.stop();
  operator = undefined;
});

afterAll(async () => {
  if (process.env.USE_EXISTING_CLUSTER !== 'true') await cluster.stop();
});

async function run(args: string[]): Promise<OperatorProcess> {
  operator = await startOperator(
    cluster.kubeconfigPath,
    args,
    join(cluster.dir ?? '/tmp', 'outrigger.log'),
  );
  return operator;
}

async function readyPod(ns: string, name: string, ip: string, ready = true): Promise<void> {
  await createRunningPod(core, ns, name, { ip, ready });
}

async function setReady(ns: string, name: string, ip: string, ready: boolean): Promise<void> {
  await writePodStatus(core, ns, name, ip, ready);
}

async function service(ns: string, name = 'web'): Promise<void> {
  await core.createNamespacedService({
    namespace: ns,
    body: {
      metadata: { name },
      spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
    },
  });
}

async function endpoints(ns: string, name = 'web'): Promise<V1Endpoints | undefined> {
  try {
    return await core.readNamespacedEndpoints({ name, namespace: ns });
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return undefined;
    throw err;
  }
}

const readyIPs = (ep: V1Endpoints | undefined): string[] =>
  (ep?.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip)).sort();

local('selector mode', () => {
  it('touches only the namespaces it is given', async () => {
    const inScope = await createTestNamespace(kc, 'in');
    const outOfScope = await createTestNamespace(kc, 'out');
    for (const ns of [inScope, outOfScope]) {
      await readyPod(ns, 'web-1', '10.244.0.1');
      await service(ns);
    }
    const outside = await recordWrites(kc, ['endpoints'], outOfScope);
    const op = await run([`--selector-mode=${inScope}`]);
    await waitFor('Endpoints in the namespace in scope', async () =>
      readyIPs(await endpoints(inScope)).length === 1 ? true : undefined,
    );
    // A Service created after start-up in scope and reconciled: every key queued before it was
    // handed out first, whatever its namespace (a namespace already waiting has its turn first).
    await service(inScope, 'marker');
    await waitFor('the marker Service reconciled', async () =>
      readyIPs(await endpoints(inScope, 'marker')).length === 1 ? true : undefined,
    );
    await idle(op, 'endpoints');
    outside.stop();
    expect(outside.writes).toEqual([]);
    expect(await endpoints(outOfScope)).toBeUndefined();
  }, 60_000);

  it('at start-up deletes orphaned Endpoints it manages, and only those', async () => {
    const ns = await createTestNamespace(kc, 'orphans');
    const body = (name: string, labels: Record<string, string>): V1Endpoints => ({
      metadata: { name, labels },
      subsets: [{ addresses: [{ ip: '10.244.9.9' }], ports: [{ port: 80 }] }],
    });
    await core.createNamespacedEndpoints({
      namespace: ns,
      body: body('ours', { 'endpoints.kubernetes.io/managed-by': 'controller.outrigger.dev' }),
    });
    await core.createNamespacedEndpoints({
      namespace: ns,
      body: body('upstreams', { 'endpoints.kubernetes.io/managed-by': 'endpoint-controller' }),
    });
    await core.createNamespacedEndpoints({ namespace: ns, body: body('by-hand', {}) });
    const seen = await recordWrites(kc, ['endpoints'], ns);
    const op = await run(['--selector-mode=all']);
    await waitFor('our orphan to be deleted', async () =>
      (await endpoints(ns, 'ours')) === undefined ? true : undefined,
    );
    // The start-up clean-up queues the keys of the Endpoints it manages before it starts; a Service
    // created later, reconciled, with the controller idle after it, shows the clean-up is over.
    await readyPod(ns, 'web-1', '10.244.0.1');
    await service(ns, 'marker');
    await waitFor('the marker Service reconciled', async () =>
      readyIPs(await endpoints(ns, 'marker')).length === 1 ? true : undefined,
    );
    await idle(op, 'endpoints');
    seen.stop();
    expect(seen.writesExcept('endpoints/marker').map((w) => w.replace(/ by .*/, ''))).toEqual([
      'endpoints/ours DELETED',
    ]);
    expect(await endpoints(ns, 'upstreams')).toBeDefined();
    expect(await endpoints(ns, 'by-hand')).toBeDefined();
    // Second witness: outrigger's own count agrees.
    expect(await op.metric('outrigger_endpoint_writes_total', { operation: 'delete' })).toBe(1);
  }, 60_000);

  it('records a Warning event when a write is refused, and counts the failed reconciles', async () => {
    const ns = await createTestNamespace(kc, 'refused');
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    const policy = `deny-endpoints-${ns}`;
    await admission.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: policy },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [
              {
                apiGroups: [''],
                apiVersions: ['v1'],
                operations: ['CREATE', 'UPDATE'],
                resources: ['endpoints'],
              },
            ],
          },
          validations: [{ expression: 'false', message: 'endpoints are frozen in this namespace' }],
        },
      },
    });
    await admission.createValidatingAdmissionPolicyBinding({
      body: {
        metadata: { name: policy },
        spec: {
          policyName: policy,
          validationActions: ['Deny'],
          matchResources: {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
          },
        },
      },
    });
    try {
      // The policy takes effect asynchronously; wait until it denies a write of our own.
      await waitFor('the admission policy to deny', async () => {
        try {
          await core.createNamespacedEndpoints({
            namespace: ns,
            body: { metadata: { name: 'probe' } },
          });
          await core.deleteNamespacedEndpoints({ namespace: ns, name: 'probe' });
          return undefined;
        } catch (err) {
          return err instanceof ApiException && err.code === 422 ? true : undefined;
        }
      });
      const op = await run(['--selector-mode=all']);
      await readyPod(ns, 'web-1', '10.244.0.1');
      await service(ns);
      const event = await waitFor('a FailedToCreateEndpoint event', async () => {
        const list = await core.listNamespacedEvent({ namespace: ns });
        return list.items.find((e) => e.reason === 'FailedToCreateEndpoint');
      });
      expect(event.type).toBe('Warning');
      expect(event.involvedObject).toMatchObject({ kind: 'Endpoints', name: 'web', namespace: ns });
      expect(event.message).toContain('endpoints are frozen in this namespace');
      expect(
        await op.metric('controller_runtime_reconcile_errors_total', { controller: 'endpoints' }),
      ).toBeGreaterThan(0);
    } finally {
      await admission.deleteValidatingAdmissionPolicyBinding({ name: policy });
      await admission.deleteValidatingAdmissionPolicy({ name: policy });
    }
  }, 90_000);

  it('issues no write when restarted on a cluster that is already in sync', async () => {
    const ns = await createTestNamespace(kc, 'restart');
    for (let i = 1; i <= 5; i++) await readyPod(ns, `web-${i}`, `10.244.1.${i}`, i % 2 === 0);
    await service(ns);
    const first = await run(['--selector-mode=all']);
    await waitFor('Endpoints written', async () =>
      readyIPs(await endpoints(ns)).length === 2 ? true : undefined,
    );
    await first.stop();
    const seen = await recordWrites(kc, ['endpoints'], ns);
    const second = await run(['--selector-mode=all']);
    // The Service in sync was queued at start-up, before this one: once this one is reconciled and
    // the controller is idle, the first had its turn and its chance to write.
    await service(ns, 'marker');
    await waitFor('the marker Service reconciled', async () =>
      readyIPs(await endpoints(ns, 'marker')).length === 2 ? true : undefined,
    );
    await idle(second, 'endpoints');
    seen.stop();
    expect(seen.writesExcept('endpoints/marker')).toEqual([]);
    expect(
      await second.metric('controller_runtime_reconcile_total', { controller: 'endpoints' }),
    ).toBeGreaterThanOrEqual(2);
    // Second witness: outrigger counts one write, the marker's.
    expect(await second.metric('outrigger_endpoint_writes_total')).toBe(1);
  }, 60_000);

  it('recovers its watches after kube-apiserver restarts', async () => {
    const ns = await createTestNamespace(kc, 'recover');
    await readyPod(ns, 'web-1', '10.244.2.1');
    await service(ns);
    await run(['--selector-mode=all']);
    await waitFor('Endpoints written', async () =>
      readyIPs(await endpoints(ns)).length === 1 ? true : undefined,
    );
    await cluster.restartApiServer(3000);
    // Changes made after the restart must still reach the Endpoints: the informers reconnected.
    await readyPod(ns, 'web-2', '10.244.2.2');
    await setReady(ns, 'web-1', '10.244.2.1', false);
    await waitFor(
      'Endpoints to follow changes made after the restart',
      async () =>
        JSON.stringify(readyIPs(await endpoints(ns))) === '["10.244.2.2"]' ? true : undefined,
      60_000,
    );
  }, 120_000);
});
