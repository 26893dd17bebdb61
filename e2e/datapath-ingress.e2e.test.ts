// The second seed setup, for real: static HTTP servers outside the cluster behind an Ingress.
// A real Ingress controller (Traefik, which sends requests straight to the EndpointSlices'
// addresses) runs on a node namespace; the seed's `zl-lb` Ingress is translated to it (the
// rewrite of /lb/(zl/.*) to /$1 becomes a replacePathRegex middleware). The same two-server setup
// runs twice side by side: as the articles write it by hand (a selectorless Service and a
// hand-written Endpoints, mirrored into slices by kube-controller-manager as in any cluster), and
// as an ExternalBackend. One server of each dies; a bounded request loop measures what users see.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import {
  CoreV1Api,
  CustomObjectsApi,
  NetworkingV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { dataPlaneUnavailable, startNode, type Node } from './harness/dataplane.ts';
import { createBackendNetwork, type BackendNetwork, type Server } from './harness/netns.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import {
  failures,
  get as getThrough,
  requestLoop,
  seedIngress,
  startIngressController,
  type Reply,
} from './harness/ingress.ts';
import { claims } from './claims.ts';
import { claim } from './harness/claims.ts';
import { teardown, waitFor } from './helpers.ts';
import { describeUnless } from './skips.ts';

const skipReason = dataPlaneUnavailable();
const suite = describeUnless(skipReason);

const check = { intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 2, unhealthyThreshold: 2 };
const detectionMs =
  (check.intervalSeconds * check.unhealthyThreshold + check.timeoutSeconds) * 1000;
/** outrigger's slice write, then Traefik's provider throttle (2 s by default) and reload. */
const propagationMs = 4000;
/** How long the loop watches after a server dies, and how often it asks. */
const windowMs = Number(process.env.OUTRIGGER_INGRESS_WINDOW_MS ?? 60_000);
const periodMs = 100;

let cluster: Cluster;
let kc: KubeConfig;
let node: Node;
let net: BackendNetwork;
let operator: OperatorProcess;
let traefikUrl: string;
const servers = new Map<string, Server>();

async function serve(ip: string): Promise<void> {
  servers.set(ip, await net.serve(ip, 80, 'http'));
}

async function kill(ip: string): Promise<void> {
  await servers.get(ip)?.stop();
  servers.delete(ip);
}

const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;

async function ingress(namespace: string, host: string): Promise<void> {
  await kc
    .makeApiClient(NetworkingV1Api)
    .createNamespacedIngress({ namespace, body: seedIngress(namespace, host) });
}

const get = (host: string, path: string): Promise<Reply> => getThrough(traefikUrl, host, path);
const loop = (host: string, untilMs: number): Promise<Reply[]> =>
  requestLoop(traefikUrl, host, untilMs, periodMs);
const share = failures;

beforeAll(async () => {
  if (skipReason !== undefined) {
    console.warn(`skipping the Ingress data-path tests: ${skipReason}`);
    return;
  }
  // As in any cluster, hand-written Endpoints reach slice readers through the mirroring controller.
  cluster = await startCluster({ controllers: ['endpointslice-mirroring-controller'] });
  kc = cluster.kubeConfig();
  const dir = cluster.dir ?? '/tmp';
  node = await startNode(cluster, { dir: join(dir, 'node'), coreDns: false });
  traefikUrl = await startIngressController(cluster, node, dir);
  net = createBackendNetwork(dir, 6, { fromNodes: true });
  for (const ip of net.ipv4) await serve(ip);
  operator = await startOperator(cluster.kubeconfigPath, [], join(dir, 'outrigger.log'));

  const core = kc.makeApiClient(CoreV1Api);
  const objects = kc.makeApiClient(CustomObjectsApi);
  for (const ns of ['wetwin', 'wetwin-by-hand', 'wetwin-fail-open'])
    await core.createNamespace({ body: { metadata: { name: ns } } });
  const [a, b, c, d, e, f] = net.ipv4;

  // By hand, as the articles do it.
  await core.createNamespacedService({
    namespace: 'wetwin-by-hand',
    body: {
      metadata: { name: 'zl-lb' },
      spec: { ports: [{ port: 80, protocol: 'TCP', targetPort: 80 }] },
    },
  });
  await core.createNamespacedEndpoints({
    namespace: 'wetwin-by-hand',
    body: {
      metadata: { name: 'zl-lb' },
      subsets: [{ addresses: [{ ip: c ?? '' }, { ip: d ?? '' }], ports: [{ port: 80 }] }],
    },
  });
  await ingress('wetwin-by-hand', 'by-hand.zl.test');

  // With outrigger.
  const backend = (namespace: string, ips: readonly (string | undefined)[]) =>
    objects.createNamespacedCustomObject({
      group,
      version,
      plural,
      namespace,
      body: {
        apiVersion,
        kind: 'ExternalBackend',
        metadata: { name: 'zl-lb' },
        spec: {
          ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
          addresses: ips.map((ip) => ({ ip })),
          healthCheck: { http: { port: 'http', path: '/' }, ...check },
        },
      },
    });
  await backend('wetwin', [a, b]);
  await ingress('wetwin', 'outrigger.zl.test');
  await backend('wetwin-fail-open', [e, f]);
  await ingress('wetwin-fail-open', 'fail-open.zl.test');

  // Each setup serves through the Ingress from both servers before anything dies.
  for (const [host, ips] of [
    ['by-hand.zl.test', [c, d]],
    ['outrigger.zl.test', [a, b]],
    ['fail-open.zl.test', [e, f]],
  ] as const) {
    await waitFor(
      `${host} to be served by both servers through Traefik`,
      async () => {
        const seen = new Set<string>();
        for (let i = 0; i < 10; i++) {
          const r = await get(host, '/lb/zl/index.html');
          if (r.status === 200) seen.add(r.body.split(' ')[0] ?? '');
        }
        return ips.every((ip) => seen.has(ip ?? '')) || undefined;
      },
      60_000,
      200,
    );
  }
}, 900_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  await teardown(
    () => operator.stop(),
    () => net.remove(),
    () => node.stop(),
    () => cluster.stop(),
  );
}, 60_000);

suite('the Ingress seed: static servers behind Traefik', () => {
  it('keeps the seed rewrite: /lb/zl/index.html reaches a server as /zl/index.html', async () => {
    const r = await get('outrigger.zl.test', '/lb/zl/index.html');
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/^10\.250\.\d+\.\d+ \/zl\/index\.html$/);
  });

  it(
    'one server dies: by hand failures never stop; with outrigger they stop within the bound',
    async () => {
      const [a, , c] = net.ipv4;
      const start = Date.now();
      const until = start + 2000 + windowMs;
      const byHand = loop('by-hand.zl.test', until);
      const withOutrigger = loop('outrigger.zl.test', until);
      await delay(2000);
      const diedAt = Date.now();
      await Promise.all([kill(a ?? ''), kill(c ?? '')]);
      const [hand, ours] = await Promise.all([byHand, withOutrigger]);

      const h = share(hand, diedAt);
      const o = share(ours, diedAt);
      const lastTen = (rs: readonly Reply[]) => share(rs, until - 10_000);
      console.log(
        [
          `one of two servers dead, ${String(windowMs / 1000)} s of requests every ${String(periodMs)} ms through Traefik:`,
          `  by hand (hand-written Endpoints): ${String(h.failed)}/${String(h.total)} failed (${pct(h.share)}); in the last 10 s ${pct(lastTen(hand).share)}`,
          `  with outrigger:                   ${String(o.failed)}/${String(o.total)} failed (${pct(o.share)}); the last failure ${String(o.lastFailureMs)} ms after the death (bound ${String(detectionMs + propagationMs)} ms)`,
        ].join('\n'),
      );
      const out = process.env.OUTRIGGER_DATAPATH_OUT;
      if (out !== undefined && out !== '') {
        // Raw figures for the results page (npm run datapath:page renders docs/data-path.md's chart).
        const rel = (rs: readonly Reply[]) => rs.map((r) => [r.at - diedAt, r.status] as const);
        mkdirSync(out, { recursive: true });
        writeFileSync(
          join(out, 'datapath-ingress.json'),
          JSON.stringify({
            windowMs,
            periodMs,
            boundMs: detectionMs + propagationMs,
            byHand: rel(hand),
            outrigger: rel(ours),
          }),
        );
      }
      // Before the death both setups answered every request.
      expect(share(hand, start).failed - h.failed).toBe(0);
      expect(share(ours, start).failed - o.failed).toBe(0);
      // By hand, the dead server keeps its share of requests to the end.
      expect(lastTen(hand).share).toBeGreaterThan(0.2);
      // With outrigger, failures stop within the detection bound and never come back.
      expect(claims['ingress-last-failure'].bound).toBe(detectionMs + propagationMs);
      claim('ingress-last-failure', o.lastFailureMs);
      expect(lastTen(ours).failed).toBe(0);
      // The survivors answered the rest, with the seed's rewrite.
      expect(ours.at(-1)?.body).toBe(`${net.ipv4[1] ?? ''} /zl/index.html`);
    },
    60_000 + windowMs,
  );

  it('the server comes back: it serves again after healthyThreshold checks', async () => {
    const [a, b] = net.ipv4;
    const back = Date.now();
    await serve(a ?? '');
    const served = await waitFor(
      'the recovered server to answer through the Ingress',
      async () => {
        const r = await get('outrigger.zl.test', '/lb/zl/index.html');
        return r.body.startsWith(`${a ?? ''} `) ? r : undefined;
      },
      30_000,
      50,
    );
    const ms = served.at - back;
    expect(claims['ingress-server-back'].bound).toBe(
      (check.intervalSeconds * check.healthyThreshold + check.timeoutSeconds) * 1000 +
        propagationMs,
    );
    claim('ingress-server-back', ms);
    // Both serve again.
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++)
      seen.add((await get('outrigger.zl.test', '/lb/zl/index.html')).body.split(' ')[0] ?? '');
    expect([...seen].sort()).toEqual([a, b].sort());
  }, 60_000);

  it('failOpen: when every server fails the Ingress still gets both (a probe-side outage must not blackhole), and the first one back takes all traffic', async () => {
    const [, , , , e, f] = net.ipv4;
    await Promise.all([kill(e ?? ''), kill(f ?? '')]);
    const objects = kc.makeApiClient(CustomObjectsApi);
    await waitFor(
      'the backend to fail open',
      async () => {
        const x = (await objects.getNamespacedCustomObject({
          group,
          version,
          plural,
          namespace: 'wetwin-fail-open',
          name: 'zl-lb',
        })) as { status?: { conditions?: { type: string; reason?: string }[] } };
        return x.status?.conditions?.find((c) => c.type === 'Ready')?.reason === 'FailingOpen'
          ? true
          : undefined;
      },
      30_000,
      200,
    );
    await delay(propagationMs);
    // Traefik still has both servers (it tries them: 502 Bad Gateway), rather than no service at
    // all (404, or 503 when every server is fenced).
    const statuses = new Set<number>();
    for (let i = 0; i < 10; i++) statuses.add((await get('fail-open.zl.test', '/lb/zl/x')).status);
    expect([...statuses]).toEqual([502]);

    const back = Date.now();
    await serve(f ?? '');
    const first = await waitFor(
      'the first server back to answer',
      async () => {
        const r = await get('fail-open.zl.test', '/lb/zl/x');
        return r.status === 200 ? r : undefined;
      },
      30_000,
      50,
    );
    claim(
      'failopen-first-back',
      first.at - back,
      'both servers dead → Traefik kept both (502s); the first one back answered',
    );
    // Once it is healthy it is the only one published: every request succeeds.
    await delay(
      (check.intervalSeconds * check.healthyThreshold + check.timeoutSeconds) * 1000 +
        propagationMs,
    );
    const replies: Reply[] = [];
    for (let i = 0; i < 20; i++) replies.push(await get('fail-open.zl.test', '/lb/zl/x'));
    expect(replies.every((r) => r.status === 200 && r.body.startsWith(`${f ?? ''} `))).toBe(true);
  }, 90_000);
});
