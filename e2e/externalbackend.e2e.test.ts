// ExternalBackend end to end: the real operator process, a real control plane with the garbage
// collector, and real TCP/HTTP servers in a network namespace this test creates. Every probe goes to
// that namespace; nothing leaves the machine.
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import {
  ApiException,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
  type V1EndpointConditions,
  type V1EndpointSlice,
  type V1Endpoints,
} from '@kubernetes/client-node';
import type { ExternalBackendStatus } from '../src/api/externalbackendstatus.ts';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { createBackendNetwork, netnsUnavailable, type BackendNetwork } from './harness/netns.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import {
  createRunningPod,
  createTestNamespace,
  waitFor,
  writePodStatus,
  teardown,
} from './helpers.ts';
import { describeUnless } from './skips.ts';
import { claim } from './harness/claims.ts';

const skipReason =
  process.env.USE_EXISTING_CLUSTER === 'true'
    ? 'needs its own control plane (backends live in network namespaces on this machine)'
    : netnsUnavailable();
const suite = describeUnless(skipReason);

let cluster: Cluster;
let kc: KubeConfig;
let core: CoreV1Api;
let discovery: DiscoveryV1Api;
let objects: CustomObjectsApi;
let net: BackendNetwork;
let operator: OperatorProcess;
let deniedIP: string;

beforeAll(async () => {
  if (skipReason !== undefined) {
    console.warn(`skipping the ExternalBackend e2e tests: ${skipReason}`);
    return;
  }
  cluster = await startCluster({ controllers: ['garbage-collector-controller'] });
  kc = cluster.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  discovery = kc.makeApiClient(DiscoveryV1Api);
  objects = kc.makeApiClient(CustomObjectsApi);
  net = createBackendNetwork(cluster.dir ?? '/tmp', 4);
  deniedIP = net.ipv4[3] ?? '';
  operator = await startOperator(
    cluster.kubeconfigPath,
    [
      `--denied-cidrs=${deniedIP}/32`,
      '--zap-log-level=debug',
      '--max-probe-targets-per-namespace=2000',
    ],
    join(cluster.dir ?? '/tmp', 'outrigger.log'),
  );
}, 240_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  // The operator goes first: no probe may outlive the namespace its addresses live in.
  await teardown(
    () => operator.stop(),
    () => {
      if (process.env.OUTRIGGER_E2E_LOG_COPY)
        copyFileSync(operator.logPath, process.env.OUTRIGGER_E2E_LOG_COPY);
      return Promise.resolve();
    },
    () => net.remove(),
    () => cluster.stop(),
  );
}, 60_000);

type Spec = Record<string, unknown>;

async function apply(ns: string, name: string, spec: Spec): Promise<void> {
  await objects.createNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural,
    body: { apiVersion, kind: 'ExternalBackend', metadata: { name }, spec },
  });
}

async function patchSpec(ns: string, name: string, spec: Spec): Promise<void> {
  const current = (await objects.getNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural,
    name,
  })) as { metadata: Record<string, unknown> };
  await objects.replaceNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural,
    name,
    body: { apiVersion, kind: 'ExternalBackend', metadata: current.metadata, spec },
  });
}

interface Backend {
  metadata: { generation: number; uid: string };
  status?: ExternalBackendStatus;
}

async function backend(ns: string, name: string): Promise<Backend> {
  return (await objects.getNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural,
    name,
  })) as Backend;
}

function ready(b: Backend) {
  return b.status?.conditions?.find((c) => c.type === 'Ready');
}

async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return undefined;
    throw err;
  }
}

const slice = (ns: string, name: string): Promise<V1EndpointSlice | undefined> =>
  orUndefined(discovery.readNamespacedEndpointSlice({ namespace: ns, name }));
const endpoints = (ns: string, name: string): Promise<V1Endpoints | undefined> =>
  orUndefined(core.readNamespacedEndpoints({ namespace: ns, name }));

/** IPs the slice marks ready, sorted. */
function readyIPs(s: V1EndpointSlice | undefined): string[] {
  return (s?.endpoints ?? [])
    .filter((e) => e.conditions?.ready === true)
    .flatMap((e) => e.addresses)
    .sort();
}

function allIPs(s: V1EndpointSlice | undefined): string[] {
  return (s?.endpoints ?? []).flatMap((e) => e.addresses).sort();
}

async function eventReasons(ns: string, name: string): Promise<string[]> {
  const list = await core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: `involvedObject.name=${name}`,
  });
  return list.items.map((e) => `${e.type ?? ''}/${e.reason ?? ''}`);
}

/** Waits like waitFor; a timeout also shows the backend's status and slices, to say why. */
async function until<T>(
  ns: string,
  name: string,
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs?: number,
  intervalMs?: number,
): Promise<T> {
  try {
    return await waitFor(what, fn, timeoutMs, intervalMs);
  } catch (err) {
    const b = await orUndefined(backend(ns, name));
    const slices = await discovery.listNamespacedEndpointSlice({ namespace: ns });
    throw new Error(
      `${err instanceof Error ? err.message : String(err)}\nstatus: ${JSON.stringify(b?.status)}\nslices: ${JSON.stringify(slices.items.map((x) => [x.metadata?.name, x.endpoints]))}`,
      { cause: err },
    );
  }
}

const fast = {
  intervalSeconds: 1,
  timeoutSeconds: 1,
  healthyThreshold: 1,
  unhealthyThreshold: 2,
};

suite('ExternalBackend with real backends', () => {
  it('etcd-k8s: three TCP members on 2379; a dead member leaves the ready set and comes back', async () => {
    const ns = await createTestNamespace(kc, 'xb-etcd');
    const members = net.ipv4.slice(0, 3);
    const servers = await Promise.all(members.map((ip) => net.serve(ip, 2379, 'tcp')));
    await apply(ns, 'etcd-k8s', {
      ports: [{ name: 'port', port: 2379 }],
      addresses: members.map((ip, i) => ({ ip, nodeName: `etc-master${String(i + 1)}` })),
      healthCheck: { tcp: { port: 'port' }, ...fast },
    });

    const b = await until(ns, 'etcd-k8s', 'Ready=True with 3/3 healthy', async () => {
      const x = await backend(ns, 'etcd-k8s');
      const healthy = x.status?.addresses?.every((a) => a.state === 'Healthy') === true;
      return ready(x)?.status === 'True' && healthy ? x : undefined;
    });
    expect(b.status?.addressSummary).toBe('3/3');
    expect(b.status?.observedGeneration).toBe(b.metadata.generation);
    expect(ready(b)).toMatchObject({ reason: 'AddressesReady', message: '3/3 endpoints ready' });
    expect(b.status?.addresses?.map((a) => a.state)).toEqual(['Healthy', 'Healthy', 'Healthy']);

    // The Service it created and owns: selectorless, one port.
    const svc = await core.readNamespacedService({ namespace: ns, name: 'etcd-k8s' });
    expect(svc.spec?.selector).toBeUndefined();
    expect(svc.spec?.ports).toEqual([
      expect.objectContaining({ name: 'port', port: 2379, targetPort: 2379, protocol: 'TCP' }),
    ]);
    expect(svc.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'ExternalBackend',
      name: 'etcd-k8s',
      uid: b.metadata.uid,
    });

    // Endpoints for old clients (not mirrored: outrigger writes the slice itself).
    const ep = await until(ns, 'etcd-k8s', 'Endpoints with three addresses', async () => {
      const e = await endpoints(ns, 'etcd-k8s');
      return e?.subsets?.[0]?.addresses?.length === 3 ? e : undefined;
    });
    expect(ep.metadata?.labels).toMatchObject({
      'endpointslice.kubernetes.io/skip-mirror': 'true',
      'app.kubernetes.io/managed-by': 'outrigger',
    });
    expect(ep.subsets?.[0]?.addresses?.map((a) => [a.ip, a.nodeName])).toEqual(
      members.map((ip, i) => [ip, `etc-master${String(i + 1)}`]),
    );
    expect(ep.subsets?.[0]?.ports).toEqual([{ name: 'port', port: 2379, protocol: 'TCP' }]);

    // The EndpointSlice kube-proxy reads.
    const s = await slice(ns, 'etcd-k8s-outrigger-ipv4');
    expect(s?.addressType).toBe('IPv4');
    expect(s?.metadata?.labels).toMatchObject({
      'kubernetes.io/service-name': 'etcd-k8s',
      'endpointslice.kubernetes.io/managed-by': 'controller.outrigger.dev',
    });
    expect(readyIPs(s)).toEqual([...members].sort());
    expect(s?.endpoints?.[0]?.conditions).toEqual({
      ready: true,
      serving: true,
      terminating: false,
    });

    // Kill one member; measure how long until the slice stops routing to it.
    const dead = members[1] ?? '';
    const killedAt = Date.now();
    await servers[1]?.stop();
    await until(
      ns,
      'etcd-k8s',
      `${dead} to leave the ready set`,
      async () =>
        readyIPs(await slice(ns, 'etcd-k8s-outrigger-ipv4')).includes(dead) ? undefined : true,
      20_000,
      50,
    );
    // Server death → the address out of the EndpointSlice's ready set (intervalSeconds=1,
    // unhealthyThreshold=2, timeoutSeconds=1), held to what docs/guide/status.md says.
    claim('dead-server-unready', Date.now() - killedAt);
    // The address stays in the slice, not ready, so clients can see it exists.
    expect(allIPs(await slice(ns, 'etcd-k8s-outrigger-ipv4'))).toContain(dead);
    const degraded = await until(ns, 'etcd-k8s', 'status to show the dead member', async () => {
      const x = await backend(ns, 'etcd-k8s');
      return x.status?.addressSummary === '2/3' ? x : undefined;
    });
    expect(ready(degraded)?.status).toBe('True');
    expect(ready(degraded)?.message).toContain(`unhealthy: ${dead}`);
    expect(degraded.status?.addresses?.find((a) => a.ip === dead)).toMatchObject({
      ready: false,
      state: 'Unhealthy',
    });
    await until(ns, 'etcd-k8s', 'an AddressUnhealthy event', async () =>
      (await eventReasons(ns, 'etcd-k8s')).includes('Warning/AddressUnhealthy') ? true : undefined,
    );
    expect(
      await operator.metric('outrigger_backend_addresses', {
        namespace: ns,
        name: 'etcd-k8s',
        state: 'unhealthy',
      }),
    ).toBe(1);
    expect(await operator.metric('outrigger_probe_total', { result: 'failure' })).toBeGreaterThan(
      0,
    );
    // client-go's request counter: the creates above were POSTs answered 201.
    expect(
      await operator.metric('rest_client_requests_total', { method: 'POST', code: '201' }),
    ).toBeGreaterThan(0);
    expect(
      await operator.metric('rest_client_request_duration_seconds_count', { verb: 'POST' }),
    ).toBeGreaterThan(0);
    // The Ready gauge: one series, on the current status and reason.
    expect(
      await operator.metric('outrigger_backend_ready_status', { namespace: ns, name: 'etcd-k8s' }),
    ).toBe(1);
    expect(
      await operator.metric('outrigger_backend_ready_status', {
        namespace: ns,
        name: 'etcd-k8s',
        status: 'True',
        reason: 'AddressesReady',
      }),
    ).toBe(1);
    expect(await operator.metric('outrigger_build_info')).toBe(1);

    // Bring it back.
    const revived = await net.serve(dead, 2379, 'tcp');
    await until(ns, 'etcd-k8s', `${dead} to return`, async () =>
      readyIPs(await slice(ns, 'etcd-k8s-outrigger-ipv4')).length === 3 ? true : undefined,
    );
    await until(ns, 'etcd-k8s', 'an AddressHealthy event', async () =>
      (await eventReasons(ns, 'etcd-k8s')).includes('Normal/AddressHealthy') ? true : undefined,
    );
    await Promise.all([revived.stop(), servers[0]?.stop(), servers[2]?.stop()]);
  }, 90_000);

  it('zl-lb: two HTTP servers on 80, judged by status code; failOpen when every one fails', async () => {
    const ns = await createTestNamespace(kc, 'xb-zl');
    const [a = '', b = ''] = net.ipv4;
    const good = await net.serve(a, 80, 'http', 200);
    const bad = await net.serve(b, 80, 'http', 503);
    const hc = {
      http: { port: 80, path: '/healthz', expectedStatuses: ['200-299'] },
      ...fast,
      failOpen: true,
    };
    await apply(ns, 'zl-lb', {
      ports: [{ name: 'http', port: 80 }],
      addresses: [{ ip: a }, { ip: b }],
      healthCheck: hc,
    });
    const s1 = await until(ns, 'zl-lb', 'only the 200 server ready', async () => {
      const s = await slice(ns, 'zl-lb-outrigger-ipv4');
      return readyIPs(s).join() === a && allIPs(s).length === 2 ? s : undefined;
    });
    expect(s1.ports).toEqual([{ name: 'http', port: 80, protocol: 'TCP' }]);
    const x = await until(ns, 'zl-lb', 'the 503 to show in status', async () => {
      const y = await backend(ns, 'zl-lb');
      return y.status?.addresses?.find((e) => e.ip === b)?.state === 'Unhealthy' ? y : undefined;
    });
    expect(x.status?.addresses?.find((e) => e.ip === b)?.message).toBe(
      'health check failing: HTTP 503',
    );

    // Every address fails: failOpen publishes them all rather than blackholing the Service.
    await good.stop();
    const open = await until(ns, 'zl-lb', 'failOpen to publish both', async () => {
      const y = await backend(ns, 'zl-lb');
      return ready(y)?.reason === 'FailingOpen' ? y : undefined;
    });
    expect(ready(open)?.status).toBe('False');
    expect(readyIPs(await slice(ns, 'zl-lb-outrigger-ipv4'))).toEqual([a, b].sort());
    await until(ns, 'zl-lb', 'a FailingOpen event', async () =>
      (await eventReasons(ns, 'zl-lb')).includes('Warning/FailingOpen') ? true : undefined,
    );
    // The gauge moved to the new reason: the old series is gone, one remains.
    expect(
      await operator.metric('outrigger_backend_ready_status', {
        namespace: ns,
        name: 'zl-lb',
        status: 'False',
        reason: 'FailingOpen',
      }),
    ).toBe(1);
    expect(
      await operator.metric('outrigger_backend_ready_status', { namespace: ns, name: 'zl-lb' }),
    ).toBe(1);

    // Without failOpen nothing is ready, and the condition says so.
    await patchSpec(ns, 'zl-lb', {
      ports: [{ name: 'http', port: 80 }],
      addresses: [{ ip: a }, { ip: b }],
      healthCheck: { ...hc, failOpen: false },
    });
    const closed = await until(ns, 'zl-lb', 'NoReadyAddresses', async () => {
      const y = await backend(ns, 'zl-lb');
      return ready(y)?.reason === 'NoReadyAddresses' && y.status?.observedGeneration === 2
        ? y
        : undefined;
    });
    expect(ready(closed)?.message).toContain('0/2 endpoints ready');
    expect(readyIPs(await slice(ns, 'zl-lb-outrigger-ipv4'))).toEqual([]);
    await bad.stop();
  }, 90_000);

  it('a backend of 1200 addresses: slices of at most 100, Endpoints cut at 1000, and a dead address rewrites one slice', async () => {
    const ns = await createTestNamespace(kc, 'xb-big');
    const ips = net.routed(1200);
    const farm = net.farm();
    try {
      await Promise.all(ips.map((ip) => farm.up(ip, 7000)));
      await apply(ns, 'big', {
        ports: [{ name: 'p', port: 7000 }],
        addresses: ips.map((ip) => ({ ip })),
        healthCheck: {
          tcp: { port: 'p' },
          intervalSeconds: 3,
          timeoutSeconds: 3,
          healthyThreshold: 1,
          // Two failures in a row: one probe slowed by a loaded machine must not flip a healthy
          // address, or the "one slice rewritten" check below sees other slices change too.
          unhealthyThreshold: 2,
        },
      });
      const owned = async (): Promise<V1EndpointSlice[]> =>
        (
          await discovery.listNamespacedEndpointSlice({
            namespace: ns,
            labelSelector: 'kubernetes.io/service-name=big',
          })
        ).items;
      const all = await until(
        ns,
        'big',
        'every address ready in slices',
        async () => {
          const list = await owned();
          const ready = list.flatMap((x) => readyIPs(x));
          return ready.length === 1200 ? list : undefined;
        },
        120_000,
        500,
      );
      expect(all).toHaveLength(12);
      expect(all.every((x) => (x.endpoints?.length ?? 0) === 100)).toBe(true);
      expect(all.map((x) => x.metadata?.name).sort()).toEqual(
        [
          'big-outrigger-ipv6',
          ...Array.from({ length: 11 }, (_, i) => `big-outrigger-ipv6-${String(i + 1)}`),
        ].sort(),
      );
      const ep = await endpoints(ns, 'big');
      expect(ep?.metadata?.annotations?.['endpoints.kubernetes.io/over-capacity']).toBe(
        'truncated',
      );
      expect(ep?.subsets?.flatMap((x) => x.addresses ?? [])).toHaveLength(1000);

      // One address dies: only the slice holding it is written.
      const dead = ips[555] ?? '';
      const before = new Map(all.map((x) => [x.metadata?.name, x.metadata?.resourceVersion]));
      await farm.down(dead, 7000);
      const after = await until(
        ns,
        'big',
        'the dead address to leave the ready set',
        async () => {
          const list = await owned();
          return list.some((x) => allIPs(x).includes(dead) && !readyIPs(x).includes(dead))
            ? list
            : undefined;
        },
        30_000,
        200,
      );
      const changed = after.filter(
        (x) => before.get(x.metadata?.name) !== x.metadata?.resourceVersion,
      );
      expect(changed.map((x) => x.metadata?.name)).toHaveLength(1);
      expect(allIPs(changed[0])).toContain(dead);
      expect(changed[0]?.endpoints?.length).toBe(100);
      const b = await until(ns, 'big', 'status to count 1199 ready', async () => {
        const x = await backend(ns, 'big');
        return x.status?.readyAddresses === 1199 ? x : undefined;
      });
      expect(b.status?.totalAddresses).toBe(1200);
    } finally {
      await farm.stop();
    }
  }, 240_000);

  it('follows edits: addresses added and removed, an IPv6 slice, changed ports', async () => {
    const ns = await createTestNamespace(kc, 'xb-edit');
    const [a = '', b = ''] = net.ipv4;
    const v6 = net.ipv6[0] ?? '';
    await apply(ns, 'db', { ports: [{ name: 'pg', port: 5432 }], addresses: [{ ip: a }] });
    await until(ns, 'db', 'the first slice', async () =>
      allIPs(await slice(ns, 'db-outrigger-ipv4')).join() === a ? true : undefined,
    );
    await patchSpec(ns, 'db', {
      ports: [{ name: 'pg', port: 5433 }],
      addresses: [{ ip: b }, { ip: v6 }],
    });
    const s4 = await until(ns, 'db', 'the IPv4 slice to follow', async () => {
      const s = await slice(ns, 'db-outrigger-ipv4');
      return allIPs(s).join() === b && s?.ports?.[0]?.port === 5433 ? s : undefined;
    });
    expect(readyIPs(s4)).toEqual([b]);
    const s6 = await until(ns, 'db', 'an IPv6 slice', () => slice(ns, 'db-outrigger-ipv6'));
    expect(s6.addressType).toBe('IPv6');
    expect(allIPs(s6)).toEqual([v6]);
    const svc = await until(ns, 'db', 'the owned Service to take the new port', async () => {
      const s = await core.readNamespacedService({ namespace: ns, name: 'db' });
      return s.spec?.ports?.[0]?.port === 5433 ? s : undefined;
    });
    expect(svc.spec?.ports?.length).toBe(1);
    const ep = await endpoints(ns, 'db');
    expect(ep?.subsets?.[0]?.addresses?.map((x) => x.ip).sort()).toEqual([b, v6].sort());
    expect(ep?.subsets?.[0]?.ports?.[0]?.port).toBe(5433);

    // Dropping the IPv6 address deletes that family's slice.
    await patchSpec(ns, 'db', { ports: [{ name: 'pg', port: 5433 }], addresses: [{ ip: b }] });
    await until(ns, 'db', 'the IPv6 slice to go', async () =>
      (await slice(ns, 'db-outrigger-ipv6')) === undefined ? true : undefined,
    );
  }, 60_000);

  it('drains an address from the spec or with one kubectl annotate: not ready, serving, terminating', async () => {
    const ns = await createTestNamespace(kc, 'xb-drain');
    const [a = '', b = ''] = net.ipv4;
    const servers = await Promise.all([a, b].map((ip) => net.serve(ip, 7000, 'tcp')));
    try {
      const spec = (drainB: boolean): Spec => ({
        ports: [{ name: 'p', port: 7000 }],
        addresses: [{ ip: a }, { ip: b, ...(drainB ? { drain: true } : {}) }],
        healthCheck: { tcp: { port: 'p' }, ...fast },
      });
      const conditionsOf = (s: V1EndpointSlice | undefined): Record<string, V1EndpointConditions> =>
        Object.fromEntries(
          (s?.endpoints ?? []).map((e) => [e.addresses[0] ?? '', e.conditions ?? {}]),
        );
      await apply(ns, 'db', spec(false));
      await until(ns, 'db', 'both ready', async () =>
        readyIPs(await slice(ns, 'db-outrigger-ipv4')).join() === [a, b].sort().join()
          ? true
          : undefined,
      );
      await patchSpec(ns, 'db', spec(true));
      const drained = await until(ns, 'db', 'b draining', async () => {
        const s = await slice(ns, 'db-outrigger-ipv4');
        return conditionsOf(s)[b]?.terminating === true ? s : undefined;
      });
      expect(conditionsOf(drained)).toEqual({
        [a]: { ready: true, serving: true, terminating: false },
        [b]: { ready: false, serving: true, terminating: true },
      });
      const ep = await endpoints(ns, 'db');
      expect(ep?.subsets?.[0]?.notReadyAddresses?.map((x) => x.ip)).toEqual([b]);
      const st = await until(ns, 'db', 'status says b is draining', async () => {
        const x = await backend(ns, 'db');
        return x.status?.addresses?.find((y) => y.ip === b)?.draining === true ? x : undefined;
      });
      expect(ready(st)?.message).toContain(`draining: ${b}`);
      expect(await eventReasons(ns, 'db')).toContain('Normal/AddressDraining');

      // Back in service from the spec, then drained by the annotation alone, as on call would.
      await patchSpec(ns, 'db', spec(false));
      await until(ns, 'db', 'b ready again', async () =>
        readyIPs(await slice(ns, 'db-outrigger-ipv4')).join() === [a, b].sort().join()
          ? true
          : undefined,
      );
      const annotate = spawnSync(
        cluster.kubectl,
        [
          `--kubeconfig=${cluster.kubeconfigPath}`,
          '-n',
          ns,
          'annotate',
          'externalbackend',
          'db',
          `outrigger.dev/drain=${a}, nothing.example.com`,
        ],
        { encoding: 'utf8' },
      );
      expect(annotate.stderr).toBe('');
      const byAnnotation = await until(ns, 'db', 'a drained by the annotation', async () => {
        const s = await slice(ns, 'db-outrigger-ipv4');
        return conditionsOf(s)[a]?.terminating === true ? s : undefined;
      });
      expect(conditionsOf(byAnnotation)).toEqual({
        [a]: { ready: false, serving: true, terminating: true },
        [b]: { ready: true, serving: true, terminating: false },
      });
      const withUnknown = await until(ns, 'db', 'status names the unknown entry', async () => {
        const x = await backend(ns, 'db');
        return ready(x)?.message.includes('nothing.example.com') === true ? x : undefined;
      });
      expect(ready(withUnknown)?.message).toContain(
        'outrigger.dev/drain names what this backend does not have: nothing.example.com',
      );
    } finally {
      await Promise.all(servers.map((x) => x.stop()));
    }
  }, 90_000);

  it('deleting the ExternalBackend removes its Service, Endpoints and slices (garbage collector)', async () => {
    const ns = await createTestNamespace(kc, 'xb-delete');
    await apply(ns, 'gone', {
      ports: [{ name: 'p', port: 7000 }],
      addresses: [{ ip: net.ipv4[0] ?? '' }],
    });
    await until(ns, 'gone', 'the slice', () => slice(ns, 'gone-outrigger-ipv4'));
    await objects.deleteNamespacedCustomObject({
      group,
      version,
      namespace: ns,
      plural,
      name: 'gone',
    });
    await until(
      ns,
      'gone',
      'Service, Endpoints and EndpointSlice to be collected',
      async () => {
        const left = await Promise.all([
          orUndefined(core.readNamespacedService({ namespace: ns, name: 'gone' })),
          endpoints(ns, 'gone'),
          slice(ns, 'gone-outrigger-ipv4'),
        ]);
        return left.every((x) => x === undefined) ? true : undefined;
      },
      60_000,
    );
  }, 90_000);

  it('adopts an existing selectorless Service, and publishes beside a hand-written Endpoints it will not overwrite', async () => {
    const ns = await createTestNamespace(kc, 'xb-adopt');
    const ip = net.ipv4[0] ?? '';
    // The by-hand setup outrigger replaces.
    await core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'legacy' }, spec: { ports: [{ name: 'http', port: 80 }] } },
    });
    const handWritten = await core.createNamespacedEndpoints({
      namespace: ns,
      body: {
        metadata: { name: 'legacy' },
        subsets: [{ addresses: [{ ip: '192.0.2.10' }], ports: [{ name: 'http', port: 80 }] }],
      },
    });
    await apply(ns, 'legacy', { ports: [{ name: 'http', port: 80 }], addresses: [{ ip }] });
    const held = await until(ns, 'legacy', 'ForeignEndpoints', async () => {
      const y = await backend(ns, 'legacy');
      const c = y.status?.conditions?.find((x) => x.type === 'ForeignEndpoints');
      return c?.reason === 'EndpointsHeldByAnotherWriter' ? c : undefined;
    });
    expect(held.message).toContain(
      'Endpoints legacy is held by another writer (it was written by hand or by another tool)',
    );
    await until(ns, 'legacy', 'an EndpointsHeldByAnotherWriter event', async () =>
      (await eventReasons(ns, 'legacy')).includes('Warning/EndpointsHeldByAnotherWriter')
        ? true
        : undefined,
    );
    // Its own slice beside the hand-written Endpoints, which is untouched.
    await until(ns, 'legacy', 'its slice', async () =>
      readyIPs(await slice(ns, 'legacy-outrigger-ipv4')).join() === ip ? true : undefined,
    );
    expect((await endpoints(ns, 'legacy'))?.metadata?.resourceVersion).toBe(
      handWritten.metadata?.resourceVersion,
    );

    // The user deletes the hand-written object; outrigger takes over.
    await core.deleteNamespacedEndpoints({ namespace: ns, name: 'legacy' });
    await until(ns, 'legacy', 'our Endpoints', async () =>
      (await endpoints(ns, 'legacy'))?.subsets?.[0]?.addresses?.[0]?.ip === ip ? true : undefined,
    );
    await until(ns, 'legacy', 'Ready', async () =>
      ready(await backend(ns, 'legacy'))?.status === 'True' ? true : undefined,
    );
    expect(readyIPs(await slice(ns, 'legacy-outrigger-ipv4'))).toEqual([ip]);
    // The adopted Service is read, never owned or changed.
    const svc = await core.readNamespacedService({ namespace: ns, name: 'legacy' });
    expect(svc.metadata?.ownerReferences).toBeUndefined();
  }, 60_000);

  it('refuses a Service with a selector', async () => {
    const ns = await createTestNamespace(kc, 'xb-refuse');
    await core.createNamespacedService({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80 }] },
      },
    });
    await apply(ns, 'web', {
      ports: [{ name: 'http', port: 80 }],
      addresses: [{ ip: net.ipv4[0] ?? '' }],
    });
    const y = await until(ns, 'web', 'ServiceHasSelector', async () => {
      const x = await backend(ns, 'web');
      return ready(x)?.reason === 'ServiceHasSelector' ? x : undefined;
    });
    expect(ready(y)?.status).toBe('False');
    expect(ready(y)?.message).toContain('Service web has a selector');
    await until(ns, 'web', 'a ServiceHasSelector event', async () =>
      (await eventReasons(ns, 'web')).includes('Warning/ServiceHasSelector') ? true : undefined,
    );
    expect(await endpoints(ns, 'web')).toBeUndefined();
    expect(await slice(ns, 'web-outrigger-ipv4')).toBeUndefined();
  }, 60_000);

  it('a hybrid of pods and addresses follows pod readiness by the upstream rules', async () => {
    const ns = await createTestNamespace(kc, 'xb-hybrid');
    const vm = net.ipv4[0] ?? '';
    await createRunningPod(core, ns, 'web-1', {
      labels: { app: 'web' },
      ip: '10.244.0.5',
      ready: true,
    });
    await createRunningPod(core, ns, 'other', {
      labels: { app: 'db' },
      ip: '10.244.0.9',
      ready: true,
    });
    await apply(ns, 'web', {
      ports: [{ name: 'http', port: 8080 }],
      addresses: [{ ip: vm }],
      podSelector: { matchLabels: { app: 'web' } },
    });
    const s = await until(ns, 'web', 'the VM and the pod', async () => {
      const x = await slice(ns, 'web-outrigger-ipv4');
      return readyIPs(x).length === 2 ? x : undefined;
    });
    expect(readyIPs(s)).toEqual(['10.244.0.5', vm].sort());
    expect(s.endpoints?.find((e) => e.addresses[0] === '10.244.0.5')?.targetRef).toMatchObject({
      kind: 'Pod',
      name: 'web-1',
    });
    const ep = await endpoints(ns, 'web');
    expect(ep?.subsets?.[0]?.addresses?.find((x) => x.ip === '10.244.0.5')?.targetRef?.name).toBe(
      'web-1',
    );

    await writePodStatus(core, ns, 'web-1', '10.244.0.5', false);
    await until(ns, 'web', 'the unready pod to leave the ready set', async () =>
      readyIPs(await slice(ns, 'web-outrigger-ipv4')).join() === vm ? true : undefined,
    );
    const ep2 = await endpoints(ns, 'web');
    expect(ep2?.subsets?.[0]?.notReadyAddresses?.map((x) => x.ip)).toEqual(['10.244.0.5']);
    // Status follows within --status-batch-period (it had just been written for the last change).
    await until(ns, 'web', 'status to say 1/2', async () =>
      (await backend(ns, 'web')).status?.addressSummary === '1/2' ? true : undefined,
    );
  }, 60_000);

  it('never publishes or probes a deny-listed address', async () => {
    const ns = await createTestNamespace(kc, 'xb-deny');
    const ok = net.ipv4[0] ?? '';
    const server = await net.serve(deniedIP, 9000, 'tcp');
    const okServer = await net.serve(ok, 9000, 'tcp');
    const connections = (): number =>
      readFileSync(server.logPath, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('connection')).length;
    const before = connections();
    await apply(ns, 'mixed', {
      ports: [{ name: 'p', port: 9000 }],
      addresses: [{ ip: ok }, { ip: deniedIP }],
      healthCheck: { tcp: { port: 'p' }, ...fast },
    });
    const y = await until(ns, 'mixed', 'the denied address in status', async () => {
      const x = await backend(ns, 'mixed');
      return x.status?.addresses?.find((a) => a.ip === ok)?.state === 'Healthy' ? x : undefined;
    });
    expect(y.status?.addresses?.find((a) => a.ip === deniedIP)).toMatchObject({
      ready: false,
      state: 'Denied',
      message: `denied: in ${deniedIP}/32 (--denied-cidrs); not published`,
    });
    expect(allIPs(await slice(ns, 'mixed-outrigger-ipv4'))).toEqual([ok]);
    await until(ns, 'mixed', 'an AddressDenied event', async () =>
      (await eventReasons(ns, 'mixed')).includes('Warning/AddressDenied') ? true : undefined,
    );
    // Several probe intervals later, the denied server has still seen no connection.
    await new Promise((r) => setTimeout(r, 3000));
    expect(connections()).toBe(before);
    await Promise.all([server.stop(), okServer.stop()]);
  }, 60_000);

  it('restores its own slice when its labels are changed by hand, and leaves a foreign slice under its name alone', async () => {
    const ns = await createTestNamespace(kc, 'xb-slices');
    const ip = net.ipv4[0] ?? '';
    await apply(ns, 'mine', { ports: [{ name: 'p', port: 9000 }], addresses: [{ ip }] });
    await until(ns, 'mine', 'published', async () =>
      readyIPs(await slice(ns, 'mine-outrigger-ipv4')).length === 1 ? true : undefined,
    );
    // Someone relabels outrigger's slice: it drops out of outrigger's (label-selected) cache.
    await discovery.patchNamespacedEndpointSlice(
      {
        namespace: ns,
        name: 'mine-outrigger-ipv4',
        body: {
          metadata: { labels: { 'endpointslice.kubernetes.io/managed-by': 'someone-else' } },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await until(ns, 'mine', 'the label restored', async () =>
      (await slice(ns, 'mine-outrigger-ipv4'))?.metadata?.labels?.[
        'endpointslice.kubernetes.io/managed-by'
      ] === 'controller.outrigger.dev'
        ? true
        : undefined,
    );
    await until(ns, 'mine', 'an EndpointSliceRestored event', async () =>
      (await eventReasons(ns, 'mine')).includes('Warning/EndpointSliceRestored') ? true : undefined,
    );
    expect(ready(await backend(ns, 'mine'))?.status).toBe('True');

    // A slice someone else made under the name outrigger would use: reported, never touched.
    await discovery.createNamespacedEndpointSlice({
      namespace: ns,
      body: {
        metadata: {
          name: 'theirs-outrigger-ipv4',
          labels: { 'kubernetes.io/service-name': 'theirs' },
        },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['192.0.2.44'] }],
        ports: [{ name: 'p', port: 9000, protocol: 'TCP' }],
      },
    });
    await apply(ns, 'theirs', { ports: [{ name: 'p', port: 9000 }], addresses: [{ ip }] });
    const b = await until(ns, 'theirs', 'EndpointsConflict', async () => {
      const x = await backend(ns, 'theirs');
      return ready(x)?.reason === 'EndpointsConflict' ? x : undefined;
    });
    expect(ready(b)?.message).toContain(
      'EndpointSlice theirs-outrigger-ipv4 already exists and it was written by hand or by another tool',
    );
    const foreign = await slice(ns, 'theirs-outrigger-ipv4');
    expect(allIPs(foreign)).toEqual(['192.0.2.44']);
    expect(foreign?.metadata?.ownerReferences).toBeUndefined();
    // Removed by its owner: outrigger notices on its next look and publishes.
    await discovery.deleteNamespacedEndpointSlice({ namespace: ns, name: 'theirs-outrigger-ipv4' });
    await until(
      ns,
      'theirs',
      'published once the foreign slice is gone',
      async () =>
        readyIPs(await slice(ns, 'theirs-outrigger-ipv4')).join() === ip ? true : undefined,
      30_000,
    );
  }, 90_000);
});
