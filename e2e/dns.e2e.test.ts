// ExternalBackends named by DNS, end to end: a real CoreDNS on loopback answering from a file the
// test rewrites, the real operator resolving through it, and real servers in a network namespace
// behind the names. The answers change while the test runs: new addresses, addresses in denied
// ranges (DNS rebinding), and no answer at all (the server stopped).
import { createServer, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import type { ExternalBackendStatus } from '../src/api/externalbackendstatus.ts';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { recordTtlSeconds, startDnsServer, type DnsServer } from './harness/dnsserver.ts';
import {
  createBackendNetwork,
  netnsUnavailable,
  type BackendNetwork,
  type Farm,
} from './harness/netns.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { freePort } from './harness/ports.ts';
import { createTestNamespace, serviceAccountKubeconfig, teardown, waitFor } from './helpers.ts';
import { describeUnless } from './skips.ts';
import { claim } from './harness/claims.ts';

const skipReason =
  process.env.USE_EXISTING_CLUSTER === 'true'
    ? 'needs its own control plane (backends live in network namespaces on this machine)'
    : netnsUnavailable();
const suite = describeUnless(skipReason);

/** How long a failing name keeps its last answer (--dns-stale-timeout). */
const staleMs = 10_000;

let cluster: Cluster;
let kc: KubeConfig;
let core: CoreV1Api;
let discovery: DiscoveryV1Api;
let net: BackendNetwork;
let farm: Farm;
let dns: DnsServer;
let operator: OperatorProcess;
let deniedIP: string;
let port: number;
/** A listener on loopback at the backends' port: a probe of 127.0.0.1 would land here. */
let loopback: NetServer;
let loopbackConnections = 0;

beforeAll(async () => {
  if (skipReason !== undefined) {
    console.warn(`skipping the DNS-name e2e tests: ${skipReason}`);
    return;
  }
  cluster = await startCluster({ controllers: ['garbage-collector-controller'] });
  kc = cluster.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  discovery = kc.makeApiClient(DiscoveryV1Api);
  net = createBackendNetwork(cluster.dir ?? '/tmp', 4);
  farm = net.farm();
  deniedIP = net.ipv4[3] ?? '';
  dns = await startDnsServer(cluster.dir ?? '/tmp');
  port = await freePort();
  loopback = createServer((s) => {
    loopbackConnections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => loopback.listen(port, '127.0.0.1', resolve));
  operator = await startOperator(
    cluster.kubeconfigPath,
    [
      `--denied-cidrs=${deniedIP}/32`,
      `--dns-servers=${dns.address}`,
      '--dns-min-ttl=500ms',
      '--dns-timeout=300ms',
      `--dns-stale-timeout=${String(staleMs / 1000)}s`,
      '--status-batch-period=0',
      '--zap-log-level=debug',
    ],
    join(cluster.dir ?? '/tmp', 'outrigger.log'),
  );
}, 240_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  await teardown(
    () => operator.stop(),
    () => farm.stop(),
    () => dns.stop(),
    () => new Promise((resolve) => loopback.close(resolve)),
    () => net.remove(),
    () => cluster.stop(),
  );
}, 60_000);

function spec(names: readonly string[]): Record<string, unknown> {
  return {
    ports: [{ name: 'p', port }],
    dnsNames: names.map((name) => ({ name })),
    healthCheck: {
      tcp: { port: 'p' },
      intervalSeconds: 1,
      timeoutSeconds: 1,
      healthyThreshold: 1,
      unhealthyThreshold: 1,
      failOpen: false,
    },
  };
}

async function create(
  objects: CustomObjectsApi,
  ns: string,
  name: string,
  s: Record<string, unknown>,
) {
  await objects.createNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural,
    body: { apiVersion, kind: 'ExternalBackend', metadata: { name }, spec: s },
  });
}

async function status(ns: string, name: string): Promise<ExternalBackendStatus | undefined> {
  const xb = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural,
    name,
  })) as { status?: ExternalBackendStatus };
  return xb.status;
}

/** Every published endpoint of a Service, both families: "ip ready|notready". */
async function published(ns: string, service: string): Promise<string[]> {
  const list = await discovery.listNamespacedEndpointSlice({
    namespace: ns,
    labelSelector: `kubernetes.io/service-name=${service}`,
  });
  return list.items
    .flatMap((s) =>
      (s.endpoints ?? []).map(
        (e) => `${e.addresses[0] ?? ''} ${e.conditions?.ready === true ? 'ready' : 'notready'}`,
      ),
    )
    .sort();
}

async function eventReasons(ns: string, name: string): Promise<string[]> {
  const list = await core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: `involvedObject.name=${name}`,
  });
  return list.items.map((e) => `${e.reason ?? ''}: ${e.message ?? ''}`);
}

const sortIPs = (ips: readonly string[]) => [...ips].sort();

suite('ExternalBackends named by DNS', () => {
  it('publishes both families of a name and checks each address on its own', async () => {
    const v4 = net.ipv4[0] ?? '';
    const v6 = net.ipv6[0] ?? '';
    await farm.up(v4, port);
    await farm.up(v6, port);
    await dns.set('db.dns.test', [v4, v6]);
    const ns = await createTestNamespace(kc, 'dns');
    await create(kc.makeApiClient(CustomObjectsApi), ns, 'db', spec(['db.dns.test']));
    await waitFor(
      'both addresses published ready',
      async () =>
        JSON.stringify(await published(ns, 'db')) ===
          JSON.stringify(sortIPs([`${v4} ready`, `${v6} ready`])) || undefined,
      30_000,
    );
    const s = await waitFor('status names the answer', async () => {
      const st = await status(ns, 'db');
      return st?.dnsNames?.[0]?.state === 'Resolved' ? st : undefined;
    });
    const entry = s.dnsNames?.[0];
    expect(entry).toMatchObject({
      name: 'db.dns.test',
      addresses: [v4, v6],
      ttlSeconds: recordTtlSeconds,
    });
    expect(Date.parse(entry?.resolvedAt ?? '')).toBeGreaterThan(Date.now() - 120_000);
    expect(s.addresses?.map((a) => [a.ip, a.dnsName])).toEqual(
      expect.arrayContaining([
        [v4, 'db.dns.test'],
        [v6, 'db.dns.test'],
      ]),
    );

    // One address's server dies: only that address leaves the ready set.
    await farm.down(v4, port);
    await waitFor(
      'the dead address published not ready, the other still ready',
      async () =>
        JSON.stringify(await published(ns, 'db')) ===
          JSON.stringify(sortIPs([`${v4} notready`, `${v6} ready`])) || undefined,
      20_000,
    );
    await farm.up(v4, port);
  }, 120_000);

  it('follows the answer as it changes, and says so', async () => {
    const [a, b, c] = [net.ipv4[0] ?? '', net.ipv4[1] ?? '', net.ipv4[2] ?? ''];
    for (const ip of [a, b, c]) await farm.up(ip, port);
    await dns.set('web.dns.test', [a]);
    const ns = await createTestNamespace(kc, 'dns');
    await create(kc.makeApiClient(CustomObjectsApi), ns, 'web', spec(['web.dns.test']));
    await waitFor(
      'the first answer published',
      async () =>
        JSON.stringify(await published(ns, 'web')) === JSON.stringify([`${a} ready`]) || undefined,
      30_000,
    );
    // From the server's first answer with the new records to the slices carrying them, and from
    // the change of the file (including CoreDNS's reload) for comparison.
    const afterAnswer: number[] = [];
    const afterWrite: number[] = [];
    const answers = [[b], [b, c], [c], [a, c], [a]];
    for (const ips of answers) {
      const { writtenAt, answeredAt } = await dns.set('web.dns.test', ips);
      const want = JSON.stringify(sortIPs(ips.map((ip) => `${ip} ready`)));
      await waitFor(
        `${ips.join(',')} published`,
        async () => JSON.stringify(await published(ns, 'web')) === want || undefined,
        20_000,
        10,
      );
      const at = Date.now();
      afterAnswer.push(at - answeredAt);
      afterWrite.push(at - writtenAt);
    }
    const fmt = (xs: number[]) => {
      const s = [...xs].sort((x, y) => x - y);
      return `median ${String(s[Math.floor(s.length / 2)])} ms, max ${String(s[s.length - 1])} ms`;
    };
    console.log(
      `DNS change → new addresses published (${String(answers.length)} changes, record TTL ${String(recordTtlSeconds)} s, --dns-min-ttl=500ms): after the server first answered ${fmt(afterAnswer)}; after the zone file changed ${fmt(afterWrite)}`,
    );
    claim(
      'dns-change-published',
      Math.max(...afterAnswer),
      `max of ${String(answers.length)} changes`,
    );
    const events = await waitFor('an Event for the changed answer', async () => {
      const e = await eventReasons(ns, 'web');
      return e.some((x) => x.startsWith('DNSAnswerChanged: web.dns.test resolves to'))
        ? e
        : undefined;
    });
    expect(events.join('\n')).toContain(
      `DNSAnswerChanged: web.dns.test resolves to ${b} (was ${a})`,
    );
  }, 180_000);

  it('judges every address of every answer: a name rebound to denied ranges publishes and probes none of them', async () => {
    // Sent by an identity with the namespace's edit role, as a namespace user would.
    const ns = await createTestNamespace(kc, 'dns');
    await core.createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'editor' } },
    });
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: 'externalbackends-edit' },
        rules: [
          {
            apiGroups: [group],
            resources: [plural],
            verbs: ['create', 'get', 'list', 'watch', 'update', 'patch', 'delete'],
          },
        ],
      },
    });
    for (const [name, kind, roleName] of [
      ['editor-edit', 'ClusterRole', 'edit'],
      ['editor-xb', 'Role', 'externalbackends-edit'],
    ] as const)
      await rbac.createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name: roleName },
          subjects: [{ kind: 'ServiceAccount', name: 'editor', namespace: ns }],
        },
      });
    const ekc = new KubeConfig();
    ekc.loadFromFile(await serviceAccountKubeconfig(kc, ns, 'editor', cluster.dir ?? '/tmp'));

    const good = net.ipv4[1] ?? '';
    await farm.up(good, port);
    await farm.up(deniedIP, port);
    const deniedSyns = net.countConnections(deniedIP, port, '0.0.0.0/0');
    const svc = await core.readNamespacedService({ namespace: 'default', name: 'kubernetes' });
    const clusterIP = svc.spec?.clusterIP ?? '';
    await dns.set('rebind.dns.test', [good]);
    await create(ekc.makeApiClient(CustomObjectsApi), ns, 'rebind', spec(['rebind.dns.test']));
    await waitFor(
      'the honest answer published',
      async () =>
        JSON.stringify(await published(ns, 'rebind')) === JSON.stringify([`${good} ready`]) ||
        undefined,
      30_000,
    );
    const loopbackBefore = loopbackConnections;
    // The same name now points at the node itself, the metadata service, the cluster's own
    // Service range and a range the administrator denied.
    const hostile = ['127.0.0.1', '169.254.169.254', clusterIP, deniedIP];
    await dns.set('rebind.dns.test', [...hostile, good]);
    const st = await waitFor(
      'every hostile address denied in status',
      async () => {
        const s = await status(ns, 'rebind');
        const denied = (s?.addresses ?? []).filter((a) => a.state === 'Denied').map((a) => a.ip);
        return hostile.every((ip) => denied.includes(ip)) ? s : undefined;
      },
      20_000,
    );
    for (const a of st.addresses ?? [])
      if (hostile.includes(a.ip)) {
        expect(a.ready).toBe(false);
        expect(a.message).toMatch(/^denied: /);
        expect(a.dnsName).toBe('rebind.dns.test');
      }
    // Several probe intervals: nothing reaches the denied addresses, and the slices never list them.
    for (let i = 0; i < 4; i++) {
      expect(await published(ns, 'rebind')).toEqual([`${good} ready`]);
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(loopbackConnections - loopbackBefore).toBe(0);
    expect(deniedSyns.read()).toBe(0);
    const events = await eventReasons(ns, 'rebind');
    expect(events.some((e) => e.startsWith('AddressDenied:'))).toBe(true);
  }, 120_000);

  it('keeps the last answer through a DNS outage for a bounded time, says so, then withdraws it', async () => {
    const ip = net.ipv4[2] ?? '';
    await farm.up(ip, port);
    await dns.set('outage.dns.test', [ip]);
    const ns = await createTestNamespace(kc, 'dns');
    await create(kc.makeApiClient(CustomObjectsApi), ns, 'outage', spec(['outage.dns.test']));
    await waitFor(
      'published',
      async () =>
        JSON.stringify(await published(ns, 'outage')) === JSON.stringify([`${ip} ready`]) ||
        undefined,
      30_000,
    );
    dns.pause();
    let resumed = false;
    try {
      const stale = await waitFor(
        'the name is Stale, its address still published',
        async () => {
          const s = await status(ns, 'outage');
          return s?.dnsNames?.[0]?.state === 'Stale' ? s : undefined;
        },
        20_000,
      );
      expect(await published(ns, 'outage')).toEqual([`${ip} ready`]);
      expect(stale.dnsNames?.[0]?.message).toMatch(
        /^lookups fail \(.*\); the last answer \(.*\) stays published until /,
      );
      expect(stale.conditions?.find((c) => c.type === 'Ready')?.message).toContain(
        'DNS lookups failing: outage.dns.test (last answer kept)',
      );
      const failedAt = Date.now();
      const failed = await waitFor(
        'past the bound: Failed, nothing published',
        async () => {
          const s = await status(ns, 'outage');
          return s?.dnsNames?.[0]?.state === 'Failed' &&
            (await published(ns, 'outage')).length === 0
            ? s
            : undefined;
        },
        staleMs + 20_000,
      );
      expect(Date.now() - failedAt).toBeLessThan(staleMs + 15_000);
      expect(failed.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
        status: 'False',
        reason: 'NoReadyAddresses',
      });
      const events = await eventReasons(ns, 'outage');
      expect(events.filter((e) => e.startsWith('DNSLookupFailed: outage.dns.test'))).toHaveLength(
        2,
      );
      dns.resume();
      resumed = true;
      // The slices are written before the status in the same pass, so a read between the two
      // writes sees the address published and the name still Failed: wait for both.
      const again = await waitFor(
        'answered again: published again and the name Resolved',
        async () => {
          if (JSON.stringify(await published(ns, 'outage')) !== JSON.stringify([`${ip} ready`]))
            return undefined;
          const s = await status(ns, 'outage');
          return s?.dnsNames?.[0]?.state === 'Resolved' ? s : undefined;
        },
        30_000,
      );
      expect(again.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    } finally {
      if (!resumed) dns.resume();
    }
  }, 120_000);
});
