// Selector mode beside a kube-controller-manager that still runs its endpoints controller: two
// writers on one Endpoints. outrigger warns at start-up, takes the Endpoints over once, and when
// the real upstream controller rewrites it, counts a conflict, records an Event on the Service,
// and holds off instead of fighting (src/endpoints/conflict.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { CoreV1Api, type KubeConfig, type V1Endpoints } from '@kubernetes/client-node';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import {
  createRunningPod,
  createTestNamespace,
  waitFor,
  writePodStatus,
  teardown,
} from './helpers.ts';
import { describeUnless, localOnly } from './skips.ts';

const managedBy = 'endpoints.kubernetes.io/managed-by';
// Needs kube-controller-manager of its own; on an existing cluster its endpoints controller runs
// anyway, but this suite would fight it in namespaces it does not own.
const local = describeUnless(localOnly);

let cluster: Cluster;
let kc: KubeConfig;
let core: CoreV1Api;
let operator: OperatorProcess | undefined;

beforeAll(async () => {
  if (process.env.USE_EXISTING_CLUSTER === 'true') return;
  cluster = await startCluster({ controllers: ['endpoints-controller'] });
  kc = cluster.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
}, 180_000);

afterAll(async () => {
  if (process.env.USE_EXISTING_CLUSTER === 'true') return;
  await teardown(
    async () => operator?.stop(),
    () => cluster.stop(),
  );
});

const readyIPs = (ep: V1Endpoints | undefined): string[] =>
  (ep?.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip)).sort();

local('selector mode beside the upstream endpoints controller', () => {
  it('warns at start-up, reports the fight (metric, Event, log) and holds off instead of fighting', async () => {
    const ns = await createTestNamespace(kc, 'fight');
    await createRunningPod(core, ns, 'web-1', { ip: '10.244.1.1', ready: true });
    await createRunningPod(core, ns, 'web-2', { ip: '10.244.1.2', ready: false });
    await core.createNamespacedService({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    });
    const read = (): Promise<V1Endpoints> =>
      core.readNamespacedEndpoints({ name: 'web', namespace: ns });
    await waitFor('kube-controller-manager to write Endpoints/web', async () => {
      const ep = await read().catch(() => undefined);
      return ep?.metadata?.labels?.[managedBy] === 'endpoint-controller' || undefined;
    });

    const logPath = join(cluster.dir ?? '/tmp', 'outrigger-conflict.log');
    const op = await startOperator(cluster.kubeconfigPath, [`--selector-mode=${ns}`], logPath);
    operator = op;
    // The takeover of an Endpoints written before outrigger started is one write, not a conflict.
    await waitFor('outrigger to take Endpoints/web over', async () => {
      const ep = await read();
      return ep.metadata?.labels?.[managedBy] === 'controller.outrigger.dev' || undefined;
    });
    expect(readFileSync(logPath, 'utf8')).toContain(
      'selector mode takes over Endpoints another controller wrote',
    );
    expect(await op.metric('outrigger_endpoints_conflicts_total')).toBe(0);

    // A pod change makes both controllers sync the Service; kube-controller-manager rewrites the
    // managed-by label whoever writes first.
    await writePodStatus(core, ns, 'web-2', '10.244.1.2', true);
    const event = await waitFor('an EndpointsConflict Event on the Service', async () => {
      const list = await core.listNamespacedEvent({ namespace: ns });
      return list.items.find((e) => e.reason === 'EndpointsConflict');
    });
    expect(event.type).toBe('Warning');
    expect(event.involvedObject).toMatchObject({ kind: 'Service', name: 'web', namespace: ns });
    expect(event.message).toContain(
      "kube-controller-manager's endpoints controller (managed-by: endpoint-controller)",
    );
    expect(event.message).toContain('outrigger writes nothing to it for 1m0s');
    expect(await op.metric('outrigger_endpoints_conflicts_total')).toBe(1);
    expect(await op.metric('outrigger_endpoints_contested')).toBe(1);
    expect(readFileSync(logPath, 'utf8')).toContain(
      'another endpoints controller rewrote Endpoints that outrigger wrote; holding off',
    );

    // Holding off: the upstream controller alone follows further changes, outrigger writes nothing.
    const writes = (): Promise<number> =>
      op.metric('outrigger_endpoint_writes_total', { kind: 'Endpoints' });
    const before = await writes();
    await writePodStatus(core, ns, 'web-1', '10.244.1.1', false);
    const ep = await waitFor('kube-controller-manager to follow web-1 going unready', async () => {
      const e = await read();
      return readyIPs(e).join() === '10.244.1.2' ? e : undefined;
    });
    expect(ep.metadata?.labels?.[managedBy]).toBe('endpoint-controller');
    await delay(3000);
    expect(await writes()).toBe(before);
    expect((await read()).metadata?.labels?.[managedBy]).toBe('endpoint-controller');
    expect(await op.metric('outrigger_endpoints_conflicts_total')).toBe(1);
    console.log(
      `two endpoints controllers: ${String(before)} Endpoints writes by outrigger before the conflict, none while holding off`,
    );
  }, 120_000);
});
