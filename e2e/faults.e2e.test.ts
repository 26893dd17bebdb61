// The fault matrix: each fault injected into a real control plane while the world churns (pods
// flip readiness and are replaced, backend servers die and return, ExternalBackends are edited),
// then churn stops and every Endpoints, EndpointSlice and ExternalBackend status must equal what
// the world computes from scratch, with every object outrigger does not own untouched. outrigger
// runs as supervised replicas (restarted when they exit, as by the kubelet), each behind its own
// recording proxy, with leader election on. A table of every fault is printed at the end.
//
// `npm test` runs the short version; `npm run test:faults` the full one (FAULTS=full: more
// repetitions, longer faults).
import { labelEndpointsManagedBy, managerName } from '../src/api/names.ts';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';

import { group, plural, version } from '../src/api/externalbackend.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { isWatch, isList, anyOf, startApiProxy, type ApiProxy } from './harness/apiproxy.ts';
import { installCrd } from './harness/crd.ts';
import {
  createBackendNetwork,
  netnsUnavailable,
  type BackendNetwork,
  type Farm,
} from './harness/netns.ts';
import { Replica, overlaps, type Write } from './faults/replica.ts';
import { World } from './faults/world.ts';
import { faultsTable, writeFaultsPage, type FaultRow } from './faults/page.ts';
import { provenance } from './harness/provenance.ts';
import { teardown, waitFor } from './helpers.ts';
import { describeUnless, localOnly } from './skips.ts';

const full = process.env.FAULTS === 'full';
/** Taken at the start, so that edits made while the suite runs do not mark its page dirty. */
const measured = provenance();
const skipReason = localOnly ?? netnsUnavailable();
const skip = skipReason !== undefined;
const local = describeUnless(skipReason);
const times = (short: number, long: number): number => (full ? long : short);
const churnRate = 5;
const lease = { duration: 4000, renew: 3000, retry: 500 };

let cluster: Cluster;
let kc: KubeConfig;
let net: BackendNetwork;
let farm: Farm;
let world: World;
let dir: string;
const replicas: Replica[] = [];
const proxies: ApiProxy[] = [];

type Row = FaultRow;
const rows: Row[] = [];

function replicaArgs(l: typeof lease = lease): string[] {
  return [
    '--selector-mode=all',
    '--leader-elect',
    '--leader-election-namespace=default',
    `--leader-elect-lease-duration=${String(l.duration)}ms`,
    `--leader-elect-renew-deadline=${String(l.renew)}ms`,
    `--leader-elect-retry-period=${String(l.retry)}ms`,
    '--watch-stall-timeout=5s',
  ];
}

async function addReplica(name: string): Promise<Replica> {
  const proxy = await startApiProxy(cluster);
  proxies.push(proxy);
  const r = new Replica(name, proxy, replicaArgs(), dir);
  await r.start();
  replicas.push(r);
  return r;
}

/** The replica whose identity holds the Lease now. */
async function leader(): Promise<Replica> {
  const leases = kc.makeApiClient(CoordinationV1Api);
  return waitFor('a leader', async () => {
    const l = await leases.readNamespacedLease({ namespace: 'default', name: 'outrigger-leader' });
    const holder = l.spec?.holderIdentity ?? '';
    const expired =
      Date.now() - new Date(l.spec?.renewTime ?? 0).getTime() >
      (l.spec?.leaseDurationSeconds ?? 0) * 1000;
    if (expired || holder === '') return undefined;
    // Identities are "<hostname>_<random>"; a replica's current process logs its own.
    for (const r of replicas) {
      // Its own identity, not one it saw holding the lease while standing by.
      const log = readFileSync(r.logPath(), 'utf8');
      if (log.includes(`"identity":"${holder}"`)) return r;
    }
    return undefined;
  });
}

function mark(): Map<Replica, number> {
  return new Map(replicas.map((r) => [r, r.proxy.requests.length]));
}

function writesSince(m: Map<Replica, number>): Write[] {
  return replicas.flatMap((r) => r.writes(m.get(r) ?? 0));
}

/** Waits until no replica has written anything for `ms` (every status settled, no probe pending). */
async function quiet(ms: number): Promise<void> {
  await waitFor(
    `${String(ms)} ms without a write`,
    () => {
      const ends = replicas.flatMap((r) => r.writes().map((w) => Math.min(w.to, Date.now())));
      return Promise.resolve(Date.now() - Math.max(0, ...ends) >= ms ? true : undefined);
    },
    60_000,
    250,
  );
}

function random(minMs: number, maxMs: number): number {
  return minMs + Math.floor(Math.random() * (maxMs - minMs));
}

/**
 * Runs `fault` while the world churns, then stops the churn, waits for convergence, and records a
 * row of the table; fails the test when anything is lost or a foreign object was touched.
 */
async function underChurn(
  name: string,
  fault: () => Promise<string | undefined>,
  o: { runs?: number; checkOverlap?: boolean; churn?: boolean } = {},
): Promise<void> {
  const before = await world.converge(60_000);
  expect(before.lost).toEqual([]);
  const m = mark();
  const restartsBefore = replicas.reduce((a, r) => a + r.restarts, 0);
  const churn = o.churn === false ? undefined : world.churn(churnRate);
  let note: string | undefined;
  try {
    note = await fault();
  } finally {
    await churn?.stop();
  }
  const end = await world.converge(90_000);
  const foreign = await world.foreignTouched();
  const writes = writesSince(m);
  const problems = o.checkOverlap === true ? overlaps(writes) : [];
  rows.push({
    fault: name,
    runs: o.runs ?? 1,
    convergeMs: end.ms,
    writes: writes.length,
    restarts: replicas.reduce((a, r) => a + r.restarts, 0) - restartsBefore,
    lost: end.lost.length,
    foreign: foreign.length,
    note: [note, ...problems].filter(Boolean).join('; '),
  });
  expect(end.lost).toEqual([]);
  expect(foreign).toEqual([]);
  expect(problems).toEqual([]);
}

beforeAll(async () => {
  if (skip) return;
  // The garbage collector removes what an ExternalBackend owned once it is deleted.
  cluster = await startCluster({ controllers: ['garbage-collector-controller'] });
  kc = cluster.kubeConfig();
  dir = cluster.dir ?? '/tmp';
  await installCrd(cluster.kubeconfigPath);
  net = createBackendNetwork(dir, 4);
  farm = net.farm();
  world = await World.create(kc, farm, {
    prefix: 'faults',
    namespaces: 2,
    servicesPerNamespace: 3,
    podsPerService: 6,
    backendsPerNamespace: 3,
    addressesPerBackend: 4,
    ipv4: net.ipv4,
    ipv6: net.ipv6,
    seed: Number(process.env.FAULTS_SEED ?? 11),
  });
  await addReplica('a');
}, 300_000);

afterAll(async () => {
  if (skip) return;
  // The table first: it is the run's result, and must be printed even if a clean-up step hangs.
  const table = faultsTable(rows);
  writeFileSync(join(process.cwd(), 'e2e', 'faults', 'last-run.md'), `${table}\n`);
  process.stdout.write(`\nfault matrix (${full ? 'full' : 'short'}):\n${table}\n`);
  const out = process.env.OUTRIGGER_RESULTS_OUT;
  if (out !== undefined && out !== '' && rows.length > 0)
    process.stdout.write(
      `wrote ${writeFaultsPage(out, rows, {
        full,
        provenance: measured,
        note: process.env.OUTRIGGER_RESULTS_NOTE,
        setup: `Every fault ran under churn at ${String(churnRate)} changes a second over 2 namespaces, 6 selector Services with 36 pods, and 6 ExternalBackends with 4 addresses each (both families) checked every second. outrigger ran with a ${String(lease.duration / 1000)} s lease, ${String(lease.renew / 1000)} s renew deadline, ${String(lease.retry / 1000)} s retry period and \`--watch-stall-timeout=5s\`.`,
      })}\n`,
    );
  // Every step runs whatever the others do (the process reapers are the last resort).
  await Promise.allSettled(replicas.map((r) => r.stop()));
  await Promise.allSettled(proxies.map((p) => p.close()));
  await Promise.allSettled([farm.stop()]);
  await Promise.allSettled([net.remove()]);
  await teardown(() => cluster.stop());
}, 120_000);

local('faults under churn', () => {
  it('a synced cluster: starting again writes nothing', async () => {
    await underChurn(
      'restart on a synced cluster',
      async () => {
        const r = replicas[0];
        if (r === undefined) throw new Error('no replica');
        // Synced means settled: first probes done, statuses final (a status write held back by
        // --status-batch-period comes at most 5 s after the one before it).
        await quiet(6000);
        const objects = kc.makeApiClient(CustomObjectsApi);
        const statuses = async (): Promise<unknown[]> => {
          const out: unknown[] = [];
          for (const namespace of world.namespaces) {
            const list = (await objects.listNamespacedCustomObject({
              group,
              version,
              namespace,
              plural,
            })) as { items: { metadata?: { name?: string }; status?: unknown }[] };
            for (const xb of list.items) out.push({ name: xb.metadata?.name, status: xb.status });
          }
          return out;
        };
        const before = await statuses();
        await r.stop();
        const from = r.proxy.requests.length;
        await r.start();
        await leader();
        // Long enough for a full resync of every informer and the first round of probes.
        await delay(5000);
        const w = r.writes(from);
        expect(await statuses()).toEqual(before);
        expect(w).toEqual([]);
        return `${String(w.length)} writes after a restart`;
      },
      { churn: false },
    );
  }, 120_000);

  it('kube-apiserver SIGKILLed and restarted, three times in a row', async () => {
    await underChurn(
      'kube-apiserver SIGKILL ×3',
      async () => {
        for (let i = 0; i < 3; i++) {
          await delay(random(500, 4000));
          await cluster.restartApiServer(random(0, 2000), 'SIGKILL');
        }
        return undefined;
      },
      { runs: 3 },
    );
  }, 300_000);

  it('etcd compacted while watches are stale: every watch gets 410 Gone and relists', async () => {
    const a = replicas[0];
    if (a === undefined) throw new Error('no replica');
    // The API server restart below outlasts a 3 s renew deadline, and a process that exits
    // relists anyway: this replica keeps its lease through it, so its watches meet the 410.
    await a.stop();
    replicas.splice(0, 1);
    const c = new Replica(
      'c',
      a.proxy,
      replicaArgs({ duration: 60_000, renew: 40_000, retry: 1000 }),
      dir,
    );
    replicas.unshift(c);
    try {
      await c.start();
      await leader();
      const expiredBefore = await c.current?.metric('outrigger_informer_watch_restarts_total', {
        reason: 'expired',
      });
      await underChurn('etcd compaction → 410 Gone', async () => {
        // Watches go silent, so outrigger's resourceVersions fall behind while the world churns.
        const heal = c.proxy.fault(isWatch(), { kind: 'silentWatch' });
        c.proxy.resetConnections();
        await delay(6000);
        const revision = await cluster.compactEtcd();
        // A fresh API server has an empty watch cache: older resourceVersions go to etcd, which
        // has compacted them away.
        await cluster.restartApiServer(0, 'SIGKILL');
        heal();
        return `compacted at revision ${String(revision)}`;
      });
      const expired =
        ((await c.current?.metric('outrigger_informer_watch_restarts_total', {
          reason: 'expired',
        })) ?? 0) - (expiredBefore ?? 0);
      expect(c.restarts).toBe(0);
      expect(expired).toBeGreaterThan(0);
      const row = rows[rows.length - 1];
      if (row !== undefined)
        rows[rows.length - 1] = {
          ...row,
          note: `${row.note}; ${String(expired)} watches expired (410) and relisted`,
        };
    } finally {
      await c.stop();
      replicas.splice(0, 1, a);
      await a.start();
    }
  }, 300_000);

  it('watches held open and silent by a proxy', async () => {
    const r = replicas[0];
    if (r === undefined) throw new Error('no replica');
    await underChurn('silent watches', async () => {
      // Open watches are cut; outrigger notices no error on them (a cut stream stays silent, as
      // a dead load balancer would leave it) until its stall timeout, and re-watches into silence.
      const heal = r.proxy.fault(isWatch(), { kind: 'silentWatch' });
      r.proxy.resetConnections();
      await delay(times(12_000, 25_000));
      heal();
      return '--watch-stall-timeout=5s';
    });
  }, 300_000);

  it('changes are published while the Endpoints and slice watches are silent', async () => {
    const r = replicas[0];
    if (r === undefined) throw new Error('no replica');
    const ns = world.namespaces[1] ?? '';
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    // Churn in earlier tests may have left xb-2 with one address; this test needs its whole pool.
    const pool = await world.restoreAddresses(ns, 'xb-2');
    // What this test is about is updating a slice outrigger already published, while its own
    // writes never reach its cache: start from the restored pool published in the slices.
    await waitFor('xb-2 published with its whole pool before the watches go silent', async () => {
      const slices = await discovery.listNamespacedEndpointSlice({
        namespace: ns,
        labelSelector: 'kubernetes.io/service-name=xb-2',
      });
      const published = new Set(
        slices.items.flatMap((s) => (s.endpoints ?? []).flatMap((e) => e.addresses)),
      );
      return pool.every((ip) => published.has(ip)) ? true : undefined;
    });
    await underChurn(
      'Endpoints and slice caches lag: 3 changes',
      async () => {
        // outrigger's own writes no longer reach its caches, so each apply after the first
        // finds a cached resourceVersion that is already out of date.
        const heal = r.proxy.fault(anyOf(isWatch('endpoints'), isWatch('endpointslices')), {
          kind: 'silentWatch',
        });
        r.proxy.resetConnections();
        try {
          // Past the stall timeout: every Endpoints and slice watch is now a silent one.
          await delay(6000);
          // Every server up, so that one going down is a change and not a fail-open.
          await world.allServers(true);
          const ip = pool[0];
          if (ip === undefined || pool.length < 2) throw new Error('xb-2 needs two addresses');
          const slice = `xb-2-outrigger-${ip.includes(':') ? 'ipv6' : 'ipv4'}`;
          const port = world.portOf(ns, 'xb-2');
          const started = Date.now();
          for (const up of [false, true, false]) {
            await world.setServer(ip, port, up);
            await waitFor(
              `${ip} published ${up ? 'ready' : 'not ready'} while the watches are silent`,
              async () => {
                const s = await discovery.readNamespacedEndpointSlice({
                  namespace: ns,
                  name: slice,
                });
                const e = (s.endpoints ?? []).find((x) => x.addresses.includes(ip));
                return e?.conditions?.ready === up ? true : undefined;
              },
              20_000,
            );
          }
          return `3 changes published in ${String(Date.now() - started)} ms, watches silent throughout`;
        } finally {
          heal();
        }
      },
      { churn: false },
    );
  }, 300_000);

  it('watches answered with ERROR events, then 429s, then 500s', async () => {
    const r = replicas[0];
    if (r === undefined) throw new Error('no replica');
    await underChurn('watch ERROR events, 429, 500', async () => {
      const phase = times(3000, 8000);
      let heal = r.proxy.fault(isWatch(), {
        kind: 'watchError',
        code: 500,
        reason: 'InternalError',
      });
      await delay(phase);
      heal();
      heal = r.proxy.fault(anyOf(isWatch(), isList()), { kind: 'status', code: 429 });
      await delay(phase);
      heal();
      heal = r.proxy.fault(anyOf(isWatch(), isList()), { kind: 'status', code: 500 });
      await delay(phase);
      heal();
      return undefined;
    });
  }, 300_000);

  it('a second writer keeps changing objects outrigger owns', async () => {
    const ns = world.namespaces[0] ?? '';
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    // Conflicts with outrigger's own writes (409) are expected and retried; anything else fails.
    const retry = (err: unknown): undefined => {
      if (err instanceof ApiException && err.code === 409) return undefined;
      throw err;
    };
    const overwrites = { endpoints: 0, slices: 0 };
    await underChurn('second writer on owned objects', async () => {
      const until = Date.now() + times(6000, 15_000);
      while (Date.now() < until) {
        await (async () => {
          const ep = await core.readNamespacedEndpoints({ namespace: ns, name: 'xb-0' });
          await core.replaceNamespacedEndpoints({
            namespace: ns,
            name: 'xb-0',
            body: { ...ep, subsets: [{ addresses: [{ ip: '192.0.2.99' }], ports: [{ port: 1 }] }] },
          });
          overwrites.endpoints++;
        })().catch(retry);
        await (async () => {
          // Whichever of its slices exists now (churn edits which families a backend has).
          const { items } = await discovery.listNamespacedEndpointSlice({
            namespace: ns,
            labelSelector: `kubernetes.io/service-name=xb-0,endpointslice.kubernetes.io/managed-by=controller.outrigger.dev`,
          });
          const s = items[0];
          if (s === undefined) return;
          const ip = s.addressType === 'IPv6' ? '2001:db8::98' : '192.0.2.98';
          await discovery.replaceNamespacedEndpointSlice({
            namespace: ns,
            name: s.metadata?.name ?? '',
            body: { ...s, endpoints: [{ addresses: [ip], conditions: { ready: true } }] },
          });
          overwrites.slices++;
        })().catch(retry);
        await delay(300);
      }
      return `${String(overwrites.endpoints)} Endpoints and ${String(overwrites.slices)} slice overwrites by the other writer`;
    });
    // The fault happened: the other writer's writes landed (and underChurn found them undone).
    expect(overwrites.endpoints).toBeGreaterThan(0);
    expect(overwrites.slices).toBeGreaterThan(0);
  }, 300_000);

  it('a foreign EndpointSlice for the same Service appears, and outrigger leaves it alone', async () => {
    const ns = world.namespaces[1] ?? '';
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    await underChurn('foreign slice, same service-name', async () => {
      const s = await discovery.createNamespacedEndpointSlice({
        namespace: ns,
        body: {
          metadata: {
            name: 'xb-1-mesh',
            labels: {
              'kubernetes.io/service-name': 'xb-1',
              'endpointslice.kubernetes.io/managed-by': 'mesh.example.com',
            },
          },
          addressType: 'IPv4',
          endpoints: [{ addresses: ['192.0.2.77'], conditions: { ready: true } }],
        },
      });
      world.addForeign('EndpointSlice', ns, 'xb-1-mesh', s.metadata?.resourceVersion ?? '');
      await delay(3000);
      return undefined;
    });
  }, 300_000);

  it("outrigger's own slice relabelled by hand is restored", async () => {
    const ns = world.namespaces[0] ?? '';
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    await underChurn('own slice relabelled', async () => {
      // Whichever of its slices exists now (churn edits which families a backend has).
      const { items } = await discovery.listNamespacedEndpointSlice({
        namespace: ns,
        labelSelector: 'endpointslice.kubernetes.io/managed-by=controller.outrigger.dev',
      });
      const s = items[0];
      if (s === undefined) throw new Error(`no outrigger slice in ${ns}`);
      const service = s.metadata?.labels?.['kubernetes.io/service-name'] ?? '';
      await discovery.replaceNamespacedEndpointSlice({
        namespace: ns,
        name: s.metadata?.name ?? '',
        body: {
          ...s,
          metadata: { ...s.metadata, labels: { 'kubernetes.io/service-name': service } },
        },
      });
      await delay(3000);
      return s.metadata?.name;
    });
  }, 300_000);

  it('a hand-written Endpoints created just before outrigger creates its own', async () => {
    const ns = world.namespaces[0] ?? '';
    const core = kc.makeApiClient(CoreV1Api);
    const objects = kc.makeApiClient(CustomObjectsApi);
    const where = { group, version, namespace: ns, plural };
    const conflictReported = (name: string) =>
      waitFor(`ExternalBackend ${name} to report EndpointsHeldByAnotherWriter`, async () => {
        const xb = (await objects.getNamespacedCustomObject({ ...where, name })) as {
          status?: { conditions?: { type: string; reason: string }[] };
        };
        return xb.status?.conditions?.some(
          (c) => c.type === 'ForeignEndpoints' && c.reason === 'EndpointsHeldByAnotherWriter',
        )
          ? true
          : undefined;
      });
    const outcomes: string[] = [];
    await underChurn(
      'hand-written Endpoints races the create',
      async () => {
        const handWritten = (name: string) =>
          core.createNamespacedEndpoints({
            namespace: ns,
            body: {
              metadata: { name },
              subsets: [{ addresses: [{ ip: '192.0.2.66' }], ports: [{ port: 80 }] }],
            },
          });
        for (let i = 0; i < times(2, 5); i++) {
          const name = `race-${String(i)}`;
          // The first round writes the hand-written Endpoints before the backend exists, so that
          // "left alone" is proved every run; the others race and either side may win.
          let ep = i === 0 ? await handWritten(name) : undefined;
          await objects.createNamespacedCustomObject({
            ...where,
            body: {
              apiVersion: `${group}/${version}`,
              kind: 'ExternalBackend',
              metadata: { name },
              spec: { ports: [{ name: 'tcp', port: 80 }], addresses: [{ ip: net.ipv4[0] ?? '' }] },
            },
          });
          try {
            ep ??= await handWritten(name).catch((err: unknown) => {
              if (err instanceof ApiException && err.code === 409) return undefined;
              throw err;
            });
            if (ep === undefined) {
              // outrigger first: the hand-written create was refused, and what stands is
              // outrigger's own Endpoints, without the hand-written address.
              const mine = await core.readNamespacedEndpoints({ namespace: ns, name });
              expect(mine.metadata?.labels?.[labelEndpointsManagedBy]).toBe(managerName);
              expect(
                (mine.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip)),
              ).not.toContain('192.0.2.66');
              outcomes.push('outrigger first: the hand-written create refused');
              continue;
            }
            // outrigger must leave it alone (publishing its own slice beside it) and say so. (Once the backend is deleted, its Service
            // goes and, as upstream does, the endpoints controller deletes that Service's
            // Endpoints: it is checked while the backend lives.)
            await conflictReported(name);
            await delay(2000);
            const after = await core.readNamespacedEndpoints({ namespace: ns, name });
            expect(after.metadata?.resourceVersion).toBe(ep.metadata?.resourceVersion);
            outcomes.push('hand-written first: left alone, published beside it');
          } finally {
            // The garbage collector takes what the backend owned; the hand-written one stays.
            await objects.deleteNamespacedCustomObject({ ...where, name });
          }
        }
        const counts = new Map<string, number>();
        for (const o of outcomes) counts.set(o, (counts.get(o) ?? 0) + 1);
        return [...counts].map(([o, n]) => `${String(n)}× ${o}`).join(', ');
      },
      { runs: times(2, 5) },
    );
  }, 300_000);

  it('outrigger SIGKILLed mid-reconcile, again and again', async () => {
    const r = replicas[0];
    if (r === undefined) throw new Error('no replica');
    const n = times(4, 10);
    await underChurn(
      `outrigger SIGKILL mid-write ×${String(n)}`,
      async () => {
        for (let i = 0; i < n; i++) {
          // Killed just as a write leaves it: mid-reconcile, with the write's fate unknown.
          await leader();
          await r.proxy.waitForRequest(
            (q) => q.verb !== 'get' && q.resource !== 'leases' && q.verb !== 'list' && !q.watch,
            {
              from: r.proxy.requests.length,
              timeoutMs: 30_000,
            },
          );
          await r.kill();
        }
        return undefined;
      },
      { runs: n, checkOverlap: true },
    );
  }, 600_000);

  describe('two replicas', () => {
    beforeAll(async () => {
      if (replicas.length < 2) await addReplica('b');
    }, 120_000);

    it('the leader SIGKILLed', async () => {
      await underChurn(
        'two replicas: leader SIGKILL',
        async () => {
          const l = await leader();
          await delay(2000);
          await l.kill();
          const next = await leader();
          return `${l.name} → ${next.name}`;
        },
        { checkOverlap: true },
      );
    }, 300_000);

    it('the leader SIGSTOPped past its lease, then resumed: it never writes again', async () => {
      let resumedAt = 0;
      let stopped: Replica | undefined;
      let fromIndex = 0;
      await underChurn(
        'two replicas: leader SIGSTOP past the lease',
        async () => {
          stopped = await leader();
          fromIndex = stopped.proxy.requests.length;
          stopped.signal('SIGSTOP');
          await delay(lease.duration + 2000);
          const next = await leader();
          expect(next).not.toBe(stopped);
          stopped.signal('SIGCONT');
          resumedAt = Date.now();
          await delay(3000);
          return `${stopped.name} stopped for ${String(lease.duration + 2000)} ms; ${next.name} took over`;
        },
        { checkOverlap: true },
      );
      const after = (stopped?.writes(fromIndex) ?? []).filter((w) => w.from >= resumedAt);
      expect(after).toEqual([]);
    }, 300_000);

    it('the leader cut off from the API server', async () => {
      await underChurn(
        'two replicas: leader cut off',
        async () => {
          const l = await leader();
          const heal = l.proxy.fault(() => true, { kind: 'hang' });
          const next = await waitFor(
            'another replica to lead',
            async () => {
              const x = await leader();
              return x === l ? undefined : x;
            },
            30_000,
          );
          await delay(2000);
          heal();
          return `${l.name} → ${next.name}`;
        },
        { checkOverlap: true },
      );
    }, 300_000);
  });

  it("the prober's own network is cut: fail-open keeps every address, and status says why", async () => {
    await underChurn('prober network cut', async () => {
      net.cut(true);
      world.proberCut = true;
      try {
        const c = await world.converge(60_000);
        expect(c.lost).toEqual([]);
        return `fail-open in ${String(c.ms)} ms`;
      } finally {
        net.cut(false);
        world.proberCut = false;
      }
    });
  }, 300_000);
});
