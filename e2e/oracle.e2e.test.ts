// The upstream endpoints controller, alone, on the local control plane: the oracle that outrigger's
// own controller is compared against. On an existing cluster the cluster's own controller answers.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, type KubeConfig, type V1Endpoints, type V1Pod } from '@kubernetes/client-node';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { createRunningPod, createTestNamespace, waitFor, writePodStatus } from './helpers.ts';

let cluster: Cluster;
let kc: KubeConfig;
let core: CoreV1Api;

beforeAll(async () => {
  cluster = await startCluster({ controllers: ['endpoints-controller'] });
  kc = cluster.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
}, 180_000);

afterAll(async () => {
  await cluster.stop();
});

function createPod(ns: string, name: string, ip: string, ready: boolean): Promise<V1Pod> {
  return createRunningPod(core, ns, name, { ip, ready, ports: [{ name: 'http', port: 8080 }] });
}

function summary(ep: V1Endpoints): unknown {
  return (ep.subsets ?? []).map((s) => ({
    ready: (s.addresses ?? [])
      .map((a) => `${a.ip}/${a.targetRef?.name ?? ''}/${a.nodeName ?? ''}`)
      .sort(),
    notReady: (s.notReadyAddresses ?? []).map((a) => `${a.ip}/${a.targetRef?.name ?? ''}`).sort(),
    ports: (s.ports ?? []).map((p) => `${p.name ?? ''}:${p.port}/${p.protocol ?? ''}`).sort(),
  }));
}

describe('the upstream endpoints controller', () => {
  it('writes Endpoints for a selector Service from pod readiness, and follows changes', async () => {
    const ns = await createTestNamespace(kc, 'oracle');
    const web1 = await createPod(ns, 'web-1', '10.244.0.5', true);
    await createPod(ns, 'web-2', '10.244.0.6', false);
    await core.createNamespacedService({
      namespace: ns,
      body: {
        metadata: { name: 'web', labels: { tier: 'frontend' } },
        spec: {
          selector: { app: 'web' },
          ports: [
            { name: 'http', port: 80, targetPort: 'http' },
            { name: 'metrics', port: 9090, targetPort: 9090 },
          ],
        },
      },
    });
    const read = (): Promise<V1Endpoints> =>
      core.readNamespacedEndpoints({ name: 'web', namespace: ns });

    const first = await waitFor('the controller to write Endpoints/web', async () => {
      const ep = await read();
      return ep.subsets?.length ? ep : undefined;
    });
    expect(summary(first)).toEqual([
      {
        ready: ['10.244.0.5/web-1/node-a'],
        notReady: ['10.244.0.6/web-2'],
        ports: ['http:8080/TCP', 'metrics:9090/TCP'],
      },
    ]);
    expect(first.metadata?.labels).toEqual({
      tier: 'frontend',
      'endpoints.kubernetes.io/managed-by': 'endpoint-controller',
    });
    expect(first.subsets?.[0]?.addresses?.[0]?.targetRef).toMatchObject({
      kind: 'Pod',
      namespace: ns,
      name: 'web-1',
      uid: web1.metadata?.uid,
    });
    expect(
      first.metadata?.annotations?.['endpoints.kubernetes.io/last-change-trigger-time'],
    ).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);

    await writePodStatus(core, ns, 'web-2', '10.244.0.6', true);
    await waitFor('web-2 to become a ready address', async () => {
      const ep = await read();
      return ep.subsets?.[0]?.addresses?.length === 2 && !ep.subsets[0].notReadyAddresses
        ? ep
        : undefined;
    });

    await core.deleteNamespacedService({ name: 'web', namespace: ns });
    await waitFor('Endpoints/web to be deleted with its Service', async () => {
      try {
        await read();
        return undefined;
      } catch {
        return true;
      }
    });
  });
});
