// When the cluster's own ranges cannot be discovered, outrigger denies every private range in their
// place and says so (status message, Event, metric), and recovers once it can see them again. The
// operator talks to the API server through a proxy that answers its Node requests with 403, as a
// missing RBAC rule would. No health checks: nothing is probed.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { ExternalBackendStatus } from '../src/api/externalbackendstatus.ts';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { anyOf, isList, isWatch, startApiProxy, type ApiProxy } from './harness/apiproxy.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { installCrd } from './harness/crd.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { createTestNamespace, outriggerSliceIPs, waitFor, teardown } from './helpers.ts';
import { describeUnless, localOnly } from './skips.ts';

const local = describeUnless(localOnly);

let cluster: Cluster;
let kc: KubeConfig;
let proxy: ApiProxy;
let operator: OperatorProcess;
let lift: () => void;

beforeAll(async () => {
  if (process.env.USE_EXISTING_CLUSTER === 'true') return;
  cluster = await startCluster();
  kc = cluster.kubeConfig();
  await installCrd(cluster.kubeconfigPath);
  proxy = await startApiProxy(cluster);
  lift = proxy.fault(anyOf(isList('nodes'), isWatch('nodes')), {
    kind: 'status',
    code: 403,
    body: {
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      reason: 'Forbidden',
      code: 403,
      message: 'nodes is forbidden: User "outrigger" cannot list resource "nodes"',
    },
  });
  operator = await startOperator(
    proxy.kubeconfigPath,
    [],
    join(cluster.dir ?? '/tmp', 'outrigger-ranges.log'),
    // Readiness waits for discovery to settle: 403 settles it at once.
    { installCrd: false },
  );
}, 180_000);

afterAll(async () => {
  if (process.env.USE_EXISTING_CLUSTER === 'true') return;
  await teardown(
    () => operator.stop(),
    () => proxy.close(),
    () => cluster.stop(),
  );
});

async function status(ns: string, name: string): Promise<ExternalBackendStatus | undefined> {
  const o = (await kc
    .makeApiClient(CustomObjectsApi)
    .getNamespacedCustomObject({ group, version, namespace: ns, plural, name })) as {
    status?: ExternalBackendStatus;
  };
  return o.status;
}

const sliceIPs = (ns: string, name: string): Promise<string[]> => outriggerSliceIPs(kc, ns, name);

local('cluster ranges that cannot be discovered', () => {
  it('denies every private range, says why, and publishes again once Nodes can be watched', async () => {
    expect(await operator.metric('outrigger_cluster_range_discovery_up', { source: 'nodes' })).toBe(
      0,
    );
    expect(
      await operator.metric('outrigger_cluster_range_discovery_up', { source: 'servicecidrs' }),
    ).toBe(1);
    expect(await operator.metric('outrigger_denied_ranges', { source: 'fallback' })).toBe(5);

    const ns = await createTestNamespace(kc, 'ranges');
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group,
      version,
      namespace: ns,
      plural,
      body: {
        apiVersion,
        kind: 'ExternalBackend',
        metadata: { name: 'legacy' },
        spec: {
          ports: [{ name: 'http', port: 80 }],
          addresses: [{ ip: '10.20.30.40' }, { ip: '192.0.2.10' }],
        },
      },
    });
    const denied = await waitFor('the private address denied', async () => {
      const a = (await status(ns, 'legacy'))?.addresses?.find((x) => x.ip === '10.20.30.40');
      return a?.state === 'Denied' ? a : undefined;
    });
    expect(denied.message).toBe(
      'denied: in 10.0.0.0/8 (private range, denied because cluster ranges are unknown (Nodes: 403 Forbidden: no RBAC to list and watch)); not published',
    );
    expect(await sliceIPs(ns, 'legacy')).toEqual(['192.0.2.10']);
    const events = await kc
      .makeApiClient(CoreV1Api)
      .listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=legacy' });
    expect(events.items.map((e) => e.reason)).toContain('AddressDenied');

    // RBAC fixed: the informer's retry lists Nodes, the fallback goes, the address is published.
    const t0 = Date.now();
    lift();
    await waitFor(
      'the private address published',
      async () => ((await sliceIPs(ns, 'legacy')).length === 2 ? true : undefined),
      90_000,
      200,
    );
    console.log(
      `Nodes watchable again → fallback lifted and the address published in ${String(Date.now() - t0)} ms`,
    );
    expect(await operator.metric('outrigger_cluster_range_discovery_up', { source: 'nodes' })).toBe(
      1,
    );
    expect(await operator.metric('outrigger_denied_ranges', { source: 'fallback' })).toBe(0);
    // Status follows within --status-batch-period of its last write.
    await waitFor('status to say every address is healthy', async () =>
      (await status(ns, 'legacy'))?.addresses?.every((a) => a.state === 'Healthy') === true
        ? true
        : undefined,
    );
  }, 150_000);
});
