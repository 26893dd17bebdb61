// The fault-injecting API proxy in front of the real API server, driven by client-node as the
// operator drives it: requests go through and are recorded, and each kind of fault reaches the
// client as it would from a misbehaving API server or network.
import { request } from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import {
  allOf,
  inNamespace,
  isGet,
  isList,
  isWatch,
  startApiProxy,
  type ApiProxy,
} from './harness/apiproxy.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { apiError, createTestNamespace, waitFor, teardown } from './helpers.ts';
import { describeUnless, localOnly } from './skips.ts';

const local = describeUnless(localOnly);

let cluster: Cluster;
let proxy: ApiProxy;
let kc: KubeConfig;
let core: CoreV1Api;
let ns: string;

beforeAll(async () => {
  if (process.env.USE_EXISTING_CLUSTER === 'true') return;
  cluster = await startCluster();
  proxy = await startApiProxy(cluster);
  kc = new KubeConfig();
  kc.loadFromFile(proxy.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  ns = await createTestNamespace(kc, 'apiproxy');
}, 180_000);

afterAll(async () => {
  if (process.env.USE_EXISTING_CLUSTER === 'true') return;
  await teardown(
    () => proxy.close(),
    () => cluster.stop(),
  );
});

interface WatchEvent {
  readonly type: string;
  readonly object: { metadata?: { name?: string }; code?: number; reason?: string };
}

interface OpenWatch {
  readonly events: WatchEvent[];
  /** Resolves with the error the watch ended with, or null. */
  readonly ended: Promise<unknown>;
  readonly hasEnded: () => boolean;
  stop(): void;
}

/** Resolves once the response headers are in, i.e. once the API server has started the watch. */
async function openWatch(namespace: string): Promise<OpenWatch> {
  const events: WatchEvent[] = [];
  let finished = false;
  let end: (err: unknown) => void = () => undefined;
  const ended = new Promise<unknown>((resolve) => {
    end = resolve;
  });
  const controller = await new Watch(kc).watch(
    `/api/v1/namespaces/${namespace}/configmaps`,
    {},
    (type: string, object: WatchEvent['object']) => {
      events.push({ type, object });
    },
    (err: unknown) => {
      finished = true;
      end(err ?? null);
    },
  );
  return {
    events,
    ended,
    hasEnded: () => finished,
    stop: () => {
      controller.abort();
    },
  };
}

const added = (w: OpenWatch, name: string): true | undefined =>
  w.events.some((e) => e.type === 'ADDED' && e.object.metadata?.name === name) ? true : undefined;

/** A GET outside client-node, to see the raw status, headers and body. */
function rawGet(
  path: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const ca = Buffer.from(kc.getCurrentCluster()?.caData ?? '', 'base64');
  return new Promise((resolve, reject) => {
    const req = request(`${proxy.url}${path}`, { ca, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

local('ApiProxy', () => {
  it('forwards and records requests, bodies included', async () => {
    const from = proxy.requests.length;
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'first' }, data: { k: 'v' } },
    });
    const list = await core.listNamespacedConfigMap({ namespace: ns });
    expect(list.items.map((c) => c.metadata?.name)).toContain('first');
    expect(list.items.find((c) => c.metadata?.name === 'first')?.data).toEqual({ k: 'v' });
    const seen = proxy.requests.slice(from).map((r) => [r.method, r.verb, r.resource, r.namespace]);
    expect(seen).toEqual([
      ['POST', 'create', 'configmaps', ns],
      ['GET', 'list', 'configmaps', ns],
    ]);
  });

  it('delays a request by at least the fault’s delay', async () => {
    const remove = proxy.fault(allOf(isList('configmaps'), inNamespace(ns)), {
      kind: 'delay',
      ms: 800,
    });
    try {
      const started = Date.now();
      await core.listNamespacedConfigMap({ namespace: ns });
      expect(Date.now() - started).toBeGreaterThanOrEqual(800);
      expect(proxy.requests.at(-1)?.fault).toBe('delay');
    } finally {
      remove();
    }
  });

  it('answers with an injected status, with Retry-After on 429', async () => {
    const remove503 = proxy.fault(isList('configmaps'), { kind: 'status', code: 503 });
    try {
      expect((await apiError(core.listNamespacedConfigMap({ namespace: ns }))).code).toBe(503);
      // A later rule wins over an earlier one.
      const remove429 = proxy.fault(isList('configmaps'), { kind: 'status', code: 429 });
      const res = await rawGet(`/api/v1/namespaces/${ns}/configmaps`);
      remove429();
      expect(res.status).toBe(429);
      expect(res.headers['retry-after']).toBe('1');
      expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', code: 429 });
      expect((await apiError(core.listNamespacedConfigMap({ namespace: ns }))).code).toBe(503);
    } finally {
      remove503();
    }
    await core.listNamespacedConfigMap({ namespace: ns });
  });

  it('holds a hung request until the rule is removed, then forwards it', async () => {
    const from = proxy.requests.length;
    const remove = proxy.fault(isGet('configmaps'), { kind: 'hang' });
    let settled = false;
    const get = core.readNamespacedConfigMap({ namespace: ns, name: 'first' }).finally(() => {
      settled = true;
    });
    await proxy.waitForRequest(isGet('configmaps'), { from, timeoutMs: 5000 });
    await delay(500);
    expect(settled).toBe(false);
    remove();
    expect((await get).data).toEqual({ k: 'v' });
  });

  it('streams watch events through as they happen', async () => {
    const w = await openWatch(ns);
    try {
      expect(proxy.requests.at(-1)).toMatchObject({ verb: 'watch', watch: true, namespace: ns });
      await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'live' } } });
      await waitFor('the ADDED event through the proxy', () => Promise.resolve(added(w, 'live')));
      expect(w.hasEnded()).toBe(false);
    } finally {
      w.stop();
    }
  });

  it('keeps a silenced watch open and silent while another watch sees changes', async () => {
    // Opened before the rule exists, so the rule does not apply to it.
    const control = await openWatch(ns);
    const remove = proxy.fault(allOf(isWatch('configmaps'), inNamespace(ns)), {
      kind: 'silentWatch',
    });
    const silent = await openWatch(ns);
    try {
      expect(proxy.requests.at(-1)?.fault).toBe('silentWatch');
      await core.createNamespacedConfigMap({
        namespace: ns,
        body: { metadata: { name: 'unheard' } },
      });
      await waitFor('the control watch to see the change', () =>
        Promise.resolve(added(control, 'unheard')),
      );
      await delay(1000);
      expect(silent.events).toEqual([]);
      expect(silent.hasEnded()).toBe(false);
    } finally {
      remove();
      silent.stop();
      control.stop();
    }
  });

  it('ends a watch with an injected ERROR event', async () => {
    const remove = proxy.fault(isWatch('configmaps'), { kind: 'watchError', code: 410 });
    try {
      const w = await openWatch(ns);
      expect(await w.ended).toBeNull();
      expect(w.events).toEqual([
        { type: 'ERROR', object: expect.objectContaining({ code: 410, reason: 'Expired' }) },
      ]);
    } finally {
      remove();
    }
  });

  it('cuts open connections on reset and keeps serving new ones', async () => {
    const w = await openWatch(ns);
    proxy.resetConnections();
    expect(await w.ended).toBeInstanceOf(Error);
    const list = await core.listNamespacedConfigMap({ namespace: ns });
    expect(list.items.length).toBeGreaterThanOrEqual(3);
  });
});
