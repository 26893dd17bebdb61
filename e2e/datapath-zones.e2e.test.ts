// Zones for external backends, through a real kube-proxy: two nodes (network namespaces with
// kube-proxy in nftables mode) labelled with different zones, one Service with trafficDistribution
// PreferSameZone, and servers in both zones. Each node's kube-proxy must send its connections to
// its own zone's servers, fall back to the others when its zone has none ready, and skip a drained
// server while others are ready.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { dataPlaneUnavailable, nodeRange, startNode, type Node } from './harness/dataplane.ts';
import { createBackendNetwork, type BackendNetwork, type Server } from './harness/netns.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { teardown } from './helpers.ts';
import { connections, programmed as programmedFor } from './harness/traffic.ts';
import { describeUnless } from './skips.ts';

const skipReason = dataPlaneUnavailable();
const suite = describeUnless(skipReason);
const zoneLabel = 'topology.kubernetes.io/zone';
const ns = 'zones';
const port = 8080;

let cluster: Cluster;
let nodeA: Node;
let nodeB: Node;
let net: BackendNetwork;
let operator: OperatorProcess;
let objects: CustomObjectsApi;
let clusterIP: string;
const servers = new Map<string, Server>();
/** Two servers in zone-a, one in zone-b. */
let a1: string;
let a2: string;
let b1: string;

beforeAll(async () => {
  if (skipReason !== undefined) {
    console.warn(`skipping the zone data-path tests: ${skipReason}`);
    return;
  }
  cluster = await startCluster();
  const dir = cluster.dir ?? '/tmp';
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
  [a1 = '', a2 = '', b1 = ''] = net.ipv4;
  for (const ip of [a1, a2, b1]) servers.set(ip, await net.serve(ip, port, 'tcp'));
  operator = await startOperator(
    cluster.kubeconfigPath,
    ['--status-batch-period=0'],
    join(dir, 'outrigger.log'),
  );
  const kc = cluster.kubeConfig();
  objects = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  // The Service is the application team's: outrigger adopts it and writes its endpoints.
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
  await objects.createNamespacedCustomObject({
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
        zone: 'zone-a',
        ports: [{ name: 'p', port }],
        addresses: [{ ip: a1 }, { ip: a2 }, { ip: b1, zone: 'zone-b' }],
        healthCheck: {
          tcp: { port: 'p' },
          intervalSeconds: 1,
          timeoutSeconds: 1,
          healthyThreshold: 1,
          unhealthyThreshold: 1,
          failOpen: false,
        },
      },
    },
  });
}, 600_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  await teardown(
    () => operator.stop(),
    ...[...servers.values()].map((s) => () => s.stop()),
    () => net.remove(),
    () => nodeA.stop(),
    () => nodeB.stop(),
    () => cluster.stop(),
  );
}, 60_000);

const at = (...ips: string[]) => ips.map((ip) => `${ip}:${String(port)}`).sort();

const programmed = (node: Node, want: readonly string[], what: string) =>
  programmedFor(node, ns, 'web', want, what);

/** Opens `count` connections, one after another, from a node to the Service's ClusterIP. */
async function connect(node: Node, count: number): Promise<void> {
  const attempts = await connections(node, clusterIP, 80, { count, timeoutMs: 2000 });
  expect(attempts.filter((a) => !a.ok)).toEqual([]);
}

suite('zones through kube-proxy: trafficDistribution PreferSameZone', () => {
  it('each node sends its connections to its own zone', async () => {
    await programmed(nodeA, at(a1, a2), "node-a's kube-proxy to program zone-a's servers");
    await programmed(nodeB, at(b1), "node-b's kube-proxy to program zone-b's server");
    const syns = Object.fromEntries(
      [a1, a2, b1].map((ip) => [ip, net.countConnections(ip, port, nodeRange)]),
    );
    await connect(nodeA, 20);
    await connect(nodeB, 10);
    const seen = Object.fromEntries(Object.entries(syns).map(([ip, c]) => [ip, c.read()]));
    console.log(
      `connections by server after 20 from node-a (zone-a) and 10 from node-b (zone-b): ${JSON.stringify(seen)}`,
    );
    expect((seen[a1] ?? 0) + (seen[a2] ?? 0)).toBe(20);
    expect(seen[b1]).toBe(10);
  }, 120_000);

  it("a zone with no ready server falls back to the other zone's", async () => {
    await servers.get(b1)?.stop();
    servers.delete(b1);
    await programmed(nodeB, at(a1, a2), "node-b's kube-proxy to fall back to zone-a");
    await connect(nodeB, 5);
    servers.set(b1, await net.serve(b1, port, 'tcp'));
    await programmed(nodeB, at(b1), "node-b's kube-proxy to return to its own zone");
  }, 120_000);

  it('a drained server gets no new connections while its zone has another', async () => {
    const syns = net.countConnections(a1, port, nodeRange);
    await objects.patchNamespacedCustomObject(
      {
        group,
        version,
        plural,
        namespace: ns,
        name: 'web',
        body: { metadata: { annotations: { 'outrigger.dev/drain': a1 } } },
      },
      // A JSON merge patch, as `kubectl annotate` sends.
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await programmed(nodeA, at(a2), "node-a's kube-proxy to leave out the drained server");
    const before = syns.read();
    await connect(nodeA, 10);
    expect(syns.read() - before).toBe(0);
  }, 120_000);
});
