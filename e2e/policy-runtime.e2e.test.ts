// The reconciler as the authority for what admission does not (or cannot) judge, against the
// running operator with no admission policy installed (the chart's admission policy missing, or
// its parameter object not there yet: parameterNotFoundAction Allow lets everything in).
//
// Node addresses granted by an ExternalBackendPolicy rule (allowClusterAddresses: [NodeAddresses]).
// "Nodes" are Node objects whose InternalIPs are addresses of this test's network namespace, where
// real servers listen; one of them is a control-plane node whose address the test lists in the
// default/kubernetes EndpointSlice on port 6443, as kube-apiserver does for its own endpoints
// (the harness runs it with --endpoint-reconciler-type=none, so the slice is this test's alone).
//
// Check ports of every probe kind that no rule allows: with the grant created after the backends,
// then widened and narrowed again.
//
// SYNs are counted inside the namespace (nftables): an address or port the policy refuses must
// never be probed, not merely be left out of the slices.
//
// Network discipline: every address is in this test's network namespace (10.250.n.x).
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type KubeConfig,
} from '@kubernetes/client-node';
import type { ExternalBackendStatus } from '../src/api/externalbackendstatus.ts';
import { group, plural, version } from '../src/api/externalbackend.ts';
import { probeKindNames } from '../src/health/kinds/index.ts';
import { policyKind, policyName, policyPlural } from '../src/api/policy.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { installCrd, kubectl } from './harness/crd.ts';
import { createBackendNetwork, netnsUnavailable, type BackendNetwork } from './harness/netns.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import {
  apiError,
  createExternalBackend,
  createTestNamespace,
  outriggerSliceIPs,
  teardown,
  waitFor,
} from './helpers.ts';
import { describeUnless } from './skips.ts';

const skipReason =
  process.env.USE_EXISTING_CLUSTER === 'true'
    ? 'needs its own control plane (it writes the kubernetes Service endpoints)'
    : netnsUnavailable();
const suite = describeUnless(skipReason);

let cluster: Cluster;
let kc: KubeConfig;
let core: CoreV1Api;
let net: BackendNetwork;
let operator: OperatorProcess;
/** A worker Node's InternalIP, the control-plane Node's, and an address that is no Node's. */
let workerIP = '';
let controlPlaneIP = '';
let plainIP = '';
let subnet = '';
/** The namespace the etcd grant selects, and one it does not. */
let etcdNs = '';
let otherNs = '';
/** The namespace of the probe-kind backends, which no rule selects at first. */
let kindsNs = '';

let bad = 0;
const fast = { intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 1, unhealthyThreshold: 1 };

function setGrants(rules: unknown[], name = policyName): void {
  kubectl(
    cluster.kubeconfigPath,
    ['apply', '--server-side', '--force-conflicts', '-f', '-'],
    JSON.stringify({
      apiVersion: `${group}/${version}`,
      kind: policyKind,
      metadata: { name },
      spec: { rules },
    }),
  );
}

const byName = (ns: string) => ({
  matchLabels: { 'kubernetes.io/metadata.name': ns },
});

/** The etcd members' rule: client and peer ports, and the API server's, which it never gets. */
const etcdRule = (nodeGrant: boolean) => ({
  name: 'etcd-members',
  namespaceSelector: byName(etcdNs),
  cidrs: [subnet],
  ports: [{ port: 2379, endPort: 2380 }, { port: 6443 }],
  ...(nodeGrant ? { allowClusterAddresses: ['NodeAddresses'] } : {}),
});
/** The other namespace may register the same range, but no Node address. */
const otherRule = () => ({
  name: 'others',
  namespaceSelector: byName(otherNs),
  cidrs: [subnet],
  ports: [{ port: 2379 }],
});

async function createNode(name: string, ip: string): Promise<void> {
  await core.createNode({ body: { metadata: { name } } });
  await core.patchNodeStatus(
    { name, body: { status: { addresses: [{ type: 'InternalIP', address: ip }] } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

beforeAll(async () => {
  if (skipReason !== undefined) {
    console.warn(`skipping the Node address grant suite: ${skipReason}`);
    return;
  }
  cluster = await startCluster();
  kc = cluster.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  net = createBackendNetwork(cluster.dir ?? '/tmp', 10);
  [workerIP = '', controlPlaneIP = '', plainIP = ''] = net.ipv4;
  subnet = `${workerIP.split('.').slice(0, 3).join('.')}.0/24`;
  // Servers on the ports the members use, and on the control-plane node's API server port: a
  // probe that reached it would be counted there.
  for (const ip of [workerIP, controlPlaneIP, plainIP]) await net.serve(ip, 2379, 'tcp');
  await net.serve(controlPlaneIP, 6443, 'tcp');
  await installCrd(cluster.kubeconfigPath, { allowAllAddresses: false });
  etcdNs = await createTestNamespace(kc, 'etcd');
  otherNs = await createTestNamespace(kc, 'other');
  kindsNs = await createTestNamespace(kc, 'kinds');
  await createNode('worker-1', workerIP);
  await createNode('cp-1', controlPlaneIP);
  // kube-apiserver's own endpoints, as its endpoint reconciler writes them on a kubeadm cluster.
  await kc.makeApiClient(DiscoveryV1Api).createNamespacedEndpointSlice({
    namespace: 'default',
    body: {
      metadata: { name: 'kubernetes', labels: { 'kubernetes.io/service-name': 'kubernetes' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [controlPlaneIP], conditions: { ready: true } }],
      ports: [{ name: 'https', port: 6443, protocol: 'TCP' }],
    },
  });
  setGrants([etcdRule(false), otherRule()]);
  operator = await startOperator(
    cluster.kubeconfigPath,
    [],
    join(cluster.dir ?? '/tmp', 'outrigger-nodegrant.log'),
    { installCrd: false },
  );
}, 180_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  await teardown(
    () => operator.stop(),
    () => net.remove(),
    () => cluster.stop(),
  );
});

async function status(ns: string, name: string): Promise<ExternalBackendStatus | undefined> {
  const o = (await kc
    .makeApiClient(CustomObjectsApi)
    .getNamespacedCustomObject({ group, version, namespace: ns, plural, name })) as {
    status?: ExternalBackendStatus;
  };
  return o.status;
}

async function addressOf(
  ns: string,
  name: string,
  ip: string,
  want: (a: NonNullable<ExternalBackendStatus['addresses']>[number]) => boolean,
) {
  return waitFor(`${ns}/${name} ${ip} as wanted`, async () => {
    const a = (await status(ns, name))?.addresses?.find((x) => x.ip === ip);
    return a !== undefined && want(a) ? a : undefined;
  });
}

async function events(ns: string, name: string): Promise<CoreV1Event[]> {
  return (
    await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` })
  ).items;
}

const members = (ips: readonly string[], port = 2379) => ({
  ports: [{ name: 'client', port }],
  addresses: ips.map((ip) => ({ ip })),
  healthCheck: { tcp: { port: 'client' }, ...fast },
});

/**
 * SYNs to ip:port from now on. One nftables counter per ip:port for the whole file (a second
 * rule for the same counter would count twice), read from a baseline.
 */
const counters = new Map<string, { read(): number }>();
function synsFromNow(ip: string, port: number): { read(): number } {
  const key = `${ip}:${String(port)}`;
  let c = counters.get(key);
  if (c === undefined) {
    c = net.countConnections(ip, port, '0.0.0.0/0');
    counters.set(key, c);
  }
  const counter = c;
  const base = counter.read();
  return { read: () => counter.read() - base };
}

suite('Node addresses granted by a policy rule', () => {
  it('the policy CRD takes allowClusterAddresses only with ports, and NodeAddresses only', async () => {
    const objects = kc.makeApiClient(CustomObjectsApi);
    const grant = (rule: Record<string, unknown>) =>
      objects.createClusterCustomObject({
        group,
        version,
        plural: policyPlural,
        body: {
          apiVersion: `${group}/${version}`,
          kind: policyKind,
          metadata: { name: `bad-${String(++bad)}` },
          spec: { rules: [{ name: 'r', namespaceSelector: {}, cidrs: [subnet], ...rule }] },
        },
      });
    const portless = await apiError(grant({ allowClusterAddresses: ['NodeAddresses'] }));
    expect(portless.code).toBe(422);
    expect(portless.message).toContain('a rule with allowClusterAddresses must list ports');
    for (const other of ['PodCIDRs', 'ServiceCIDRs', 'LinkLocal']) {
      const e = await apiError(grant({ ports: [{ port: 2379 }], allowClusterAddresses: [other] }));
      expect(e.code).toBe(422);
      expect(e.message).toContain('supported values: "NodeAddresses"');
    }
  });

  it('refuses a Node address without the grant, saying why, and never probes it', async () => {
    const syns = synsFromNow(workerIP, 2379);
    await createExternalBackend(kc, etcdNs, 'members', members([workerIP, plainIP]));
    const denied = await addressOf(etcdNs, 'members', workerIP, (a) => a.state === 'Denied');
    expect(denied.message).toContain(`in ${workerIP}/32 (address of Node worker-1)`);
    expect(denied.message).toContain(
      `no ${policyKind} rule with allowClusterAddresses: [NodeAddresses] grants namespace ${etcdNs}`,
    );
    // The address that is no Node's is published and checked meanwhile.
    await addressOf(etcdNs, 'members', plainIP, (a) => a.state === 'Healthy');
    expect(await outriggerSliceIPs(kc, etcdNs, 'members')).toEqual([plainIP]);
    expect(syns.read()).toBe(0);
  }, 60_000);

  it('publishes and probes it once a rule grants Node addresses to the namespace on its ports; status and one Event name the rule', async () => {
    const syns = synsFromNow(workerIP, 2379);
    setGrants([etcdRule(true), otherRule()]);
    await addressOf(etcdNs, 'members', workerIP, (a) => a.state === 'Healthy' && a.ready);
    expect((await outriggerSliceIPs(kc, etcdNs, 'members')).sort()).toEqual(
      [plainIP, workerIP].sort(),
    );
    expect(syns.read()).toBeGreaterThan(0);
    const cond = (await status(etcdNs, 'members'))?.conditions?.find(
      (c) => c.type === 'NodeAddressesGranted',
    );
    expect(cond).toMatchObject({ status: 'True', reason: 'GrantedByPolicy' });
    expect(cond?.message).toContain(
      `${workerIP} (address of Node worker-1, by ${policyKind} rule ${policyName}/etcd-members)`,
    );
    // Probes keep running and reconciles keep coming; the Event is said once.
    await new Promise((r) => setTimeout(r, 4000));
    const said = (await events(etcdNs, 'members')).filter(
      (e) => e.reason === 'NodeAddressesGranted',
    );
    expect(said).toHaveLength(1);
    expect(said[0]?.count ?? 1).toBe(1);
    expect(said[0]?.message).toContain(`${policyName}/etcd-members`);
  }, 60_000);

  it('refuses it on a port the rule does not list, and in a namespace the rule does not select', async () => {
    const syns = synsFromNow(workerIP, 2380);
    await createExternalBackend(kc, etcdNs, 'peer-22', {
      ...members([workerIP], 2380),
      healthCheck: { tcp: { port: 22 }, ...fast },
    });
    const port = await addressOf(etcdNs, 'peer-22', workerIP, (a) => a.state === 'Denied');
    expect(port.message).toContain(`grants namespace ${etcdNs} ${workerIP} on port 22, 2380`);
    await createExternalBackend(kc, otherNs, 'members', members([workerIP]));
    const other = await addressOf(otherNs, 'members', workerIP, (a) => a.state === 'Denied');
    expect(other.message).toContain(`address of Node worker-1`);
    expect(other.message).toContain(`grants namespace ${otherNs}`);
    expect(await outriggerSliceIPs(kc, etcdNs, 'peer-22')).toEqual([]);
    expect(await outriggerSliceIPs(kc, otherNs, 'members')).toEqual([]);
    expect(syns.read()).toBe(0);
  }, 60_000);

  it("grants a control-plane node's address on etcd's port, never on the API server's, even when the rule lists it", async () => {
    const apiSyns = synsFromNow(controlPlaneIP, 6443);
    const etcdSyns = synsFromNow(controlPlaneIP, 2379);
    // kubeadm layout: etcd on the control-plane node.
    await createExternalBackend(kc, etcdNs, 'cp-etcd', members([controlPlaneIP]));
    await addressOf(etcdNs, 'cp-etcd', controlPlaneIP, (a) => a.state === 'Healthy');
    expect(await outriggerSliceIPs(kc, etcdNs, 'cp-etcd')).toEqual([controlPlaneIP]);
    // The API server's port, published or only probed, though the rule allows 6443.
    await createExternalBackend(kc, etcdNs, 'cp-api', members([controlPlaneIP], 6443));
    await createExternalBackend(kc, etcdNs, 'cp-api-probe', {
      ...members([controlPlaneIP]),
      healthCheck: { tcp: { port: 6443 }, ...fast },
    });
    for (const name of ['cp-api', 'cp-api-probe']) {
      const a = await addressOf(etcdNs, name, controlPlaneIP, (x) => x.state === 'Denied');
      expect(a.message).toContain(
        `in ${controlPlaneIP}/32 (the API server (kubernetes Service)) on port 6443: the API server's port is never granted`,
      );
      expect(await outriggerSliceIPs(kc, etcdNs, name)).toEqual([]);
    }
    await new Promise((r) => setTimeout(r, 3000));
    expect(apiSyns.read()).toBe(0);
    expect(etcdSyns.read()).toBeGreaterThan(0);
  }, 60_000);

  it('revoking the grant withdraws the Node addresses and stops their probes', async () => {
    setGrants([etcdRule(false), otherRule()]);
    await addressOf(etcdNs, 'members', workerIP, (a) => a.state === 'Denied');
    await waitFor('the Node address out of the slice', async () =>
      (await outriggerSliceIPs(kc, etcdNs, 'members')).includes(workerIP) ? undefined : true,
    );
    const s = await status(etcdNs, 'members');
    expect(s?.conditions?.find((c) => c.type === 'NodeAddressesGranted')).toBeUndefined();
    // A probe running at the revocation ends within its 1 s timeout; no next one starts.
    await new Promise((r) => setTimeout(r, 1500));
    const syns = synsFromNow(workerIP, 2379);
    await new Promise((r) => setTimeout(r, 3000));
    expect(syns.read()).toBe(0);
  }, 60_000);
});

suite('check ports of every probe kind that no rule allows', () => {
  // One address and one check port per kind; nothing listens there (a SYN is counted all the
  // same, and every kind opens a TCP connection first).
  // Built in the test: the network exists only once beforeAll has run.
  const casesOf = () =>
    probeKindNames.map((kind, i) => ({
      kind,
      ip: net.ipv4[3 + i] ?? '',
      port: 9001 + i,
    }));
  const backend = (c: ReturnType<typeof casesOf>[number]) => ({
    ports: [{ name: 'pg', port: 5432 }],
    addresses: [{ ip: c.ip }],
    healthCheck: { [c.kind]: { port: c.port }, ...fast },
  });
  const kindsRule = (ports: { port: number; endPort?: number }[]) => ({
    name: 'kinds',
    namespaceSelector: byName(kindsNs),
    cidrs: [subnet],
    ports,
  });

  it('neither probes nor publishes them: no rule yet, a rule created after the backends, one widened and narrowed again', async () => {
    const cases = casesOf();
    expect(cases.map((c) => c.ip).filter(Boolean)).toHaveLength(probeKindNames.length);
    const syns = new Map(cases.map((c) => [c.kind, synsFromNow(c.ip, c.port)]));
    // No admission: the backends are stored whatever their ports.
    for (const c of cases) await createExternalBackend(kc, kindsNs, c.kind, backend(c));
    for (const c of cases) {
      const a = await addressOf(kindsNs, c.kind, c.ip, (x) => x.state === 'Denied');
      expect(a.message).toContain(`no ${policyKind} rule grants namespace ${kindsNs} any address`);
    }
    // The grant comes after the backends, in an object of its own, for the published port only.
    setGrants([kindsRule([{ port: 5432 }])], 'kinds');
    for (const c of cases)
      await addressOf(kindsNs, c.kind, c.ip, (x) =>
        (x.message ?? '').includes(`covers ${c.ip} but not port ${String(c.port)}`),
      );
    await new Promise((r) => setTimeout(r, 3000));
    for (const c of cases) {
      expect({ kind: c.kind, syns: syns.get(c.kind)?.read() }).toEqual({ kind: c.kind, syns: 0 });
      expect(await outriggerSliceIPs(kc, kindsNs, c.kind)).toEqual([]);
    }
    // Widened to the check ports: every kind is published and probed (the counters can count).
    setGrants([kindsRule([{ port: 5432 }, { port: 9001, endPort: 9010 }])], 'kinds');
    for (const c of cases)
      await waitFor(`${c.kind} published and probed`, async () =>
        (await outriggerSliceIPs(kc, kindsNs, c.kind)).includes(c.ip) &&
        (syns.get(c.kind)?.read() ?? 0) > 0
          ? true
          : undefined,
      );
    // Narrowed again: withdrawn, and the probes stop.
    setGrants([kindsRule([{ port: 5432 }])], 'kinds');
    for (const c of cases) {
      await addressOf(kindsNs, c.kind, c.ip, (x) => x.state === 'Denied');
      await waitFor(`${c.kind} withdrawn`, async () =>
        (await outriggerSliceIPs(kc, kindsNs, c.kind)).length === 0 ? true : undefined,
      );
    }
    // A probe already running when the grant narrowed ends within its timeout (1 s); what must
    // stop is the next one.
    await new Promise((r) => setTimeout(r, 1500));
    const after = new Map(cases.map((c) => [c.kind, synsFromNow(c.ip, c.port)]));
    await new Promise((r) => setTimeout(r, 3000));
    for (const c of cases)
      expect({ kind: c.kind, syns: after.get(c.kind)?.read() }).toEqual({ kind: c.kind, syns: 0 });
  }, 120_000);
});
