// Leader election with real replicas: two or three outrigger processes share a Lease; only the
// leader writes; a standby takes over when the leader dies (measured), at once when it shuts down
// cleanly, and a leader that loses its lease exits before it can contradict the new one.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import {
  CoordinationV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import {
  isLeaseRequest,
  isList,
  isWrite,
  startApiProxy,
  type ApiProxy,
  type ProxiedRequest,
} from './harness/apiproxy.ts';
import { installCrd } from './harness/crd.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { idle } from './harness/witness.ts';
import { createTestNamespace, waitFor } from './helpers.ts';
import { describeUnless, localOnly } from './skips.ts';
import { claim } from './harness/claims.ts';

const local = describeUnless(localOnly);
const leaseName = 'outrigger-leader';
// Short timings so the test is quick; the ratios are the defaults' (15 s / 10 s / 2 s).
const timing = {
  lease: 4000,
  renew: 3000,
  retry: 500,
};

let cluster: Cluster;
let kc: KubeConfig;
let objects: CustomObjectsApi;
let discovery: DiscoveryV1Api;
let leases: CoordinationV1Api;
let ns: string;
const running: OperatorProcess[] = [];
let seq = 0;

beforeAll(async () => {
  if (process.env.USE_EXISTING_CLUSTER === 'true') return;
  cluster = await startCluster();
  kc = cluster.kubeConfig();
  objects = kc.makeApiClient(CustomObjectsApi);
  discovery = kc.makeApiClient(DiscoveryV1Api);
  leases = kc.makeApiClient(CoordinationV1Api);
  ns = await createTestNamespace(kc, 'leader');
  await installCrd(cluster.kubeconfigPath);
}, 180_000);

afterEach(async () => {
  await Promise.all(running.map((p) => p.kill()));
  running.length = 0;
  await leases
    .deleteNamespacedLease({ namespace: 'default', name: leaseName })
    .catch(() => undefined);
});

afterAll(async () => {
  if (process.env.USE_EXISTING_CLUSTER !== 'true') await cluster.stop();
});

async function replica(
  o: { kubeconfig?: string; readyTimeoutMs?: number } = {},
): Promise<OperatorProcess> {
  const p = await startOperator(
    o.kubeconfig ?? cluster.kubeconfigPath,
    [
      '--leader-elect',
      '--leader-election-namespace=default',
      `--leader-elect-lease-duration=${String(timing.lease)}ms`,
      `--leader-elect-renew-deadline=${String(timing.renew)}ms`,
      `--leader-elect-retry-period=${String(timing.retry)}ms`,
    ],
    join(cluster.dir ?? '/tmp', `outrigger-${String(++seq)}.log`),
    // The CRD is installed once in beforeAll, with the cluster's own kubeconfig.
    {
      installCrd: false,
      ...(o.readyTimeoutMs !== undefined ? { readyTimeoutMs: o.readyTimeoutMs } : {}),
    },
  );
  running.push(p);
  return p;
}

const holder = async (): Promise<string | undefined> => {
  try {
    const l = await leases.readNamespacedLease({ namespace: 'default', name: leaseName });
    return l.spec?.holderIdentity ?? undefined;
  } catch {
    return undefined;
  }
};

/** Every write request the proxy forwarded for the replica behind it, but for the Lease. */
const proxiedWrites = (proxy: ApiProxy) =>
  proxy.requests.filter((r) => isWrite()(r) && !isLeaseRequest()(r));

const describeRequest = (r: ProxiedRequest): string =>
  `${r.verb} ${r.resource ?? r.path}/${r.name ?? ''} ${String(r.status ?? '')}`;

const isLeader = async (p: OperatorProcess): Promise<boolean> =>
  (await p.metric('leader_election_master_status', { name: leaseName })) === 1;

async function leaderOf(ps: readonly OperatorProcess[]): Promise<OperatorProcess> {
  return waitFor('exactly one leader', async () => {
    const flags = await Promise.all(ps.map(isLeader));
    return flags.filter(Boolean).length === 1 ? ps[flags.indexOf(true)] : undefined;
  });
}

const writes = (p: OperatorProcess): Promise<number> => p.metric('outrigger_endpoint_writes_total');

/** Creates an ExternalBackend (a documentation address, no health check: nothing is probed). */
async function backend(name: string): Promise<void> {
  await objects.createNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural,
    body: {
      apiVersion,
      kind: 'ExternalBackend',
      metadata: { name },
      spec: { ports: [{ name: 'p', port: 80 }], addresses: [{ ip: '192.0.2.10' }] },
    },
  });
}

const published = (name: string, timeoutMs = 30_000): Promise<unknown> =>
  waitFor(
    `the EndpointSlice of ${name}`,
    () => discovery.readNamespacedEndpointSlice({ namespace: ns, name: `${name}-outrigger-ipv4` }),
    timeoutMs,
    50,
  );

local('leader election', () => {
  it('only the leader writes; a standby takes over when the leader is killed', async () => {
    // Each replica behind a recording proxy of its own: the API server's view of who wrote what.
    const pa = await startApiProxy(cluster);
    const pb = await startApiProxy(cluster);
    try {
      const a = await replica({ kubeconfig: pa.kubeconfigPath });
      const b = await replica({ kubeconfig: pb.kubeconfigPath });
      const leader = await leaderOf([a, b]);
      const standby = leader === a ? b : a;
      const [leaderProxy, standbyProxy] = leader === a ? [pa, pb] : [pb, pa];
      await backend('first');
      await published('first');
      // The leader's work for it is done (status written after the slices) before the window closes.
      await idle(leader, 'externalbackend');
      expect(proxiedWrites(leaderProxy).length).toBeGreaterThan(0);
      // The standby had its caches synced before 'first' was created (it reported ready) and has
      // been watching since: it saw the same change and wrote nothing.
      expect(proxiedWrites(standbyProxy).map(describeRequest)).toEqual([]);
      // Second witness: the replicas' own counts agree.
      expect(await writes(leader)).toBeGreaterThan(0);
      expect(await writes(standby)).toBe(0);
      expect(await isLeader(standby)).toBe(false);

      const killedAt = Date.now();
      await leader.kill();
      await waitFor(
        'the standby to lead',
        () => isLeader(standby).then((l) => (l ? true : undefined)),
        30_000,
        50,
      );
      const takeoverMs = Date.now() - killedAt;
      await backend('second');
      await published('second');
      const servingMs = Date.now() - killedAt;
      claim('leader-killed-takeover', takeoverMs);
      console.log(
        `leader killed (SIGKILL) → standby leads after ${String(takeoverMs)} ms, its first write within ${String(servingMs)} ms ` +
          `(lease ${String(timing.lease)} ms, renew deadline ${String(timing.renew)} ms, retry ${String(timing.retry)} ms)`,
      );
      // A killed leader cannot release its lease: the standby must wait for it to expire.
      expect(takeoverMs).toBeGreaterThanOrEqual(timing.lease - timing.retry);
      const lease = await leases.readNamespacedLease({ namespace: 'default', name: leaseName });
      expect(lease.spec?.leaseTransitions).toBe(1);
      // Once leading, the former standby's writes do reach its proxy: the witness above can see them.
      expect(proxiedWrites(standbyProxy).length).toBeGreaterThan(0);
    } finally {
      await pa.close();
      await pb.close();
    }
  }, 90_000);

  it('a leader that shuts down releases the lease, so a standby takes over without waiting', async () => {
    const a = await replica();
    const b = await replica();
    const leader = await leaderOf([a, b]);
    const standby = leader === a ? b : a;
    const stoppedAt = Date.now();
    expect(await leader.stop()).toBe(0);
    await waitFor(
      'the standby to lead',
      () => isLeader(standby).then((l) => (l ? true : undefined)),
      30_000,
      50,
    );
    const takeoverMs = Date.now() - stoppedAt;
    claim('leader-stopped-takeover', takeoverMs);
  }, 60_000);

  it('a leader that cannot renew (API server unreachable) exits within the renew deadline', async () => {
    const a = await replica();
    await leaderOf([a]);
    const downAt = Date.now();
    let exitMs = -1;
    const exited = a.exited.then((code) => {
      exitMs = Date.now() - downAt;
      return code;
    });
    // Down for longer than the lease: a standby could take over once it expires.
    await cluster.restartApiServer(timing.lease + 2000);
    expect(await exited).toBe(1);
    claim('leader-unreachable-exit', exitMs);
    // It stopped before its lease could expire, so no two replicas ever wrote at once.
    expect(exitMs).toBeLessThan(timing.lease);
    running.length = 0;
  }, 90_000);

  it('renews its lease while its first sync is slower than the lease: no standby takes over', async () => {
    const proxy = await startApiProxy(cluster);
    const pb = await startApiProxy(cluster);
    try {
      // Every list the first replica makes takes three lease durations.
      const slowMs = 3 * timing.lease;
      proxy.fault(isList(), { kind: 'delay', ms: slowMs });
      const a = await replica({ kubeconfig: proxy.kubeconfigPath, readyTimeoutMs: 0 });
      const first = await waitFor('the first replica to take the lease', holder, 30_000, 50);
      const b = await replica({ kubeconfig: pb.kubeconfigPath });
      const holders = new Set<string>();
      let bLed = false;
      const until = Date.now() + slowMs + timing.lease;
      while (Date.now() < until) {
        holders.add((await holder()) ?? '');
        bLed ||= await isLeader(b);
        await new Promise((r) => setTimeout(r, 100));
      }
      console.log(
        `first sync slowed by ${String(slowMs)} ms (lease ${String(timing.lease)} ms): holders seen ${JSON.stringify([...holders])}`,
      );
      expect([...holders]).toEqual([first]);
      expect(bLed).toBe(false);
      // What the API server got from the standby over the whole window: Lease requests only.
      expect(proxiedWrites(pb).map(describeRequest)).toEqual([]);
      // Second witness: its own count.
      expect(await writes(b)).toBe(0);
      // Once synced, the first replica is the one that serves.
      await backend('slow-sync');
      await published('slow-sync', 60_000);
      expect(await isLeader(a)).toBe(true);
      expect(proxiedWrites(proxy).length).toBeGreaterThan(0);
    } finally {
      await proxy.close();
      await pb.close();
    }
  }, 120_000);

  it('a leader that cannot renew stops writing before a standby takes over', async () => {
    const proxy = await startApiProxy(cluster);
    try {
      const a = await replica({ kubeconfig: proxy.kubeconfigPath });
      await leaderOf([a]);
      const b = await replica();
      // Keep the leader busy writing: a new backend every 100 ms.
      let n = 0;
      const churning = { on: true };
      const churn = (async () => {
        while (churning.on) {
          await backend(`churn-${String(++n)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      await published('churn-3');
      expect(proxiedWrites(proxy).length).toBeGreaterThan(0);
      // The leader's Lease requests now hang: it cannot renew, everything else still works.
      const cutAt = Date.now();
      proxy.fault(isLeaseRequest(), { kind: 'hang' });
      await waitFor(
        'the standby to lead',
        () => isLeader(b).then((l) => l || undefined),
        30_000,
        50,
      );
      // The churn goes on until the old leader has exited, so that it has work for as long as it
      // may believe it leads: stopped when the standby leads, it would hide a standby that took
      // the lease too early (the mutation check's mutant 05 did so).
      expect(await a.exited).toBe(1);
      churning.on = false;
      await churn;
      const lease = await leases.readNamespacedLease({ namespace: 'default', name: leaseName });
      const takenAt = new Date(String(lease.spec?.acquireTime)).getTime();
      const lastWrite = Math.max(...proxiedWrites(proxy).map((r) => r.at));
      console.log(
        `leader cut off from its Lease: last write ${String(lastWrite - cutAt)} ms after the cut, standby took over ${String(takenAt - cutAt)} ms after it (renew deadline ${String(timing.renew)} ms, lease ${String(timing.lease)} ms)`,
      );
      expect(lastWrite).toBeLessThan(takenAt);
      claim('leader-cut-off-last-write', lastWrite - cutAt);
      running.splice(running.indexOf(a), 1);
    } finally {
      await proxy.close();
    }
  }, 120_000);

  it('a leader that loses its lease stops: it exits before another may start', async () => {
    const a = await replica();
    await leaderOf([a]);
    // Someone else takes the lease (as a partitioned leader would find on its return). MicroTime
    // needs six fractional digits, which client-node's Date serialization does not give.
    // The leader renews every retry period: a replace between our read and write conflicts
    // (409), and is made again from a fresh read.
    for (let attempt = 1; ; attempt++) {
      const lease = await leases.readNamespacedLease({ namespace: 'default', name: leaseName });
      const replaced = await leases
        .replaceNamespacedLease({
          namespace: 'default',
          name: leaseName,
          body: {
            ...lease,
            spec: {
              ...lease.spec,
              holderIdentity: 'intruder',
              leaseDurationSeconds: 60,
              renewTime: '2026-01-01T00:00:00.000000Z' as unknown as Date,
            },
          },
        })
        .then(
          () => true,
          (err: unknown) => {
            if ((err as { code?: number }).code !== 409 || attempt >= 20) throw err;
            return false;
          },
        );
      if (replaced) break;
    }
    const takenAt = Date.now();
    expect(await a.exited).toBe(1);
    const exitMs = Date.now() - takenAt;
    console.log(`lease taken by another holder → old leader exited after ${String(exitMs)} ms`);
    expect(exitMs).toBeLessThan(timing.renew + timing.retry);
    running.length = 0;
  }, 60_000);
});
