// Zone hints shaped by the probers, through a real kube-proxy: two nodes (zone-a, zone-b), each a
// network namespace running kube-proxy in nftables mode and one outrigger replica
// (--probers-per-address=2). A Service with trafficDistribution PreferSameZone has two servers in
// zone-b and one in zone-a. When zone-b's path to one of its own servers is cut (in zone-b's node
// only), the two probers split 1–1 and the server stays published; what decides whether zone-b's
// clients keep failing is its hint. Measured here: connections from zone-b's node before the
// probers' verdict (both replicas paused: the hint stays zone-b) and after (the hint is the zone
// that reaches it).
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import type { ExternalBackendStatus } from '../src/api/externalbackendstatus.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { installCrd } from './harness/crd.ts';
import { dataPlaneUnavailable, startNode, type Node } from './harness/dataplane.ts';
import { createBackendNetwork, ip, type BackendNetwork, type Server } from './harness/netns.ts';
import { startReplicaInNode, type OperatorProcess } from './harness/operator.ts';
import { teardown, waitFor } from './helpers.ts';
import { connections, programmed as programmedFor } from './harness/traffic.ts';
import { describeUnless } from './skips.ts';

const skipReason = dataPlaneUnavailable();
const suite = describeUnless(skipReason);
const zoneLabel = 'topology.kubernetes.io/zone';
const ns = 'quorum-zones';
const port = 8080;

let cluster: Cluster;
let nodeA: Node;
let nodeB: Node;
let net: BackendNetwork;
const replicas: OperatorProcess[] = [];
const servers: Server[] = [];
let clusterIP: string;
/** Two servers in zone-b, one in zone-a. */
let b1: string;
let b2: string;
let a1: string;

beforeAll(async () => {
  if (skipReason !== undefined) {
    console.warn(`skipping the quorum zone tests: ${skipReason}`);
    return;
  }
  cluster = await startCluster();
  const dir = cluster.dir ?? '/tmp';
  await installCrd(cluster.kubeconfigPath);
  nodeA = await startNode(cluster, {
    dir: join(dir, 'node-a'),
    nodeName: 'node-a',
    labels: { [zoneLabel]: 'zone-a' },
    coreDns: false,
  });
  nodeB = await startNode(cluster, {
    dir: join(dir, 'node-b'),
    nodeName: 'node-b',
    labels: { [zoneLabel]: 'zone-b' },
    coreDns: false,
  });
  net = createBackendNetwork(dir, 3, { fromNodes: true });
  [b1 = '', b2 = '', a1 = ''] = net.ipv4;
  for (const s of [b1, b2, a1]) servers.push(await net.serve(s, port, 'tcp'));
  const kc = cluster.kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  const svc = await core.createNamespacedService({
    namespace: ns,
    body: {
      metadata: { name: 'web' },
      spec: {
        ports: [{ name: 'p', port: 80, targetPort: port }],
        trafficDistribution: 'PreferSameZone',
      },
    },
  });
  clusterIP = svc.spec?.clusterIP ?? '';
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group,
    version,
    plural,
    namespace: ns,
    body: {
      apiVersion,
      kind: 'ExternalBackend',
      metadata: { name: 'web' },
      spec: {
        service: { create: false },
        zone: 'zone-b',
        ports: [{ name: 'p', port }],
        addresses: [{ ip: b1 }, { ip: b2 }, { ip: a1, zone: 'zone-a' }],
        healthCheck: {
          tcp: { port: 'p' },
          intervalSeconds: 1,
          timeoutSeconds: 1,
          healthyThreshold: 2,
          unhealthyThreshold: 2,
          failOpen: false,
        },
      },
    },
  });
  for (const node of [nodeA, nodeB])
    replicas.push(
      await startReplicaInNode(
        node,
        `r-${node.nodeName}`,
        [
          // Long enough to hold through the test's pause of both replicas (below).
          '--leader-elect-lease-duration=40s',
          '--leader-elect-renew-deadline=30s',
          '--leader-elect-retry-period=2s',
          '--probers-per-address=2',
        ],
        join(dir, `r-${node.nodeName}.log`),
      ),
    );
}, 600_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  await teardown(
    ...replicas.map((r) => () => r.stop()),
    ...servers.map((s) => () => s.stop()),
    () => net.remove(),
    () => nodeA.stop(),
    () => nodeB.stop(),
    () => cluster.stop(),
  );
}, 120_000);

const at = (...ips: string[]) => ips.map((x) => `${x}:${String(port)}`).sort();

const programmed = (node: Node, want: readonly string[], what: string) =>
  programmedFor(node, ns, 'web', want, what);

/** Opens `count` connections from a node to the Service, one after another; how many failed. */
async function failures(node: Node, count: number): Promise<number> {
  return (await connections(node, clusterIP, 80, { count })).filter((a) => !a.ok).length;
}

async function status(): Promise<ExternalBackendStatus> {
  const xb = (await cluster
    .kubeConfig()
    .makeApiClient(CustomObjectsApi)
    .getNamespacedCustomObject({ group, version, plural, namespace: ns, name: 'web' })) as {
    status?: ExternalBackendStatus;
  };
  return xb.status ?? {};
}

suite('zone hints shaped by the probers', () => {
  it("a zone that cannot reach one of its own servers stops sending to it, and the other zone's clients take it", async () => {
    await programmed(nodeB, at(b1, b2), "zone-b's kube-proxy to program zone-b's servers");
    await programmed(nodeA, at(a1), "zone-a's kube-proxy to program zone-a's server");
    expect(await failures(nodeB, 20)).toBe(0);

    const route = (op: 'add' | 'del') =>
      ip(['netns', 'exec', nodeB.netns, 'ip', 'route', op, 'blackhole', `${b1}/32`]);
    // Without the probers' verdict: both replicas paused (SIGSTOP) before the cut, so what is
    // published stays as it was, hint zone-b included: the steady state of a zone whose path to
    // one of its own servers is cut, when the hints ignore it.
    for (const r of replicas) process.kill(r.pid, 'SIGSTOP');
    route('add');
    try {
      let before: number;
      try {
        before = await failures(nodeB, 20);
      } finally {
        for (const r of replicas) process.kill(r.pid, 'SIGCONT');
      }
      await waitFor(
        'the split in status',
        async () => {
          const a = (await status()).addresses?.find((x) => x.ip === b1);
          return a?.probers?.unhealthyZones?.join() === 'zone-b' && a.probers.healthy === 1
            ? true
            : undefined;
        },
        30_000,
      );
      await programmed(
        nodeB,
        at(b2),
        "zone-b's kube-proxy to leave out the server it cannot reach",
      );
      await programmed(nodeA, at(a1, b1), "zone-a's kube-proxy to take it");
      const afterB = await failures(nodeB, 40);
      const afterA = await failures(nodeA, 20);
      const a = (await status()).addresses?.find((x) => x.ip === b1);
      console.log(
        `zone-b cut from ${b1}: ${String(before)}/20 of zone-b's connections failed with its hint zone-b (replicas paused); ` +
          `after the probers' verdict (hint zone-a): ${String(afterB)}/40 from zone-b, ${String(afterA)}/20 from zone-a; ` +
          `${b1} published ready: ${String(a?.ready)} (probers ${JSON.stringify(a?.probers)})`,
      );
      expect(before).toBeGreaterThan(0);
      expect(afterB).toBe(0);
      expect(afterA).toBe(0);
      expect(a?.ready).toBe(true);
    } finally {
      route('del');
    }
    await programmed(nodeB, at(b1, b2), "zone-b's kube-proxy to take its server back");
    expect(await failures(nodeB, 20)).toBe(0);
  }, 180_000);
});
