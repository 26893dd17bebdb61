// The informer against the real API server: paging, the cache and its handlers, the stall watchdog
// (a watch that sends nothing for longer than its stall timeout is re-established), and client-go's
// watch semantics through a fault-injecting proxy (410 relists; ERROR events, 429 and 500 back off
// and re-watch from the last resourceVersion), and the periodic resync.
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { CachedPod } from '../src/runtime/cached.ts';
import { Informer } from '../src/runtime/informer.ts';
import type { WatchEndReason } from '../src/runtime/watchstream.ts';
import { podClient } from '../src/runtime/listers.ts';
import { loadConnection } from '../src/runtime/kubeconfig.ts';
import { restClient } from '../src/runtime/rest.ts';
import { transformPod } from '../src/runtime/transforms.ts';
import { createLogger } from '../src/runtime/log.ts';
import { allOf, inNamespace, isList, isWatch, startApiProxy } from './harness/apiproxy.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { createRunningPod, createTestNamespace, waitFor, writePodStatus } from './helpers.ts';

let cluster: Cluster;
let kc: KubeConfig;

beforeAll(async () => {
  cluster = await startCluster();
  kc = cluster.kubeConfig();
}, 180_000);

afterAll(async () => {
  await cluster.stop();
});

describe('Informer', () => {
  it('changes the namespaces it watches while running, and forgets the ones it drops', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const a = await createTestNamespace(kc, 'scope-a');
    const b = await createTestNamespace(kc, 'scope-b');
    await createRunningPod(core, a, 'in-a', { ip: '10.244.4.1', ready: true });
    await createRunningPod(core, b, 'in-b', { ip: '10.244.4.2', ready: true });
    const informer = new Informer<CachedPod>({
      name: 'pods',
      client: podClient(restClient(await loadConnection(cluster.kubeconfigPath))),
      transform: transformPod,
      namespaces: [a],
      log: createLogger('error'),
    });
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    try {
      expect(await informer.waitForSync(stop.signal)).toBe(true);
      expect(informer.list().map((p) => p.metadata?.name)).toEqual(['in-a']);
      expect(informer.hasSyncedNamespace(b)).toBe(false);

      informer.setNamespaces([a, b]);
      expect(informer.hasSynced()).toBe(false);
      expect(await informer.waitForSync(stop.signal)).toBe(true);
      expect(informer.hasSyncedNamespace(b)).toBe(true);
      expect(informer.get(b, 'in-b')).toBeDefined();

      informer.setNamespaces([b]);
      expect(informer.get(a, 'in-a')).toBeUndefined();
      expect(informer.hasSyncedNamespace(a)).toBe(false);
      // A change in the dropped namespace never comes back into the cache.
      await createRunningPod(core, a, 'late', { ip: '10.244.4.3', ready: true });
      await createRunningPod(core, b, 'later', { ip: '10.244.4.4', ready: true });
      await waitFor('the watched namespace to follow', () =>
        Promise.resolve(informer.get(b, 'later') !== undefined ? true : undefined),
      );
      expect(informer.list(a)).toEqual([]);

      // Back again: listed afresh.
      informer.setNamespaces([a, b]);
      expect(await informer.waitForSync(stop.signal)).toBe(true);
      expect(
        informer
          .list(a)
          .map((p) => p.metadata?.name)
          .sort(),
      ).toEqual(['in-a', 'late']);
    } finally {
      stop.abort();
      await running;
    }
  }, 60_000);

  it("keeps each namespace's failure to itself: one refused namespace says nothing of another", async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const a = await createTestNamespace(kc, 'fail-a');
    const b = await createTestNamespace(kc, 'fail-b');
    await createRunningPod(core, a, 'in-a', { ip: '10.244.4.1', ready: true });
    const proxy = await startApiProxy(cluster);
    const proxied = restClient(await loadConnection(proxy.kubeconfigPath));
    const unrefuse = proxy.fault(allOf(isList('pods'), inNamespace(b)), {
      kind: 'status',
      code: 403,
    });
    // a's list is held until b has been refused, as a slow list would be.
    const release = proxy.fault(allOf(isList('pods'), inNamespace(a)), { kind: 'hang' });
    const informer = new Informer<CachedPod>({
      name: 'pods',
      client: podClient(proxied),
      transform: transformPod,
      namespaces: [a, b],
      log: createLogger('error'),
    });
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    try {
      await waitFor('b refused', () =>
        Promise.resolve(informer.failure(b) !== undefined ? true : undefined),
      );
      expect(informer.failure(b)?.code).toBe(403);
      expect(informer.failure(a)).toBeUndefined();
      expect(informer.hasSyncedNamespace(a)).toBe(false);
      // A failing scope keeps the time it began failing through its retries.
      const since = informer.failure(b)?.since;
      const lists = () => proxy.requests.filter(allOf(isList('pods'), inNamespace(b))).length;
      const tried = lists();
      await waitFor('b retried', () => Promise.resolve(lists() > tried ? true : undefined), 10_000);
      expect(informer.failure(b)?.since).toBe(since);
      release();
      await waitFor('a synced', () =>
        Promise.resolve(informer.hasSyncedNamespace(a) ? true : undefined),
      );
      expect(informer.get(a, 'in-a')).toBeDefined();
      expect(informer.failure(a)).toBeUndefined();
      expect(informer.failure(b)?.code).toBe(403);
      unrefuse();
      // b lists once it is allowed to (after its backoff), and its failure is gone.
      await waitFor(
        'b synced',
        () => Promise.resolve(informer.hasSyncedNamespace(b) ? true : undefined),
        15_000,
      );
      expect(informer.failure(b)).toBeUndefined();
    } finally {
      stop.abort();
      await running;
      await proxy.close();
    }
  }, 60_000);

  it('lists in pages, follows changes, hands handlers old and new objects, and survives stalls', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const ns = await createTestNamespace(kc, 'informer');
    for (let i = 0; i < 7; i++)
      await createRunningPod(core, ns, `p-${i}`, { ip: `10.244.3.${i}`, ready: true });

    const ends: WatchEndReason[] = [];
    const events: string[] = [];
    const informer = new Informer<CachedPod>({
      name: 'pods',
      client: podClient(restClient(await loadConnection(cluster.kubeconfigPath))),
      transform: transformPod,
      namespaces: [ns],
      log: createLogger('error'),
      pageSize: 3,
      stallTimeoutMs: 1000,
      onWatchEnd: (r) => ends.push(r),
    });
    informer.addHandlers({
      add: (p) => events.push(`add ${p.metadata?.name ?? ''}`),
      update: (o, n) => {
        const ready = (p: CachedPod): string => p.status?.conditions?.[0]?.status ?? '?';
        events.push(`update ${n.metadata?.name ?? ''} ${ready(o)}->${ready(n)}`);
      },
      delete: (p) => events.push(`delete ${p.metadata?.name ?? ''}`),
    });
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    try {
      expect(await informer.waitForSync(stop.signal)).toBe(true);
      expect(informer.list(ns)).toHaveLength(7); // three pages of three
      expect(Object.isFrozen(informer.get(ns, 'p-0')?.status)).toBe(true);

      // Nothing happens in the namespace: the 1 s watchdog must cut and re-establish the watch.
      await delay(3500);
      expect(ends.filter((r) => r === 'stalled').length).toBeGreaterThanOrEqual(2);

      await writePodStatus(core, ns, 'p-1', '10.244.3.1', false);
      await core.deleteNamespacedPod({ name: 'p-2', namespace: ns, gracePeriodSeconds: 0 });
      await waitFor('the informer to see the changes', () =>
        Promise.resolve(
          informer.get(ns, 'p-2') === undefined &&
            informer.get(ns, 'p-1')?.status?.conditions?.[0]?.status === 'False'
            ? true
            : undefined,
        ),
      );
      expect(events).toContain('update p-1 True->False');
      expect(events).toContain('delete p-2');
      expect(events.filter((e) => e.startsWith('add '))).toHaveLength(7);
    } finally {
      stop.abort();
      await running;
    }
  }, 60_000);

  it('backs off and re-watches from the last resourceVersion on ERROR events, 429 and 500; relists on 410 only', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const ns = await createTestNamespace(kc, 'watchfaults');
    await createRunningPod(core, ns, 'p-0', { ip: '10.244.4.1', ready: true });
    const proxy = await startApiProxy(cluster);
    const proxied = restClient(await loadConnection(proxy.kubeconfigPath));
    const ends: WatchEndReason[] = [];
    let resynced = 0;
    const informer = new Informer<CachedPod>({
      name: 'pods',
      client: podClient(proxied),
      transform: transformPod,
      namespaces: [ns],
      log: createLogger('error'),
      resyncPeriodMs: 1000,
      // A quiet watch is cut and re-opened every second, so the next one meets a fault.
      stallTimeoutMs: 1000,
      onWatchEnd: (r) => ends.push(r),
    });
    informer.addHandlers({
      update: (o, n) => {
        if (o === n) resynced++;
      },
    });
    const lists = () => proxy.requests.filter(allOf(isList('pods'), inNamespace(ns))).length;
    const watches = () => proxy.requests.filter(allOf(isWatch('pods'), inNamespace(ns)));
    const ready = () => informer.get(ns, 'p-0')?.status?.conditions?.[0]?.status;
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    try {
      expect(await informer.waitForSync(stop.signal)).toBe(true);
      await waitFor('a watch', () => Promise.resolve(watches().length > 0 ? true : undefined));
      expect(lists()).toBe(1);
      // The periodic resync hands every object to the update handlers again.
      await waitFor('a resync', () => Promise.resolve(resynced > 0 ? true : undefined), 5000);

      const cases = [
        ['an ERROR event (500)', { kind: 'watchError', code: 500 }],
        ['429 Too Many Requests', { kind: 'status', code: 429 }],
        ['500 Internal Server Error', { kind: 'status', code: 500 }],
      ] as const;
      let flip = false;
      for (const [what, fault] of cases) {
        const before = watches().length;
        const lift = proxy.fault(allOf(isWatch('pods'), inNamespace(ns)), fault);
        await delay(1500); // the open watch stalls out; the next ones meet the fault
        flip = !flip;
        await writePodStatus(core, ns, 'p-0', '10.244.4.1', !flip);
        await delay(3000);
        const attempts = watches().length - before;
        lift();
        await waitFor(`the change made during ${what}`, () =>
          Promise.resolve(ready() === (flip ? 'False' : 'True') ? true : undefined),
        );
        const resumed = watches().at(-1);
        console.log(
          `${what} on every watch for 3 s: ${String(attempts)} watch attempts (backing off), lists ${String(lists())}, resumed from resourceVersion ${resumed?.query.get('resourceVersion') ?? '?'}`,
        );
        // Backing off, not spinning; and no relist of everything.
        expect(attempts).toBeLessThanOrEqual(6);
        expect(lists()).toBe(1);
        expect(resumed?.query.get('resourceVersion')).not.toBe('');
      }

      // 410 Gone: the version is gone, so the informer lists again (once).
      const lift = proxy.fault(allOf(isWatch('pods'), inNamespace(ns)), {
        kind: 'watchError',
        code: 410,
      });
      await waitFor('a relist after 410', () => Promise.resolve(lists() >= 2 ? true : undefined));
      lift();
      expect(ends).toContain('expired');
      await writePodStatus(core, ns, 'p-0', '10.244.4.1', true);
      await waitFor('the informer to follow again', () =>
        Promise.resolve(ready() === 'True' ? true : undefined),
      );
    } finally {
      stop.abort();
      await running;
      await proxy.close();
    }
  }, 90_000);
});
