// The first seed setup, for real: an etcd cluster outside Kubernetes (three real members in a
// network namespace) registered as ExternalBackend `etcd-k8s` in kube-system, and etcd's own client
// on a node (a network namespace with kube-proxy and CoreDNS) talking to
// etcd-k8s.kube-system.svc.cluster.local:2379. Everything the client sends goes through the
// ClusterIP rules kube-proxy wrote from outrigger's EndpointSlice, or through CoreDNS's answers
// built from it: nothing here looks at outrigger's objects to decide what passed.
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { ensureDataPlaneBinary } from './harness/binaries.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { dataPlaneUnavailable, nodeRange, startNode, type Node } from './harness/dataplane.ts';
import { startEtcdMembers, type EtcdMembers } from './harness/etcdmembers.ts';
import { createBackendNetwork, type BackendNetwork } from './harness/netns.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { claims } from './claims.ts';
import { claim } from './harness/claims.ts';
import { teardown, waitFor } from './helpers.ts';
import { describeUnless } from './skips.ts';

const skipReason = dataPlaneUnavailable();
const suite = describeUnless(skipReason);

const check = { intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 2, unhealthyThreshold: 2 };
/** The detection bound the ExternalBackend promises: interval × unhealthyThreshold + timeout. */
const detectionMs =
  (check.intervalSeconds * check.unhealthyThreshold + check.timeoutSeconds) * 1000;
/**
 * What the next hops add: outrigger's slice write, kube-proxy's resync (its nftables mode waits
 * at least --min-sync-period, 1 s, between syncs) or CoreDNS's cache of the slice.
 */
const propagationMs = 3000;

let cluster: Cluster;
let node: Node;
let net: BackendNetwork;
let etcd: EtcdMembers;
let operator: OperatorProcess;
let etcdctl: string;

beforeAll(async () => {
  if (skipReason !== undefined) {
    console.warn(`skipping the etcd data-path tests: ${skipReason}`);
    return;
  }
  etcdctl = ensureDataPlaneBinary('etcdctl');
  cluster = await startCluster();
  const dir = cluster.dir ?? '/tmp';
  node = await startNode(cluster, { dir: join(dir, 'node') });
  net = createBackendNetwork(dir, 3, { fromNodes: true });
  etcd = await startEtcdMembers(net, dir, ['etc-master1', 'etc-master2', 'etc-master3']);
  operator = await startOperator(cluster.kubeconfigPath, [], join(dir, 'outrigger.log'));
  const objects = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
  const create = (name: string, clusterIP: '' | 'None') =>
    objects.createNamespacedCustomObject({
      group,
      version,
      plural,
      namespace: 'kube-system',
      body: {
        apiVersion,
        kind: 'ExternalBackend',
        metadata: { name },
        spec: {
          service: { create: true, clusterIP },
          ports: [{ name: 'port', port: 2379, protocol: 'TCP' }],
          addresses: etcd.members.map((m) => ({ ip: m.ip, nodeName: m.name })),
          healthCheck: { http: { port: 'port', path: '/health' }, ...check },
        },
      },
    });
  await create('etcd-k8s', '');
  await create('etcd-k8s-headless', 'None');
}, 600_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  await teardown(
    () => operator.stop(),
    () => etcd.stop(),
    () => net.remove(),
    () => node.stop(),
    () => cluster.stop(),
  );
}, 60_000);

const fqdn = 'etcd-k8s.kube-system.svc.cluster.local';

/** One etcdctl call from the node: a new process, so a new connection through the ClusterIP. */
function ctl(...args: string[]) {
  return node.exec(
    etcdctl,
    [`--endpoints=http://${fqdn}:2379`, '--dial-timeout=1s', '--command-timeout=2s', ...args],
    10_000,
  );
}

/**
 * The A records CoreDNS gives a program on the node, sorted (Node's resolver, c-ares); throws when
 * the lookup fails, so that a failing DNS server never reads as "the address is gone".
 */
async function resolve4(name: string): Promise<string[]> {
  const script = `require('node:dns').promises.resolve4(${JSON.stringify(name)}).then((a) => console.log(a.sort().join(',')), (e) => console.log('error ' + e.code))`;
  const r = await node.exec(process.execPath, ['-e', script], 10_000);
  const out = r.stdout.trim();
  if (out === '' || out.startsWith('error'))
    throw new Error(`lookup of ${name}: ${out || r.stderr}`);
  return out.split(',');
}

suite('the etcd seed: etcd outside the cluster, through kube-proxy and CoreDNS', () => {
  it('etcdctl writes and reads through etcd-k8s.kube-system.svc.cluster.local', async () => {
    const all = etcd.members.map((m) => `${m.ip}:2379`).sort();
    await waitFor(
      'kube-proxy to program the three members',
      () =>
        Promise.resolve(
          node.programmedEndpoints('kube-system', 'etcd-k8s').join() === all.join() || undefined,
        ),
      60_000,
    );
    const put = await ctl('put', 'seed', 'etcd-outside');
    expect(put.code).toBe(0);
    expect(put.stdout.trim()).toBe('OK');
    const get = await ctl('get', 'seed', '--print-value-only');
    expect(get.stdout.trim()).toBe('etcd-outside');
  }, 90_000);

  it('a killed member stops receiving connections within the bound, the client keeps working, and the member serves again when back', async () => {
    const victim = 2;
    const dead = etcd.members[victim]?.ip ?? '';
    // SYNs from the node to the victim: the client's connections, not outrigger's probes (which
    // come from the host).
    const syns = net.countConnections(dead, 2379, nodeRange);
    await waitFor(
      'a write through the Service',
      async () => (await ctl('put', 'seed', 'etcd-outside')).stdout.trim() === 'OK' || undefined,
    );

    // A request loop of bounded count and time: one new connection every ~100 ms.
    const results: { at: number; ok: boolean; ms: number }[] = [];
    const stop = { now: false };
    const loop = (async () => {
      for (let i = 0; i < 400 && !stop.now; i++) {
        const r = await ctl('get', 'seed', '--print-value-only');
        results.push({
          at: Date.now(),
          ok: r.code === 0 && r.stdout.trim() === 'etcd-outside',
          ms: r.ms,
        });
        await delay(100);
      }
    })();
    await delay(3000);
    // The counter sees the client's connections: about a third of them go to this member.
    const beforeKill = syns.read();
    const killedAt = Date.now();
    await etcd.kill(victim);
    let lastSyn = killedAt;
    let seen = syns.read();
    const watchUntil = killedAt + detectionMs + propagationMs + 10_000;
    while (Date.now() < watchUntil) {
      const n = syns.read();
      if (n !== seen) {
        seen = n;
        lastSyn = Date.now();
      }
      await delay(100);
    }
    stop.now = true;
    await loop;

    const lastConnectionMs = lastSyn - killedAt;
    const after = results.filter((r) => r.at > killedAt);
    const failed = after.filter((r) => !r.ok);
    const lastFailureMs = Math.max(0, ...failed.map((r) => r.at - killedAt));
    // Judged by when a request started: one sent to the dead member just before the last
    // connection to it can fail after it (etcdctl's dial timeout), and that is the failure the
    // bound allows, not a late one.
    const settled = results.filter((r) => r.at - r.ms > lastSyn + 200);
    console.log(
      `etcd member killed (${String(beforeKill)} connections reached it in the 3 s before): last connection sent to it ${String(lastConnectionMs)} ms after its death ` +
        `(bound: detection ${String(detectionMs)} ms + propagation ${String(propagationMs)} ms); ` +
        `${String(failed.length)}/${String(after.length)} requests failed after the kill, the last ` +
        `${String(lastFailureMs)} ms after it (having taken ${String(failed.at(-1)?.ms ?? 0)} ms); ` +
        `${String(settled.length)} requests started after that, all to live members`,
    );
    expect(beforeKill).toBeGreaterThan(0);
    expect(results.filter((r) => r.at < killedAt).every((r) => r.ok)).toBe(true);
    expect(claims['etcd-last-connection'].bound).toBe(detectionMs + propagationMs);
    claim('etcd-last-connection', lastConnectionMs);
    expect(settled.length).toBeGreaterThan(20);
    expect(settled.every((r) => r.ok)).toBe(true);
    expect(node.programmedEndpoints('kube-system', 'etcd-k8s')).not.toContain(`${dead}:2379`);

    // Back: it rejoins the etcd cluster, passes healthyThreshold checks, and connections reach it.
    await etcd.restart(victim);
    await waitFor(
      'kube-proxy to program the member again',
      () =>
        Promise.resolve(
          node.programmedEndpoints('kube-system', 'etcd-k8s').includes(`${dead}:2379`) || undefined,
        ),
      30_000,
    );
    const before = syns.read();
    // Every read on the way must answer: a wrong one is a failure, not a reason to try again.
    const reads: string[] = [];
    await waitFor(
      'a client connection to reach the member again',
      async () => {
        const r = await ctl('get', 'seed', '--print-value-only');
        reads.push(r.code === 0 ? r.stdout.trim() : `exit ${String(r.code)}: ${r.stderr.trim()}`);
        return syns.read() > before || undefined;
      },
      30_000,
      0,
    );
    expect(reads.filter((v) => v !== 'etcd-outside')).toEqual([]);
  }, 120_000);

  it('headless: CoreDNS answers with the healthy members only', async () => {
    const name = 'etcd-k8s-headless.kube-system.svc.cluster.local';
    const all = etcd.members.map((m) => m.ip).sort();
    await waitFor(
      'CoreDNS to answer with every member',
      async () => ((await resolve4(name)).join() === all.join() ? true : undefined),
      60_000,
      200,
    );
    const victim = 1;
    const dead = etcd.members[victim]?.ip ?? '';
    const killedAt = Date.now();
    await etcd.kill(victim);
    await waitFor(
      'CoreDNS to drop the dead member',
      async () =>
        (await resolve4(name)).join() === all.filter((ip) => ip !== dead).join() || undefined,
      detectionMs + propagationMs + 10_000,
      100,
    );
    const goneMs = Date.now() - killedAt;
    expect(await resolve4(name)).toEqual(all.filter((ip) => ip !== dead));
    expect(claims['etcd-headless-gone'].bound).toBe(detectionMs + propagationMs);
    claim('etcd-headless-gone', goneMs, "the dead member out of CoreDNS's answer");
    await etcd.restart(victim);
    await waitFor(
      'CoreDNS to answer with the member again',
      async () => ((await resolve4(name)).join() === all.join() ? true : undefined),
      30_000,
      200,
    );
  }, 120_000);
});
