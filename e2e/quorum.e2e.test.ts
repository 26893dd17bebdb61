// Health by a quorum of probers: three replicas of outrigger, each in a node's network namespace
// of its own (zone-a, zone-b, zone-c), all checking the same backend (--probers-per-address=3).
// One replica's path to the backends is cut, in its own namespace only: nothing may be withdrawn
// and nothing may fail open, and that replica must be reported partitioned. A split where one
// replica sees one server down and two see it up keeps it published. A real death is still
// removed, within the single-prober bound plus the reporting delay stated here.
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { proberReportPlural } from '../src/api/proberreport.ts';
import { defaultPartitionHoldMs } from '../src/controllers/quorum/view.ts';
import type { ExternalBackendStatus } from '../src/api/externalbackendstatus.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { installCrd } from './harness/crd.ts';
import { dataPlaneUnavailable, startNode, type Node } from './harness/dataplane.ts';
import { createBackendNetwork, ip, type BackendNetwork, type Server } from './harness/netns.ts';
import { startReplicaInNode, type OperatorProcess } from './harness/operator.ts';
import { teardown, waitFor } from './helpers.ts';
import { describeUnless } from './skips.ts';

const skipReason = dataPlaneUnavailable();
const suite = describeUnless(skipReason);
const ns = 'quorum';
const port = 8080;
const check = { intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 2, unhealthyThreshold: 2 };
/** The single-prober bound: interval × unhealthyThreshold + timeout. */
const detectionMs =
  (check.intervalSeconds * check.unhealthyThreshold + check.timeoutSeconds) * 1000;
/**
 * What a quorum adds: the second prober's report (batched 200 ms) reaching the leader's cache and
 * its reconcile. The goal is 1 s over the single-prober figure.
 */
const reportingMs = 1000;
/**
 * Marked partitioned: its failures detected and reported, held for the partition hold (a prober
 * that notices a death a check early is not a partition), and the leader's next look (each second).
 */
const partitionBoundMs = detectionMs + reportingMs + defaultPartitionHoldMs + 1000;

let cluster: Cluster;
let kc: KubeConfig;
let net: BackendNetwork;
const nodes: Node[] = [];
const replicas = new Map<string, { node: Node; op: OperatorProcess }>();
const servers = new Map<string, Server>();
let addresses: string[] = [];

beforeAll(async () => {
  if (skipReason !== undefined) {
    console.warn(`skipping the quorum tests: ${skipReason}`);
    return;
  }
  cluster = await startCluster();
  kc = cluster.kubeConfig();
  const dir = cluster.dir ?? '/tmp';
  await installCrd(cluster.kubeconfigPath);
  for (const z of ['a', 'b', 'c'])
    nodes.push(
      await startNode(cluster, {
        dir: join(dir, `node-${z}`),
        nodeName: `q-${z}`,
        labels: { 'topology.kubernetes.io/zone': `zone-${z}` },
        coreDns: false,
        kubeProxy: false,
      }),
    );
  net = createBackendNetwork(dir, 3, { fromNodes: true });
  addresses = [...net.ipv4];
  for (const a of addresses) servers.set(a, await net.serve(a, port, 'tcp'));
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group,
    version,
    plural,
    namespace: ns,
    body: {
      apiVersion,
      kind: 'ExternalBackend',
      metadata: { name: 'db' },
      spec: {
        ports: [{ name: 'p', port }],
        addresses: addresses.map((a) => ({ ip: a })),
        healthCheck: { tcp: { port: 'p' }, ...check },
      },
    },
  });
  // A backend whose servers take a check from one replica only.
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group,
    version,
    plural,
    namespace: ns,
    body: {
      apiVersion,
      kind: 'ExternalBackend',
      metadata: { name: 'fragile' },
      spec: {
        ports: [{ name: 'p', port }],
        addresses: [{ ip: addresses[2] }],
        healthCheck: { tcp: { port: 'p' }, ...check, maxProbers: 1 },
      },
    },
  });
  for (const node of nodes) {
    const name = `r-${node.nodeName.slice(2)}`;
    const op = await startReplicaInNode(
      node,
      name,
      [
        '--leader-elect-lease-duration=4s',
        '--leader-elect-renew-deadline=3s',
        '--leader-elect-retry-period=500ms',
        '--probers-per-address=3',
      ],
      join(dir, `${name}.log`),
    );
    replicas.set(name, { node, op });
  }
}, 600_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  await teardown(
    ...[...replicas.values()].map((r) => () => r.op.stop()),
    ...[...servers.values()].map((s) => () => s.stop()),
    () => net.remove(),
    ...nodes.map((n) => () => n.stop()),
    () => cluster.stop(),
  );
}, 120_000);

async function leader(): Promise<string> {
  return waitFor('a leader', async () => {
    for (const [name, r] of replicas)
      if ((await r.op.metric('leader_election_master_status').catch(() => 0)) === 1) return name;
    return undefined;
  });
}

async function status(): Promise<ExternalBackendStatus> {
  const xb = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
    group,
    version,
    plural,
    namespace: ns,
    name: 'db',
  })) as { status?: ExternalBackendStatus };
  return xb.status ?? {};
}

/** The addresses published ready in the backend's slice. */
async function readyIps(): Promise<string[]> {
  const s = await kc
    .makeApiClient(DiscoveryV1Api)
    .readNamespacedEndpointSlice({ namespace: ns, name: 'db-outrigger-ipv4' })
    .catch(() => undefined);
  return (s?.endpoints ?? [])
    .filter((e) => e.conditions?.ready === true)
    .flatMap((e) => e.addresses)
    .sort();
}

async function partitioned(leaderName: string, prober: string): Promise<boolean> {
  const r = replicas.get(leaderName);
  return (await r?.op.metric('outrigger_prober_partitioned', { prober }).catch(() => 0)) === 1;
}

/** Polls the slice and the Ready reason every 100 ms while `during` runs. */
async function watchWhile<T>(
  during: () => Promise<T>,
): Promise<{ result: T; withdrawn: number; failingOpen: boolean }> {
  let withdrawn = 0;
  let failingOpen = false;
  const stop = { done: false };
  const poll = (async () => {
    while (!stop.done) {
      const ready = await readyIps();
      withdrawn = Math.max(withdrawn, addresses.length - ready.length);
      const st = await status();
      if (st.conditions?.some((c) => c.type === 'Ready' && c.reason === 'FailingOpen'))
        failingOpen = true;
      await delay(100);
    }
  })();
  try {
    const result = await during();
    return { result, withdrawn, failingOpen };
  } finally {
    stop.done = true;
    await poll;
  }
}

suite('health by a quorum of three probers', () => {
  it('every replica checks the backend, and status counts three probers per address', async () => {
    await leader();
    await waitFor(
      'two standby reports covering the backend',
      async () => {
        const list = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
          group,
          version,
          plural: proberReportPlural,
          namespace: 'default',
        })) as { items: { spec?: { backends?: { name: string }[] } }[] };
        const covering = (b: string) =>
          list.items.filter((r) => r.spec?.backends?.some((x) => x.name === `${ns}/${b}`)).length;
        return covering('db') === 2 && covering('fragile') === 0 ? true : undefined;
      },
      60_000,
    );
    const st = await waitFor(
      'three probers in status',
      async () => {
        const s = await status();
        return s.addresses?.every((a) => a.probers?.healthy === 3) === true ? s : undefined;
      },
      30_000,
    );
    expect(st.addresses?.map((a) => a.probers)).toEqual(
      addresses.map(() => ({ healthy: 3, unhealthy: 0 })),
    );
    expect(await readyIps()).toEqual([...addresses].sort());
    // maxProbers: 1, the leader alone: no standby checks it, and status counts no probers.
    const fragile = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group,
      version,
      plural,
      namespace: ns,
      name: 'fragile',
    })) as { status?: ExternalBackendStatus };
    expect(fragile.status?.addresses?.[0]).toMatchObject({ ip: addresses[2], ready: true });
    expect(fragile.status?.addresses?.[0]?.probers).toBeUndefined();
  }, 120_000);

  it.each(['a standby', 'the leader'])(
    '%s cut off from the backends: nothing withdrawn, no fail-open, the replica partitioned',
    async (which) => {
      const lead = await leader();
      const name =
        which === 'the leader' ? lead : ([...replicas.keys()].find((n) => n !== lead) ?? '');
      const victim = replicas.get(name);
      if (victim === undefined) throw new Error('no replica');
      const cutAt = Date.now();
      const {
        result: markedMs,
        withdrawn,
        failingOpen,
      } = await watchWhile(async () => {
        victim.node.cutBackends(true);
        try {
          await waitFor(
            `${name} reported partitioned`,
            async () => ((await partitioned(lead, name)) ? true : undefined),
            30_000,
          );
          const marked = Date.now() - cutAt;
          // Hold the cut past several detection periods: nothing may move meanwhile.
          await delay(3 * detectionMs);
          return marked;
        } finally {
          victim.node.cutBackends(false);
        }
      });
      console.log(
        `${which} (${name}) cut off: reported partitioned after ${String(markedMs)} ms (bound ${String(partitionBoundMs)} ms); ` +
          `${String(withdrawn)} of ${String(addresses.length)} addresses withdrawn; fail-open ${String(failingOpen)}`,
      );
      expect(withdrawn).toBe(0);
      expect(failingOpen).toBe(false);
      expect(markedMs).toBeLessThanOrEqual(partitionBoundMs);
      await waitFor(
        `${name} to count again`,
        async () => ((await partitioned(lead, name)) ? undefined : true),
        30_000,
      );
    },
    120_000,
  );

  it('a split, one replica sees a server down and two see it up: it stays published', async () => {
    const lead = await leader();
    const name = [...replicas.keys()].find((n) => n !== lead) ?? '';
    const victim = replicas.get(name);
    const target = addresses[0] ?? '';
    if (victim === undefined) throw new Error('no replica');
    const route = (op: 'add' | 'del') =>
      ip(['netns', 'exec', victim.node.netns, 'ip', 'route', op, 'blackhole', `${target}/32`]);
    const { result: st, withdrawn } = await watchWhile(async () => {
      route('add');
      try {
        return await waitFor(
          'status to show the split',
          async () => {
            const s = await status();
            const a = s.addresses?.find((x) => x.ip === target);
            return a?.probers?.unhealthy === 1 && a.probers.healthy === 2 ? s : undefined;
          },
          30_000,
        );
      } finally {
        await delay(2 * detectionMs);
        route('del');
      }
    });
    const a = st.addresses?.find((x) => x.ip === target);
    console.log(
      `split on ${target}: probers ${JSON.stringify(a?.probers)}; ready ${String(a?.ready)}`,
    );
    expect(withdrawn).toBe(0);
    expect(a?.ready).toBe(true);
    expect(a?.probers?.unhealthyZones).toEqual([`zone-${name.slice(2)}`]);
    expect(st.conditions?.find((c) => c.type === 'Ready')?.message).toContain(
      `probers disagree on ${target} (1 of 3 see it fail from zone-${name.slice(2)})`,
    );
    expect(await partitioned(lead, name)).toBe(false);
  }, 120_000);

  it('a real death is removed within the single-prober bound plus the reporting delay', async () => {
    const target = addresses[1] ?? '';
    await waitFor('all ready', async () => ((await readyIps()).length === 3 ? true : undefined));
    // Every standby sees every server up again (the split's cut recovers after healthyThreshold
    // checks): the writes counted below are this death's only.
    await waitFor(
      'reports without failures',
      async () => {
        const list = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
          group,
          version,
          plural: proberReportPlural,
          namespace: 'default',
        })) as { items: { spec?: { backends?: { unhealthy?: string[] }[] } }[] };
        return list.items.every((r) =>
          (r.spec?.backends ?? []).every((b) => (b.unhealthy ?? []).length === 0),
        )
          ? true
          : undefined;
      },
      30_000,
    );
    await delay(500);
    const lead = await leader();
    const standbys = [...replicas].filter(([n]) => n !== lead).map(([, r]) => r.op);
    const changeWrites = async () =>
      (
        await Promise.all(
          standbys.map((op) =>
            op.metric('outrigger_prober_report_writes_total', { reason: 'change' }),
          ),
        )
      ).reduce((a, b) => a + b, 0);
    const writesBefore = await changeWrites();
    const killedAt = Date.now();
    await servers.get(target)?.stop();
    servers.delete(target);
    await waitFor(
      'the dead server withdrawn',
      async () => ((await readyIps()).includes(target) ? undefined : true),
      30_000,
      50,
    );
    const removedMs = Date.now() - killedAt;
    // Let every standby's view settle (unhealthyThreshold checks, a batch) before counting.
    await delay(detectionMs + 1000);
    const writes = (await changeWrites()) - writesBefore;
    const st = await status();
    const a = st.addresses?.find((x) => x.ip === target);
    console.log(
      `a real death with three probers: withdrawn after ${String(removedMs)} ms (single-prober bound ${String(detectionMs)} ms + reporting ${String(reportingMs)} ms); probers ${JSON.stringify(a?.probers)}; report writes for the change: ${String(writes)} (${String(standbys.length)} standbys)`,
    );
    // One verdict change: one write per standby that sees it (batched), and none besides.
    expect(writes).toBe(standbys.length);
    expect(removedMs).toBeLessThanOrEqual(detectionMs + reportingMs);
    expect(a?.probers?.unhealthy).toBeGreaterThanOrEqual(2);
    servers.set(target, await net.serve(target, port, 'tcp'));
    await waitFor(
      'back',
      async () => ((await readyIps()).includes(target) ? true : undefined),
      30_000,
    );
  }, 120_000);
});
