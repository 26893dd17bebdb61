// The informer against the real API server: paging, the cache and its handlers, and the stall
// watchdog (a watch that sends nothing for longer than its stall timeout is re-established).
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { Informer, type WatchEndReason } from '../src/kube/informer.ts';
import { podClient, transformPod } from '../src/kube/resources.ts';
import { createLogger } from '../src/log.ts';
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
  it('lists in pages, follows changes, hands handlers old and new objects, and survives stalls', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const ns = await createTestNamespace(kc, 'informer');
    for (let i = 0; i < 7; i++)
      await createRunningPod(core, ns, `p-${i}`, { ip: `10.244.3.${i}`, ready: true });

    const ends: WatchEndReason[] = [];
    const events: string[] = [];
    const informer = new Informer<V1Pod>({
      name: 'pods',
      kubeConfig: kc,
      client: podClient(kc),
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
        const ready = (p: V1Pod): string => p.status?.conditions?.[0]?.status ?? '?';
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
});
