// Backup servers through a real kube-proxy: a node (a network namespace with kube-proxy in nftables
// mode) opens a connection to the Service every 100 ms while the primary server dies and comes
// back. kube-proxy must send nothing to the backup while the primary serves, move to the backup
// within the single-backend detection bound when the primary dies, and move back once the primary
// has passed healthyThreshold checks and held them for healthyThreshold intervals, with no failed
// connection on the way back. Only the ClusterIP rules kube-proxy wrote from outrigger's slice
// and the servers' SYN counters decide what passed.
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { dataPlaneUnavailable, nodeRange, startNode, type Node } from './harness/dataplane.ts';
import { createBackendNetwork, type BackendNetwork, type Server } from './harness/netns.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { teardown, waitFor } from './helpers.ts';
import { connections, programmed as programmedFor } from './harness/traffic.ts';
import { describeUnless } from './skips.ts';

const skipReason = dataPlaneUnavailable();
const suite = describeUnless(skipReason);
const ns = 'backups';
const port = 8080;

const check = { intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 2, unhealthyThreshold: 2 };
/** The single-backend detection bound: interval × unhealthyThreshold + timeout. */
const detectionMs =
  (check.intervalSeconds * check.unhealthyThreshold + check.timeoutSeconds) * 1000;
/** outrigger's slice write and kube-proxy's resync (at least --min-sync-period, 1 s, apart). */
const propagationMs = 3000;
/** Back: healthyThreshold checks to pass, then as long again to hold (this hold is guaranteed). */
const holdMs = check.healthyThreshold * check.intervalSeconds * 1000;

let cluster: Cluster;
let node: Node;
let net: BackendNetwork;
let operator: OperatorProcess;
let objects: CustomObjectsApi;
let clusterIP: string;
let primary: string;
let backup: string;
const servers = new Map<string, Server>();

beforeAll(async () => {
  if (skipReason !== undefined) {
    console.warn(`skipping the backup data-path tests: ${skipReason}`);
    return;
  }
  cluster = await startCluster();
  const dir = cluster.dir ?? '/tmp';
  node = await startNode(cluster, { dir: join(dir, 'node'), coreDns: false });
  net = createBackendNetwork(dir, 2, { fromNodes: true });
  [primary = '', backup = ''] = net.ipv4;
  for (const ip of [primary, backup]) servers.set(ip, await net.serve(ip, port, 'tcp'));
  operator = await startOperator(
    cluster.kubeconfigPath,
    ['--status-batch-period=0'],
    join(dir, 'outrigger.log'),
  );
  const kc = cluster.kubeConfig();
  objects = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  await objects.createNamespacedCustomObject({
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
        addresses: [{ ip: primary }],
        backup: { addresses: [{ ip: backup }] },
        healthCheck: { tcp: { port: 'p' }, ...check, failOpen: false },
      },
    },
  });
  await waitFor('the Service', async () => {
    const svc = await core.readNamespacedService({ name: 'db', namespace: ns }).catch(() => null);
    clusterIP = svc?.spec?.clusterIP ?? '';
    return clusterIP !== '' || undefined;
  });
}, 600_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  await teardown(
    () => operator.stop(),
    ...[...servers.values()].map((s) => () => s.stop()),
    () => net.remove(),
    () => node.stop(),
    () => cluster.stop(),
  );
}, 60_000);

const at = (ip: string) => [`${ip}:${String(port)}`];

const programmed = (want: readonly string[], what: string, ms = 60_000) =>
  programmedFor(node, ns, 'db', want, what, ms, 50);

async function backupCondition(): Promise<{ status?: string; reason?: string } | undefined> {
  const xb = (await objects.getNamespacedCustomObject({
    group,
    version,
    plural,
    namespace: ns,
    name: 'db',
  })) as { status?: { conditions?: { type: string; status: string; reason: string }[] } };
  return xb.status?.conditions?.find((c) => c.type === 'BackupActive');
}

/** A connection to the Service every 100 ms for `seconds`, from the node: when each started, and how it went. */
const connectLoop = (seconds: number) =>
  connections(node, clusterIP, port, { seconds, spacingMs: 100, timeoutMs: 1000 });

suite('backup servers through kube-proxy', () => {
  it('the backup stands by while the primary serves, takes over when it dies, and hands back when it returns', async () => {
    await programmed(at(primary), 'kube-proxy to program the primary only');
    expect(await backupCondition()).toMatchObject({ status: 'False', reason: 'PrimariesReady' });
    const toBackup = net.countConnections(backup, port, nodeRange);
    const toPrimary = net.countConnections(primary, port, nodeRange);

    const loop = connectLoop(25);
    await delay(2000);
    const standbyConnections = toBackup.read();
    const killedAt = Date.now();
    await servers.get(primary)?.stop();
    servers.delete(primary);
    const tookOverAt = await programmed(at(backup), 'kube-proxy to program the backup', 30_000);
    await delay(3000);
    const cond = await backupCondition();
    const restartedAt = Date.now();
    servers.set(primary, await net.serve(primary, port, 'tcp'));
    const handedBackAt = await programmed(at(primary), 'kube-proxy to program the primary again');
    const backupAtHandBack = toBackup.read();
    await delay(3000);
    const backupAfter = toBackup.read();
    const results = await loop;

    const beforeKill = results.filter((r) => r.at < killedAt);
    const afterKill = results.filter((r) => r.at >= killedAt && r.at < restartedAt);
    const failed = afterKill.filter((r) => !r.ok);
    const lastFailureMs = Math.max(0, ...failed.map((r) => r.at - killedAt));
    const back = results.filter((r) => r.at >= restartedAt);
    console.log(
      `backup take-over: primary killed, kube-proxy programmed the backup after ${String(tookOverAt - killedAt)} ms ` +
        `(bound: detection ${String(detectionMs)} + propagation ${String(propagationMs)} ms); ` +
        `${String(failed.length)}/${String(afterKill.length)} connections failed, the last started ${String(lastFailureMs)} ms after the kill. ` +
        `Hand-back: primary restarted, programmed alone again after ${String(handedBackAt - restartedAt)} ms ` +
        `(healthyThreshold checks, then held ${String(holdMs)} ms, then propagation); ` +
        `${String(back.filter((r) => !r.ok).length)}/${String(back.length)} connections failed on the way back; ` +
        `${String(standbyConnections)} connections reached the backup while it stood by, ${String(backupAfter - backupAtHandBack)} after the hand-back`,
    );
    // Standing by: nothing reached the backup, everything reached the primary.
    expect(beforeKill.length).toBeGreaterThan(10);
    expect(beforeKill.every((r) => r.ok)).toBe(true);
    expect(standbyConnections).toBe(0);
    expect(toPrimary.read()).toBeGreaterThan(0);
    // Take-over within the single-backend bound, and only failures that started inside it.
    expect(cond).toMatchObject({ status: 'True', reason: 'PrimariesNotReady' });
    expect(tookOverAt - killedAt).toBeLessThanOrEqual(detectionMs + propagationMs);
    expect(lastFailureMs).toBeLessThanOrEqual(detectionMs + propagationMs);
    expect(afterKill.filter((r) => r.at > tookOverAt + 200).every((r) => r.ok)).toBe(true);
    // Hand-back: not before the primary held its checks, no failed connection, then none to the
    // backup (a connection in flight at the moment of the switch may still land: allow one).
    expect(handedBackAt - restartedAt).toBeGreaterThanOrEqual(holdMs);
    expect(back.length).toBeGreaterThan(10);
    expect(back.filter((r) => !r.ok)).toEqual([]);
    expect(backupAfter - backupAtHandBack).toBeLessThanOrEqual(1);
    expect(await backupCondition()).toMatchObject({ status: 'False', reason: 'PrimariesReady' });
  }, 180_000);
});
