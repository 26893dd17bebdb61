// Hostile input against the running operator, sent as namespace editors send it: every object is
// written by a ServiceAccount bound to `edit` and to the chart's ExternalBackend role (a real RBAC
// identity, not the admin), with the chart's admission policy and RBAC rendered by `helm template`.
// Each case records whether admission refused it (and the message) or the reconciler handled it
// (address state, Ready condition, Events). Throughout, the operator must stay up and a canary
// backend in another namespace must stay reconciled and probed on time; the noisy-neighbour case
// prints the canary's detection time with and without a neighbour holding 150 hung addresses.
//
// Network discipline: every checked address lives in this test's network namespace (10.250.n.x) or
// in the host's blackhole route for 10.250.0.0/16; documentation, cloud and cluster addresses are
// only ever denied, never probed.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { ExternalBackendStatus } from '../src/api/externalbackendstatus.ts';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { probeKindNames } from '../src/health/kinds/index.ts';
import { effectivePolicyName, policyKind, policyName, policyPlural } from '../src/api/policy.ts';
import { ensureHelm } from './harness/binaries.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { installCrd, kubectl } from './harness/crd.ts';
import {
  createBackendNetwork,
  netnsUnavailable,
  type BackendNetwork,
  type Server,
} from './harness/netns.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { recordWrites } from './harness/witness.ts';
import {
  createRunningPod,
  outriggerSliceIPs,
  serviceAccountKubeconfig,
  waitFor,
  teardown,
} from './helpers.ts';
import { describeUnless } from './skips.ts';
import { claim } from './harness/claims.ts';

const skipReason =
  process.env.USE_EXISTING_CLUSTER === 'true'
    ? 'needs its own control plane (backends live in network namespaces on this machine)'
    : netnsUnavailable();
const suite = describeUnless(skipReason);
const chartDir = fileURLToPath(new URL('../charts/outrigger', import.meta.url));

let cluster: Cluster;
let kc: KubeConfig;
let admin: CustomObjectsApi;
let core: CoreV1Api;
let net: BackendNetwork;
let operator: OperatorProcess;
let operatorExited = false;
let canaryServer: Server;
let clusterIP = '';
/** An address in the network namespace that the canary's server listens on. */
let canaryIP = '';
const editors = new Map<string, { objects: CustomObjectsApi; core: CoreV1Api; kc: KubeConfig }>();

const tenants = {
  'tenant-a': { tenant: 'a' }, // a careless grant: every address, every port
  'tenant-b': { tenant: 'b' }, // a tight grant
  'tenant-c': {}, // no grant at all
  canary: { tenant: 'canary' },
  noisy: { tenant: 'noisy' },
} as const;
type Tenant = keyof typeof tenants;

const selectTenant = (t: string) => ({ matchLabels: { tenant: t } });
const policyRules = () => [
  { name: 'team-a', namespaceSelector: selectTenant('a'), cidrs: ['0.0.0.0/0', '::/0'] },
  {
    name: 'team-b',
    namespaceSelector: selectTenant('b'),
    cidrs: ['192.0.2.0/24', '198.51.100.0/24'],
    ports: [{ port: 5432 }, { port: 9000, endPort: 9100 }],
  },
  { name: 'canary', namespaceSelector: selectTenant('canary'), cidrs: ['10.250.0.0/16'] },
  { name: 'noisy', namespaceSelector: selectTenant('noisy'), cidrs: ['10.250.0.0/16'] },
];

function setPolicy(rules: unknown[]): void {
  kubectl(
    cluster.kubeconfigPath,
    ['apply', '--server-side', '--force-conflicts', '-f', '-'],
    JSON.stringify({
      apiVersion: `${group}/${version}`,
      kind: policyKind,
      metadata: { name: policyName },
      spec: { rules },
    }),
  );
}

const fast = { intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 1, unhealthyThreshold: 1 };

beforeAll(async () => {
  if (skipReason !== undefined) {
    console.warn(`skipping the hostile-input suite: ${skipReason}`);
    return;
  }
  cluster = await startCluster({ controllers: ['garbage-collector-controller'] });
  kc = cluster.kubeConfig();
  admin = kc.makeApiClient(CustomObjectsApi);
  core = kc.makeApiClient(CoreV1Api);
  net = createBackendNetwork(cluster.dir ?? '/tmp', 160);
  canaryIP = net.ipv4[0] ?? '';
  await installCrd(cluster.kubeconfigPath, { allowAllAddresses: false });
  // The chart's admission policy and roles, exactly as Helm renders them.
  const rendered = spawnSync(
    ensureHelm(),
    [
      'template',
      'outrigger',
      chartDir,
      '--kube-version=1.36.3',
      '--show-only=templates/admission-policy.yaml',
      '--show-only=templates/rbac.yaml',
      '--set=image.repository=registry.example/outrigger',
    ],
    { encoding: 'utf8' },
  );
  if (rendered.status !== 0) throw new Error(`helm template failed: ${rendered.stderr}`);
  kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], rendered.stdout);
  setPolicy(policyRules());

  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  for (const [ns, labels] of Object.entries(tenants)) {
    await core.createNamespace({ body: { metadata: { name: ns, labels } } });
    await core.createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'editor' } },
    });
    for (const role of ['edit', 'outrigger-externalbackends-edit'])
      await rbac.createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name: `editor-${role}` },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
          subjects: [{ kind: 'ServiceAccount', name: 'editor', namespace: ns }],
        },
      });
    const path = await serviceAccountKubeconfig(kc, ns, 'editor', cluster.dir ?? '/tmp');
    const ekc = new KubeConfig();
    ekc.loadFromFile(path);
    editors.set(ns, {
      kc: ekc,
      objects: ekc.makeApiClient(CustomObjectsApi),
      core: ekc.makeApiClient(CoreV1Api),
    });
  }

  // What tenant B owns inside the cluster: a Service (ClusterIP), a Node with a pod CIDR and an
  // address, a pod on it; and the API server's endpoints.
  const svc = await core.createNamespacedService({
    namespace: 'tenant-b',
    body: { metadata: { name: 'db' }, spec: { selector: { app: 'db' }, ports: [{ port: 5432 }] } },
  });
  clusterIP = svc.spec?.clusterIP ?? '';
  await core.createNode({
    body: { metadata: { name: 'node-b' }, spec: { podCIDRs: ['10.244.2.0/24'] } },
  });
  await core.replaceNodeStatus({
    name: 'node-b',
    body: {
      metadata: { name: 'node-b' },
      status: { addresses: [{ type: 'InternalIP', address: '172.20.0.2' }] },
    },
  });
  await createRunningPod(core, 'tenant-b', 'db-0', {
    labels: { app: 'db' },
    ip: '10.244.2.5',
    ready: true,
  });
  await kc.makeApiClient(DiscoveryV1Api).createNamespacedEndpointSlice({
    namespace: 'default',
    body: {
      metadata: { name: 'kubernetes', labels: { 'kubernetes.io/service-name': 'kubernetes' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['172.20.0.100'] }],
      ports: [{ name: 'https', port: 6443, protocol: 'TCP' }],
    },
  });

  operator = await startOperator(
    cluster.kubeconfigPath,
    ['--max-probe-targets-per-namespace=160', '--zap-log-level=debug'],
    join(cluster.dir ?? '/tmp', 'outrigger-hostile.log'),
    { installCrd: false },
  );
  operator.exited.then(
    () => (operatorExited = true),
    () => (operatorExited = true),
  );
  // The admission policy is live once outrigger has compiled the grants into the object it
  // reads and the API server's informers have that.
  await waitFor(
    'the admission policy to refuse an ungranted namespace',
    async () => {
      try {
        await create('tenant-c', `probe-${String(Date.now())}`, {
          ports: [{ name: 'p', port: 80 }],
          addresses: [{ ip: '192.0.2.10' }],
        });
        return undefined;
      } catch (err) {
        return String(err).includes(policyKind) ? true : undefined;
      }
    },
    30_000,
    200,
  );

  canaryServer = await net.serve(canaryIP, 9000, 'tcp');
  await create('canary', 'canary', {
    ports: [{ name: 'p', port: 9000 }],
    addresses: [{ ip: canaryIP }],
    healthCheck: { tcp: { port: 'p' }, ...fast },
  });
  await statusOf('canary', 'canary', (s) =>
    s.addresses?.[0]?.state === 'Healthy' ? true : undefined,
  );
}, 300_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  // The operator goes first: no probe may outlive the namespace its addresses live in.
  await teardown(
    () => operator.stop(),
    () => net.remove(),
    () => cluster.stop(),
  );
}, 60_000);

// --- helpers --------------------------------------------------------------------------------

type Spec = Record<string, unknown>;

/** Creates an ExternalBackend as the namespace's editor. */
async function create(ns: string, name: string, spec: Spec): Promise<void> {
  const ed = editors.get(ns);
  if (ed === undefined) throw new Error(`no editor in ${ns}`);
  await ed.objects.createNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural,
    body: { apiVersion, kind: 'ExternalBackend', metadata: { name }, spec },
  });
}

function apiMessage(err: unknown): { code: number; message: string } | undefined {
  if (!(err instanceof ApiException)) return undefined;
  const body: unknown = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
  const m = (body as { message?: unknown } | null)?.message;
  return { code: err.code, message: typeof m === 'string' ? m : String(err.body) };
}

async function statusOf<T>(
  ns: string,
  name: string,
  ok: (s: ExternalBackendStatus) => T | undefined,
  timeoutMs = 20_000,
): Promise<T> {
  let last: ExternalBackendStatus | undefined;
  try {
    return await waitFor(
      `${ns}/${name} status`,
      async () => {
        const o = (await admin.getNamespacedCustomObject({
          group,
          version,
          namespace: ns,
          plural,
          name,
        })) as {
          status?: ExternalBackendStatus;
        };
        last = o.status;
        return o.status === undefined ? undefined : ok(o.status);
      },
      timeoutMs,
      100,
    );
  } catch (err) {
    throw new Error(`${String(err)}\nlast status: ${JSON.stringify(last ?? null).slice(0, 1500)}`, {
      cause: err,
    });
  }
}

async function eventsOf(ns: string, name: string): Promise<{ reason: string; message: string }[]> {
  const list = await core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: `involvedObject.name=${name}`,
  });
  return list.items.map((e) => ({ reason: e.reason ?? '', message: e.message ?? '' }));
}

const sliceIPs = (ns: string, name: string): Promise<string[]> => outriggerSliceIPs(kc, ns, name);

interface Result {
  readonly name: string;
  readonly where: 'admission' | 'runtime' | 'rbac';
  readonly detail: string;
}
const results: Result[] = [];
let seq = 0;

/** The canary is still reconciled and probed: its server dies and comes back, within bounds. */
async function canaryDetectionMs(): Promise<number> {
  await canaryServer.stop();
  const t0 = Date.now();
  await statusOf(
    'canary',
    'canary',
    (s) => (s.addresses?.[0]?.state === 'Unhealthy' ? true : undefined),
    60_000,
  );
  const ms = Date.now() - t0;
  canaryServer = await net.serve(canaryIP, 9000, 'tcp');
  await statusOf(
    'canary',
    'canary',
    (s) => (s.addresses?.[0]?.state === 'Healthy' ? true : undefined),
    60_000,
  );
  return ms;
}

// --- the cases --------------------------------------------------------------------------------

const port = (p = 80) => ({ ports: [{ name: 'p', port: p }] });
const at = (ip: string, p = 80): Spec => ({ ...port(p), addresses: [{ ip }] });
const httpCheck = (path: string): Spec => ({
  ...at('192.0.2.10'),
  healthCheck: { http: { port: 'p', path } },
});

/** Refused by the CRD's schema and CEL rules, whatever the policy says (tenant-a may use anything). */
const schemaCases: [string, Spec, string][] = [
  ['an HTTP path with a space', httpCheck('/a b'), 'no spaces, control or non-ASCII characters'],
  [
    'an HTTP path with CRLF (header injection)',
    httpCheck('/a\r\nHost: evil'),
    'no spaces, control',
  ],
  ['an HTTP path with a NUL byte', httpCheck('/a\u0000'), 'no spaces, control'],
  ['an HTTP path with non-ASCII', httpCheck('/\u2603'), 'no spaces, control'],
  ['an HTTP path of 1025 characters', httpCheck(`/${'a'.repeat(1024)}`), 'Too long'],
  [
    'a host name instead of an IP',
    at('metadata.google.internal'),
    'must be an IPv4 or IPv6 address',
  ],
  ['a URL instead of an IP', at('http://10.0.0.1/'), 'must be an IPv4 or IPv6 address'],
  ['a decimal-encoded loopback (2130706433)', at('2130706433'), 'must be an IPv4 or IPv6 address'],
  ['the loopback address', at('127.0.0.1'), 'must not be a loopback address'],
  ['the IPv6 loopback', at('::1'), 'must not be a loopback address'],
  ['the metadata service', at('169.254.169.254'), 'must not be a link-local address'],
  ['an IPv6 link-local address', at('fe80::1'), 'must not be a link-local address'],
  ['a multicast address', at('239.1.1.1'), 'must not be a multicast address'],
  ['the unspecified address', at('0.0.0.0'), 'must not be the unspecified address'],
  ['a non-canonical IPv6', at('2001:DB8::1'), 'canonical form'],
  [
    '5001 addresses',
    {
      ...port(),
      addresses: Array.from({ length: 5001 }, (_, i) => ({
        ip: `192.0.${String(2 + (i >> 8))}.${String(i & 255)}`,
      })),
    },
    'Too many',
  ],
  [
    'the same IP twice',
    { ...port(), addresses: [{ ip: '192.0.2.1' }, { ip: '192.0.2.1' }] },
    'Duplicate value',
  ],
  [
    'a loopback backup',
    { ...at('192.0.2.1'), backup: { addresses: [{ ip: '127.0.0.1' }] } },
    'must not be a loopback address',
  ],
  [
    'a metadata-service backup',
    { ...at('192.0.2.1'), backup: { addresses: [{ ip: '169.254.169.254' }] } },
    'must not be a link-local address',
  ],
  [
    'a DNS name both a primary and a backup',
    {
      ...port(),
      dnsNames: [{ name: 'db.example.com' }],
      backup: { dnsNames: [{ name: 'db.example.com' }] },
    },
    'either a primary (spec.dnsNames) or a backup',
  ],
  [
    '1001 backup addresses',
    {
      ...at('192.0.2.1'),
      backup: {
        addresses: Array.from({ length: 1001 }, (_, i) => ({
          ip: `198.51.${String(100 + (i >> 8))}.${String(i & 255)}`,
        })),
      },
    },
    'Too many',
  ],
  [
    'minReadyPrimaries 0',
    { ...at('192.0.2.1'), backup: { addresses: [{ ip: '192.0.2.2' }], minReadyPrimaries: 0 } },
    'minReadyPrimaries',
  ],
  ['port 0', at('192.0.2.1', 0), 'should be greater than or equal to 1'],
  [
    'a zero interval',
    { ...at('192.0.2.1'), healthCheck: { tcp: { port: 'p' }, intervalSeconds: 0 } },
    'intervalSeconds',
  ],
  [
    'a 61 s timeout',
    {
      ...at('192.0.2.1'),
      healthCheck: { tcp: { port: 'p' }, intervalSeconds: 120, timeoutSeconds: 61 },
    },
    'timeoutSeconds',
  ],
  [
    'both a TCP and an HTTP check',
    { ...at('192.0.2.1'), healthCheck: { tcp: { port: 'p' }, http: { port: 'p' } } },
    'set exactly one of tcp, http, tls and grpc',
  ],
  [
    'a Service name with capitals',
    { ...at('192.0.2.1'), service: { name: 'DB' } },
    'must be a Service name',
  ],
  [
    'a node name of 254 characters',
    { ...port(), addresses: [{ ip: '192.0.2.1', nodeName: 'n'.repeat(254) }] },
    'Too long',
  ],
  [
    'a hostname with an underscore',
    { ...port(), addresses: [{ ip: '192.0.2.1', hostname: 'a_b' }] },
    'must be a DNS label',
  ],
  [
    'a pod selector with 65 labels',
    {
      ...port(),
      podSelector: {
        matchLabels: Object.fromEntries(
          Array.from({ length: 65 }, (_, i) => [`k${String(i)}`, 'v']),
        ),
      },
    },
    'at most 64',
  ],
  [
    'an appProtocol with a space',
    { ports: [{ name: 'p', port: 80, appProtocol: 'h2 c' }], addresses: [{ ip: '192.0.2.1' }] },
    'must be a qualified name',
  ],
  [
    'an expected status of 600',
    { ...at('192.0.2.1'), healthCheck: { http: { port: 'p', expectedStatuses: ['600'] } } },
    'must be a status code',
  ],
  [
    'a port name of 16 characters',
    { ports: [{ name: 'p'.repeat(16), port: 80 }], addresses: [{ ip: '192.0.2.1' }] },
    'Too long',
  ],
  [
    'a Service name of 64 characters',
    { ...at('192.0.2.1'), service: { name: 's'.repeat(64) } },
    'Too long',
  ],
  [
    'a selector key of 318 characters',
    {
      ...port(),
      podSelector: { matchExpressions: [{ key: 'k'.repeat(318), operator: 'Exists' }] },
    },
    'Too long',
  ],
  [
    'a selector value of 64 characters',
    { ...port(), podSelector: { matchLabels: { app: 'v'.repeat(64) } } },
    'Too long',
  ],
  [
    'an appProtocol of 318 characters',
    {
      ports: [{ name: 'p', port: 80, appProtocol: 'a'.repeat(318) }],
      addresses: [{ ip: '192.0.2.1' }],
    },
    'Too long',
  ],
  [
    '17 expected statuses',
    {
      ...at('192.0.2.1'),
      healthCheck: {
        http: { port: 'p', expectedStatuses: Array.from({ length: 17 }, () => '200') },
      },
    },
    'Too many',
  ],
];

/** Admitted (tenant-a's careless grant allows any address), then denied by the deny list. */
const denyCases = (): [string, string, string][] => [
  ['a ClusterIP of another namespace', clusterIP, 'ServiceCIDR kubernetes'],
  ['a pod IP of another namespace', '10.244.2.5', 'pod CIDR of Node node-b'],
  ["a node's kubelet address", '172.20.0.2', 'address of Node node-b'],
  ['the API server', '172.20.0.100', 'the API server (kubernetes Service)'],
  ['AWS IPv6 metadata', 'fd00:ec2::254', 'cloud metadata (AWS)'],
  ['Alibaba Cloud metadata', '100.100.100.200', 'cloud metadata (Alibaba Cloud)'],
  ['the Azure WireServer', '168.63.129.16', 'Azure WireServer'],
  ['the metadata service through NAT64', '64:ff9b::a9fe:a9fe', 'carries 169.254.169.254 (NAT64)'],
  [
    'a ClusterIP through 6to4',
    `2002:${hex(clusterIP)}::1`,
    '(6to4), in 10.96.0.0/16 (ServiceCIDR kubernetes)',
  ],
  ['a ClusterIP as IPv4-mapped IPv6', `::ffff:${clusterIP}`, '(IPv4-mapped), in 10.96.0.0/16'],
  [
    'the metadata service through Teredo',
    '2001:0:c000:201::5601:5601',
    'carries 169.254.169.254 (Teredo client)',
  ],
  ['a reserved (class E) address', '240.0.0.1', 'reserved and broadcast'],
  ['a local-use NAT64 address', '64:ff9b:1::a00:1', 'local-use NAT64'],
  ['a ClusterIP as IPv4-compatible IPv6', `::${hex(clusterIP)}`, '(IPv4-compatible)'],
];

/** "10.96.1.2" → "a60:102": the IPv4 address as two hex groups. */
function hex(ip: string): string {
  const [a = 0, b = 0, c = 0, d = 0] = ip.split('.').map(Number);
  return `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
}

suite('hostile input from namespace editors', () => {
  it.each(schemaCases)('refuses at admission: %s', async (name, spec, message) => {
    const err = await create('tenant-a', `s${String(++seq)}`, spec).then(
      () => undefined,
      (e: unknown) => apiMessage(e),
    );
    expect(err?.code).toBe(422);
    expect(err?.message).toContain(message);
    results.push({ name, where: 'admission', detail: err?.message.slice(0, 160) ?? '' });
  });

  it.each([
    [
      'tenant-b',
      'an address outside its grant',
      at('203.0.113.5', 5432),
      'has a rule that lets namespace tenant-b register 203.0.113.5',
    ],
    ['tenant-b', 'a port outside its grant (ssh)', at('192.0.2.10', 22), 'on ports 22'],
    // Every kind's check port counts, as the reconciler counts it (src/policy/admission.test.ts).
    ...probeKindNames.map((kind) => [
      'tenant-b',
      `a ${kind} health-check port outside its grant`,
      { ...at('192.0.2.10', 5432), healthCheck: { [kind]: { port: 6443 } } },
      'on ports 5432, 6443',
    ]),
    [
      'tenant-b',
      'a backup address outside its grant',
      { ...at('192.0.2.10', 5432), backup: { addresses: [{ ip: '203.0.113.9' }] } },
      'has a rule that lets namespace tenant-b register 203.0.113.9',
    ],
    [
      'tenant-c',
      'any address from a namespace without a grant',
      at('192.0.2.10'),
      'has a rule that lets namespace tenant-c',
    ],
    [
      'tenant-b',
      'many addresses, one outside the grant',
      {
        ...port(5432),
        addresses: [
          { ip: '192.0.2.1' },
          { ip: '192.0.2.2' },
          { ip: '10.0.0.1' },
          { ip: '10.0.0.2' },
        ],
      },
      'register 10.0.0.1 (and 1 more addresses)',
    ],
  ] as [Tenant, string, Spec, string][])(
    'the address policy refuses at admission (%s): %s',
    async (ns, name, spec, message) => {
      const err = await create(ns, `p${String(++seq)}`, spec).then(
        () => undefined,
        (e: unknown) => apiMessage(e),
      );
      expect(err?.message).toContain(`ValidatingAdmissionPolicy 'outrigger-addresses'`);
      expect(err?.message).toContain(message);
      results.push({
        name: `${name} (${ns})`,
        where: 'admission',
        detail: err?.message.slice(0, 200) ?? '',
      });
    },
  );

  it('RBAC refuses an editor what would let them around the policy', async () => {
    const ed = editors.get('tenant-b');
    if (ed === undefined) throw new Error('no editor');
    const attempts: [string, () => Promise<unknown>][] = [
      [
        'write the address policy',
        () =>
          ed.objects.patchClusterCustomObject(
            {
              group,
              version,
              plural: policyPlural,
              name: policyName,
              body: { spec: { rules: [] } },
            },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          ),
      ],
      [
        'label its own namespace into another grant',
        () =>
          ed.core.patchNamespace(
            { name: 'tenant-b', body: { metadata: { labels: { tenant: 'a' } } } },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          ),
      ],
      [
        'write Endpoints directly (CVE-2021-25740)',
        () =>
          ed.core.createNamespacedEndpoints({
            namespace: 'tenant-b',
            body: {
              metadata: { name: 'direct' },
              subsets: [{ addresses: [{ ip: '10.244.2.5' }], ports: [{ port: 80 }] }],
            },
          }),
      ],
      [
        'write an EndpointSlice directly',
        () =>
          ed.kc.makeApiClient(DiscoveryV1Api).createNamespacedEndpointSlice({
            namespace: 'tenant-b',
            body: {
              metadata: { name: 'direct' },
              addressType: 'IPv4',
              endpoints: [{ addresses: ['10.244.2.5'] }],
            },
          }),
      ],
      [
        "fake an address's health in status",
        () =>
          ed.objects.patchNamespacedCustomObjectStatus(
            {
              group,
              version,
              namespace: 'tenant-b',
              plural,
              name: 'nothing',
              body: { status: { readyAddresses: 99 } },
            },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          ),
      ],
    ];
    for (const [name, attempt] of attempts) {
      const err = await attempt().then(
        () => undefined,
        (e: unknown) => apiMessage(e),
      );
      expect({ name, code: err?.code }).toEqual({ name, code: 403 });
      results.push({ name, where: 'rbac', detail: err?.message.slice(0, 160) ?? '' });
    }
  });

  it('denies at runtime, with a status message and an Event, every cluster and cloud address behind a grant that allows everything', async () => {
    const cases = denyCases();
    // One backend per case, all at once, plus one good address that must stay published. Where
    // the API server's own IP library already refuses a form, that is recorded as such.
    const admitted = new Set<number>();
    for (const [i, [name, ip]] of cases.entries()) {
      const err = await create('tenant-a', `d${String(i)}`, {
        ...port(),
        addresses: [{ ip }, { ip: '192.0.2.77' }],
      }).then(
        () => undefined,
        (e: unknown) => apiMessage(e),
      );
      if (err === undefined) admitted.add(i);
      else {
        expect(err.code).toBe(422);
        results.push({ name, where: 'admission', detail: err.message.slice(0, 160) });
      }
    }
    expect(admitted.size).toBeGreaterThanOrEqual(cases.length - 2);
    for (const [i, [name, ip, why]] of cases.entries()) {
      if (!admitted.has(i)) continue;
      const addr = await statusOf('tenant-a', `d${String(i)}`, (s) => {
        const a = s.addresses?.find((x) => x.ip === ip);
        return a?.state === 'Denied' ? a : undefined;
      });
      expect(addr.message).toContain(why);
      expect(addr.ready).toBe(false);
      // The editor who wrote it reads the same message: the refusal is visible to them.
      const seen = (await editors.get('tenant-a')?.objects.getNamespacedCustomObject({
        group,
        version,
        namespace: 'tenant-a',
        plural,
        name: `d${String(i)}`,
      })) as { status?: ExternalBackendStatus } | undefined;
      expect(seen?.status?.addresses?.find((x) => x.ip === ip)?.message).toBe(addr.message);
      expect(await sliceIPs('tenant-a', `d${String(i)}`)).toEqual(['192.0.2.77']);
      const events = await waitFor('the AddressDenied Event', async () => {
        const e = await eventsOf('tenant-a', `d${String(i)}`);
        return e.some((x) => x.reason === 'AddressDenied') ? e : undefined;
      });
      results.push({
        name,
        where: 'runtime',
        detail: `Denied: ${addr.message ?? ''}; Events ${[...new Set(events.map((e) => e.reason))].join(',')}`,
      });
    }
  }, 120_000);

  it('never publishes a backup the deny list refuses, even while backups are needed', async () => {
    // The only primary is drained, so backups are needed; the one backup is the API server.
    await create('tenant-a', 'bk1', {
      ...port(),
      addresses: [{ ip: '192.0.2.78', drain: true }],
      backup: { addresses: [{ ip: '172.20.0.100' }] },
    });
    const st = await statusOf('tenant-a', 'bk1', (s) =>
      s.conditions?.some((c) => c.type === 'BackupActive' && c.status === 'True') === true &&
      s.addresses?.some((a) => a.ip === '172.20.0.100' && a.state === 'Denied') === true
        ? s
        : undefined,
    );
    expect(st.conditions?.find((c) => c.type === 'BackupActive')?.message).toContain(
      'no backup can be published',
    );
    expect(await sliceIPs('tenant-a', 'bk1')).toEqual(['192.0.2.78']);
    results.push({
      name: 'a backup aimed at the API server, while backups are needed',
      where: 'runtime',
      detail: `Denied: ${st.addresses?.find((a) => a.ip === '172.20.0.100')?.message ?? ''}`,
    });
  }, 60_000);

  it('handles the rest at runtime: selector Services, foreign Endpoints, missing Services, pods of other namespaces, churn', async () => {
    await core.createNamespacedService({
      namespace: 'tenant-a',
      body: {
        metadata: { name: 'web' },
        spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
      },
    });
    await core.createNamespacedService({
      namespace: 'tenant-a',
      body: { metadata: { name: 'legacy' }, spec: { ports: [{ port: 80 }] } },
    });
    await core.createNamespacedEndpoints({
      namespace: 'tenant-a',
      body: {
        metadata: { name: 'legacy' },
        subsets: [{ addresses: [{ ip: '192.0.2.200' }], ports: [{ port: 80 }] }],
      },
    });
    // From here on, every write to tenant-a's Endpoints as the API server reports it.
    const seen = await recordWrites(kc, ['endpoints'], 'tenant-a');
    const cases: [string, string, Spec, string][] = [
      [
        'take over a selector Service',
        'r-web',
        { ...at('192.0.2.1'), service: { name: 'web' } },
        'ServiceHasSelector',
      ],
      [
        'overwrite a hand-written Endpoints',
        'r-legacy',
        { ...at('192.0.2.1'), service: { name: 'legacy' } },
        // Left alone (published beside, never written), and said on its own condition.
        'EndpointsHeldByAnotherWriter',
      ],
      [
        'point at a Service that does not exist',
        'r-none',
        { ...at('192.0.2.1'), service: { name: 'ghost', create: false } },
        'ServiceNotFound',
      ],
      [
        'select pods that live in another namespace',
        'r-pods',
        { ...port(5432), podSelector: { matchLabels: { app: 'db' } } },
        'NoReadyAddresses',
      ],
    ];
    for (const [name, obj, spec, reason] of cases) {
      await create('tenant-a', obj, spec);
      const ready = await statusOf('tenant-a', obj, (s) => {
        return s.conditions?.find(
          (x) => (x.type === 'Ready' || x.type === 'ForeignEndpoints') && x.reason === reason,
        );
      });
      results.push({
        name,
        where: 'runtime',
        detail: `${ready.type}=${ready.status} ${ready.reason}: ${ready.message.slice(0, 120)}`,
      });
    }
    // Every string at its longest allowed length is admitted and served.
    await create('tenant-a', 'r-limits', {
      ports: [
        { name: 'p'.repeat(15), port: 80, appProtocol: `${'a'.repeat(253)}/${'b'.repeat(63)}` },
      ],
      addresses: [{ ip: '192.0.2.1', nodeName: 'n'.repeat(253), hostname: 'h'.repeat(63) }],
      service: { name: `s${'x'.repeat(62)}` },
      podSelector: { matchLabels: { [`${'d'.repeat(253)}/${'k'.repeat(63)}`]: 'v'.repeat(63) } },
    });
    const limits = await statusOf('tenant-a', 'r-limits', (s) =>
      s.conditions?.find((c) => c.type === 'Ready'),
    );
    expect(limits.reason).toBe('AddressesReady');
    results.push({
      name: 'every string at its longest allowed length',
      where: 'runtime',
      detail: `Ready=${limits.status} ${limits.reason}`,
    });
    // The pods of another namespace were not published.
    expect(await sliceIPs('tenant-a', 'r-pods')).toEqual([]);

    // Thirty edits in a row, as fast as the API server takes them.
    await create('tenant-a', 'r-churn', at('192.0.2.1'));
    const ed = editors.get('tenant-a');
    for (let i = 0; i < 30; i++)
      await ed?.objects.patchNamespacedCustomObject(
        {
          group,
          version,
          namespace: 'tenant-a',
          plural,
          name: 'r-churn',
          body: [
            { op: 'replace', path: '/spec/addresses/0/ip', value: `192.0.2.${String(i + 1)}` },
          ],
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
    await statusOf('tenant-a', 'r-churn', (s) =>
      s.addresses?.[0]?.ip === '192.0.2.30' ? true : undefined,
    );
    expect(await sliceIPs('tenant-a', 'r-churn')).toEqual(['192.0.2.30']);
    // The hand-written Endpoints was never written. r-legacy said so on its condition above, and
    // r-churn, queued in the same namespace after it (first come first served within one), has
    // since been reconciled 30 times: r-legacy had its turns, and every write they made is here.
    seen.stop();
    expect(seen.writes.filter((w) => w.name === 'legacy')).toEqual([]);
    const ep = await core.readNamespacedEndpoints({ namespace: 'tenant-a', name: 'legacy' });
    expect(ep.subsets?.[0]?.addresses?.map((a) => a.ip)).toEqual(['192.0.2.200']);
    // The witness does see this namespace's Endpoints writes: r-churn's own, among others.
    expect(seen.writes.some((w) => w.name === 'r-churn')).toBe(true);
    results.push({
      name: '30 edits in a row',
      where: 'runtime',
      detail: 'the last one published, nothing else left behind',
    });
  }, 120_000);

  it('a range that appears later (a new Node) withdraws an address already published inside it', async () => {
    await create('tenant-a', 'late', at('10.244.9.7'));
    await waitFor('published', async () =>
      (await sliceIPs('tenant-a', 'late')).includes('10.244.9.7') ? true : undefined,
    );
    const t0 = Date.now();
    await core.createNode({
      body: { metadata: { name: 'node-late' }, spec: { podCIDRs: ['10.244.9.0/24'] } },
    });
    await waitFor(
      'withdrawn',
      async () => ((await sliceIPs('tenant-a', 'late')).length === 0 ? true : undefined),
      30_000,
      50,
    );
    const ms = Date.now() - t0;
    const a = await statusOf('tenant-a', 'late', (s) =>
      s.addresses?.[0]?.state === 'Denied' ? s.addresses[0] : undefined,
    );
    claim('node-range-withdrawn', ms, 'a Node whose pod CIDR covers a published address');
    expect(a.message).toContain('pod CIDR of Node node-late');
    results.push({
      name: 'a new Node covering a published address',
      where: 'runtime',
      detail: `withdrawn in ${String(ms)} ms: ${a.message ?? ''}`,
    });
  }, 60_000);

  it('revoking a grant withdraws what it allowed; grants in several objects add up; no grant at all freezes', async () => {
    await create('tenant-b', 'rev', {
      ...port(5432),
      addresses: [{ ip: '198.51.100.7' }, { ip: '192.0.2.7' }],
    });
    await waitFor('published', async () =>
      (await sliceIPs('tenant-b', 'rev')).length === 2 ? true : undefined,
    );
    const t0 = Date.now();
    setPolicy(
      policyRules().map((r) => (r.name === 'team-b' ? { ...r, cidrs: ['192.0.2.0/24'] } : r)),
    );
    await waitFor(
      'withdrawn',
      async () => ((await sliceIPs('tenant-b', 'rev')).join() === '192.0.2.7' ? true : undefined),
      30_000,
      50,
    );
    const revokeMs = Date.now() - t0;
    const a = await statusOf('tenant-b', 'rev', (s) =>
      s.addresses?.find((x) => x.ip === '198.51.100.7' && x.state === 'Denied'),
    );
    expect(a.message).toContain(
      'not allowed: no ExternalBackendPolicy rule for namespace tenant-b covers 198.51.100.7',
    );
    // Admission reads the grants compiled by outrigger: wait until they say the narrowed rule.
    await waitFor('the compiled grants to narrow', async () => {
      const eff = (await admin.getClusterCustomObject({
        group,
        version,
        plural: policyPlural,
        name: effectivePolicyName,
      })) as { spec?: { rules?: { name: string; cidrs: string[] }[] } };
      const rule = eff.spec?.rules?.find((r) => r.name === `${policyName}.team-b`);
      return rule?.cidrs.join() === '192.0.2.0/24' ? true : undefined;
    });

    // While narrowed: an unrelated edit is admitted (only what an update adds is judged), a new
    // address outside the grant is not.
    const ed = editors.get('tenant-b');
    const patch = (ops: unknown[]) =>
      ed?.objects.patchNamespacedCustomObject(
        { group, version, namespace: 'tenant-b', plural, name: 'rev', body: ops },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
    await patch([{ op: 'add', path: '/spec/addresses/1/nodeName', value: 'db-host-2' }]);
    results.push({
      name: 'an unrelated edit of a backend a narrowed grant no longer fully allows',
      where: 'runtime',
      detail:
        'admitted (only what an update adds is judged); the disallowed address stays withdrawn',
    });
    const added = await (
      patch([{ op: 'add', path: '/spec/addresses/-', value: { ip: '198.51.100.8' } }]) ??
      Promise.resolve()
    ).then(
      () => undefined,
      (e: unknown) => apiMessage(e),
    );
    expect(added?.message).toContain('register 198.51.100.8');
    results.push({
      name: 'an update adding an address outside the narrowed grant',
      where: 'admission',
      detail: added?.message.slice(0, 160) ?? '',
    });

    // A second owner's grant object adds to the first: the address is published again, and
    // deleting that object (an explicit revocation by its owner) withdraws only what it allowed.
    const extra = {
      apiVersion: `${group}/${version}`,
      kind: policyKind,
      metadata: { name: 'team-b-extra' },
      spec: {
        rules: [{ name: 'more', namespaceSelector: selectTenant('b'), cidrs: ['198.51.100.0/24'] }],
      },
    };
    kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], JSON.stringify(extra));
    await waitFor(
      'granted by the second object',
      async () => ((await sliceIPs('tenant-b', 'rev')).length === 2 ? true : undefined),
      30_000,
      50,
    );
    const t2 = Date.now();
    await admin.deleteClusterCustomObject({
      group,
      version,
      plural: policyPlural,
      name: 'team-b-extra',
    });
    await waitFor(
      "withdrawn with its owner's grant",
      async () => ((await sliceIPs('tenant-b', 'rev')).join() === '192.0.2.7' ? true : undefined),
      30_000,
      50,
    );
    const ownerRevokeMs = Date.now() - t2;

    // The last grant object deleted (an uninstall, a prune): decisions freeze. What is published
    // stays, and health checks would still take dead servers out; nothing new is published.
    const t1 = Date.now();
    await admin.deleteClusterCustomObject({
      group,
      version,
      plural: policyPlural,
      name: policyName,
    });
    const frozen = await statusOf('tenant-b', 'rev', (s) =>
      s.conditions?.find((c) => c.type === 'AddressPolicyFrozen' && c.status === 'True'),
    );
    const frozenMs = Date.now() - t1;
    expect(frozen.reason).toBe('GrantsMissing');
    expect(frozen.message).toContain('there is no ExternalBackendPolicy');
    expect(await sliceIPs('tenant-b', 'rev')).toEqual(['192.0.2.7']);
    expect(await operator.metric('outrigger_address_policy_frozen')).toBe(1);
    expect((await eventsOf('tenant-b', 'rev')).map((e) => e.reason)).toContain(
      'AddressPolicyFrozen',
    );
    const events = await eventsOf('tenant-b', 'rev');
    expect(events.filter((e) => e.reason === 'AddressDenied').length).toBeGreaterThanOrEqual(1);
    claim('policy-narrowed-withdrawn', revokeMs, 'a rule narrowed');
    claim('policy-narrowed-withdrawn', ownerRevokeMs, "one owner's object deleted");
    console.log(
      `policy revocation: the last object deleted: frozen (nothing withdrawn) in ${String(frozenMs)} ms`,
    );
    results.push({
      name: 'a grant narrowed by the platform team',
      where: 'runtime',
      detail: `withdrawn in ${String(revokeMs)} ms: ${a.message ?? ''}`,
    });
    results.push({
      name: "one owner's grant object deleted while another's stays",
      where: 'runtime',
      detail: `what only it allowed withdrawn in ${String(ownerRevokeMs)} ms`,
    });
    results.push({
      name: 'the last grant object deleted',
      where: 'runtime',
      detail: `frozen in ${String(frozenMs)} ms, nothing withdrawn: ${frozen.message}`,
    });
    // While frozen: a new backend is admitted (by the grants as last compiled) and waits,
    // unpublished; a foreground deletion completes (the garbage collector's finalizer update is
    // not refused).
    await create('tenant-b', 'orphaned', at('192.0.2.8', 5432));
    const orphaned = await statusOf('tenant-b', 'orphaned', (s) =>
      s.addresses?.[0]?.state === 'Denied' ? s.addresses[0] : undefined,
    );
    expect(orphaned.message).toContain('not published while the address policy is frozen');
    results.push({
      name: 'a backend created while no grant exists',
      where: 'runtime',
      detail: `admitted, waits: ${orphaned.message ?? ''}`,
    });
    await ed?.objects.deleteNamespacedCustomObject({
      group,
      version,
      namespace: 'tenant-b',
      plural,
      name: 'rev',
      propagationPolicy: 'Foreground',
    });
    await waitFor(
      'the foreground deletion to complete',
      async () => {
        try {
          await admin.getNamespacedCustomObject({
            group,
            version,
            namespace: 'tenant-b',
            plural,
            name: 'rev',
          });
          return undefined;
        } catch (err) {
          return err instanceof ApiException && err.code === 404 ? true : undefined;
        }
      },
      30_000,
    );
    setPolicy(policyRules());
    await waitFor(
      'republished',
      async () => ((await sliceIPs('tenant-b', 'orphaned')).length === 1 ? true : undefined),
      30_000,
    );
    const thawed = await statusOf('tenant-b', 'orphaned', (s) =>
      s.conditions?.find((c) => c.type === 'AddressPolicyFrozen' && c.status === 'False'),
    );
    expect(thawed.reason).toBe('GrantsRead');
    expect(await operator.metric('outrigger_address_policy_frozen')).toBe(0);
  }, 120_000);

  it('a thousand denied addresses make one Event, and other tenants are served meanwhile', async () => {
    const addresses = Array.from({ length: 1000 }, (_, i) => ({
      ip: `10.96.${String(100 + (i >> 8))}.${String(i & 255)}`,
    }));
    await create('tenant-a', 'flood', { ...port(), addresses });
    await statusOf(
      'tenant-a',
      'flood',
      (s) => (s.addresses?.filter((a) => a.state === 'Denied').length === 1000 ? true : undefined),
      60_000,
    );
    // Meanwhile another tenant's backend is published promptly.
    const t0 = Date.now();
    await create('tenant-b', 'meanwhile', at('192.0.2.99', 5432));
    await waitFor(
      'the other tenant published',
      async () => ((await sliceIPs('tenant-b', 'meanwhile')).length === 1 ? true : undefined),
      30_000,
      50,
    );
    const otherMs = Date.now() - t0;
    // A later backend in the same namespace, denied too: its Event goes through the same
    // first-in first-out Event queue after any the flood's reconciles made, so once it is at the
    // API server, so are they.
    await create('tenant-a', 'flood-marker', at('10.96.200.1'));
    await waitFor('the marker backend’s AddressDenied Event', async () =>
      (await eventsOf('tenant-a', 'flood-marker')).some((e) => e.reason === 'AddressDenied')
        ? true
        : undefined,
    );
    const denied = (await eventsOf('tenant-a', 'flood')).filter(
      (e) => e.reason === 'AddressDenied',
    );
    expect(denied).toHaveLength(1);
    expect(denied[0]?.message).toMatch(
      /^1000 addresses are denied and not published: 10\.96\.100\.0 \(in 10\.96\.0\.0\/16/,
    );
    results.push({
      name: '1000 denied addresses in one backend',
      where: 'runtime',
      detail: `1 Event ("${denied[0]?.message.slice(0, 70) ?? ''}…"); another tenant published in ${String(otherMs)} ms`,
    });
  }, 90_000);

  it('a backend of 5000 addresses is admitted, edited and published in slices of 100', async () => {
    const addresses = Array.from({ length: 5000 }, (_, i) => ({
      ip: `2001:db8:5000::${(i + 1).toString(16)}`,
    }));
    const t0 = Date.now();
    await create('tenant-a', 'big', { ...port(), addresses });
    const ed = editors.get('tenant-a');
    // An update judges only what it adds, against 5000 old addresses: within CEL's cost limit.
    await ed?.objects.patchNamespacedCustomObject(
      {
        group,
        version,
        namespace: 'tenant-a',
        plural,
        name: 'big',
        body: [{ op: 'replace', path: '/spec/addresses/0', value: { ip: '2001:db8:5000::ffff' } }],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    const slices = await waitFor(
      'every address published',
      async () => {
        const list = await kc.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({
          namespace: 'tenant-a',
          labelSelector: 'kubernetes.io/service-name=big',
        });
        const ips = new Set(
          list.items.flatMap((s) => s.endpoints?.flatMap((e) => e.addresses) ?? []),
        );
        return ips.size === 5000 && ips.has('2001:db8:5000::ffff') && !ips.has('2001:db8:5000::1')
          ? list.items
          : undefined;
      },
      120_000,
      500,
    );
    expect(slices).toHaveLength(50);
    expect(slices.every((s) => (s.endpoints?.length ?? 0) <= 100)).toBe(true);
    results.push({
      name: 'a backend of 5000 addresses, then an edit of one',
      where: 'runtime',
      detail: `admitted twice; published in ${String(slices.length)} slices of ≤ 100 in ${String(Date.now() - t0)} ms`,
    });
  }, 150_000);

  it('one namespace over its probe-target limit is told so; its extra addresses are published not ready', async () => {
    // 170 checked addresses on-link in the test's network namespace; nothing listens on 9999.
    const n = net.ipv4[0]?.split('.')[2] ?? '0';
    const addresses = Array.from({ length: 170 }, (_, i) => ({
      ip: `10.250.${n}.${String(i + 10)}`,
    }));
    await create('tenant-a', 'many', {
      ...port(9999),
      addresses,
      healthCheck: { tcp: { port: 'p' }, intervalSeconds: 30, timeoutSeconds: 5 },
    });
    const unchecked = await statusOf('tenant-a', 'many', (s) => {
      const u = s.addresses?.filter((a) =>
        a.message?.startsWith('not checked: namespace tenant-a has reached its limit of 160'),
      );
      return u?.length === 10 ? u : undefined;
    });
    expect(unchecked.every((a) => !a.ready && a.state === 'Unknown')).toBe(true);
    const events = await waitFor('the ProbeLimitReached Event', async () => {
      const e = await eventsOf('tenant-a', 'many');
      return e.find((x) => x.reason === 'ProbeLimitReached');
    });
    results.push({
      name: '170 checked addresses in a namespace limited to 160',
      where: 'runtime',
      detail: `10 not checked, published not ready; Event: ${events.message.slice(0, 100)}`,
    });
    await admin.deleteNamespacedCustomObject({
      group,
      version,
      namespace: 'tenant-a',
      plural,
      name: 'many',
    });
  }, 90_000);

  it('a noisy neighbour with 150 hung addresses cannot delay another tenant’s checks', async () => {
    const alone = await canaryDetectionMs();
    const silent = await net.serveAll(9100, 'silent');
    const addresses = net.ipv4.slice(10, 160).map((ip) => ({ ip }));
    await create('noisy', 'hung', {
      ports: [{ name: 'p', port: 9100 }],
      addresses,
      healthCheck: { http: { port: 'p' }, intervalSeconds: 60, timeoutSeconds: 60 },
    });
    // Wait until the neighbour's probes hold their share of the pool (half of 100).
    await waitFor(
      'the neighbour to hold its probe slots',
      async () => ((await busy()) >= 50 ? true : undefined),
      90_000,
      200,
    );
    const withNoisy = await canaryDetectionMs();
    const bound = (fast.intervalSeconds * fast.unhealthyThreshold + fast.timeoutSeconds + 1) * 1000;
    // docs/guide/policy.md's claim is "as fast as alone": the difference is held to one
    // interval's phase.
    claim(
      'noisy-neighbour-delay',
      withNoisy - alone,
      `canary (1 s checks, unhealthyThreshold 1): ${String(alone)} ms alone, ${String(withNoisy)} ms beside 150 hung addresses`,
    );
    expect(withNoisy).toBeLessThanOrEqual(bound + 1000);
    results.push({
      name: 'a neighbour with 150 hung addresses (60 s timeouts)',
      where: 'runtime',
      detail: `canary detection ${String(alone)} ms alone, ${String(withNoisy)} ms beside it (bound ${String(bound)} ms)`,
    });
    await admin.deleteNamespacedCustomObject({
      group,
      version,
      namespace: 'noisy',
      plural,
      name: 'hung',
    });
    await silent.stop();
  }, 180_000);

  it('a namespace that changes a hundred backends at once cannot make another tenant’s one change wait behind them', async () => {
    const ed = editors.get('noisy');
    if (ed === undefined) throw new Error('no editor in noisy');
    const n = 100;
    const ips = net.ipv4.slice(10, 20);
    // As fast as the API server takes them, as a script applying a directory would.
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        ed.objects.createNamespacedCustomObject({
          group,
          version,
          namespace: 'noisy',
          plural,
          body: {
            apiVersion,
            kind: 'ExternalBackend',
            metadata: { name: `burst-${String(i)}`, labels: { burst: 'true' } },
            spec: { ...port(9200), addresses: [{ ip: ips[i % ips.length] ?? '' }] },
          },
        }),
      ),
    );
    const reconciled = async (): Promise<number> => {
      const list = (await admin.listNamespacedCustomObject({
        group,
        version,
        namespace: 'noisy',
        plural,
        labelSelector: 'burst=true',
      })) as { items: { status?: ExternalBackendStatus }[] };
      return list.items.filter((x) => x.status?.service !== undefined).length;
    };
    const before = await reconciled();
    await create('tenant-b', 'calm', at('192.0.2.98', 5432));
    await waitFor(
      'the other tenant published',
      async () => ((await sliceIPs('tenant-b', 'calm')).length === 1 ? true : undefined),
      60_000,
      50,
    );
    const meanwhile = (await reconciled()) - before;
    claim(
      'burst-other-tenant-waits',
      meanwhile,
      `${String(before)} of ${String(n)} burst backends reconciled when the other tenant's was created`,
    );
    // The queue takes turns by namespace: the other tenant waits for the reconciles in flight
    // and a turn or two, not for the burst. Measured: 7 with turns; first come first served, 48
    // (status writes trail the reconciles, so fewer than all of them show).
    expect(before).toBeLessThan(n / 2);
    expect(meanwhile).toBeLessThan((n - before) / 5);
    results.push({
      name: 'a hundred backends created at once in one namespace',
      where: 'runtime',
      detail: `another tenant's backend published after ${String(meanwhile)} of the ${String(n - before)} still waiting`,
    });
    await admin.deleteCollectionNamespacedCustomObject({
      group,
      version,
      namespace: 'noisy',
      plural,
      labelSelector: 'burst=true',
    });
  }, 180_000);

  it('the operator is still up, and the canary is still served', async () => {
    expect(operatorExited).toBe(false);
    expect(await operator.metric('outrigger_unhandled_errors_total')).toBe(0);
    const ms = await canaryDetectionMs();
    expect(ms).toBeLessThan(10_000);
    const admission = results.filter((r) => r.where !== 'runtime').length;
    const runtime = results.filter((r) => r.where === 'runtime').length;
    console.log(
      `hostile cases: ${String(results.length)} (${String(admission)} refused at admission or by RBAC, ${String(runtime)} handled at runtime)\n${results
        .map((r) => `  [${r.where}] ${r.name}: ${r.detail}`)
        .join('\n')}`,
    );
    expect(results.length).toBeGreaterThanOrEqual(40);
  }, 60_000);

  // Last: it replaces the admin-run operator with one running as the chart's ServiceAccount under
  // the chart's default RBAC, which reads no namespace's Secrets until that namespace grants it.
  it('a Secret in a namespace that did not grant access: the check says how to grant, nothing is read, nothing else waits; a grant withdrawn is said before anything changes', async () => {
    await core.createNamespacedServiceAccount({
      namespace: 'default',
      body: { metadata: { name: 'outrigger' } },
    });
    const saPath = await serviceAccountKubeconfig(
      kc,
      'default',
      'outrigger',
      cluster.dir ?? '/tmp',
    );
    await operator.stop();
    operatorExited = false;
    operator = await startOperator(
      saPath,
      [
        '--max-probe-targets-per-namespace=160',
        '--pod-selector=false',
        '--health-check-reader-role=outrigger-health-check-reader',
        // Quiet watches re-established often: a withdrawn grant shows within seconds (an open
        // watch outlives a change of RBAC until it ends).
        '--watch-stall-timeout=3s',
        '--zap-log-level=debug',
      ],
      join(cluster.dir ?? '/tmp', 'outrigger-hostile-sa.log'),
      { installCrd: false },
    );
    operator.exited.then(
      () => (operatorExited = true),
      () => (operatorExited = true),
    );
    const secretValue = 'h0stile-s3cret-value';
    // The namespace's owner labels its Secret for health checks, but nobody bound outrigger's
    // reader role in tenant-a: the label alone is not consent.
    await core.createNamespacedSecret({
      namespace: 'tenant-a',
      body: {
        metadata: { name: 'api-token', labels: { 'outrigger.dev/health-check': 'true' } },
        stringData: { token: secretValue },
      },
    });
    const web = await net.serve(canaryIP, 9080, 'http');
    try {
      await create('tenant-a', 'secret-header', {
        ports: [{ name: 'p', port: 9080 }],
        addresses: [{ ip: canaryIP }],
        healthCheck: {
          http: {
            port: 'p',
            headers: [
              { name: 'X-Token', valueFrom: { secretKeyRef: { name: 'api-token', key: 'token' } } },
            ],
          },
          ...fast,
        },
      });
      const grant =
        'kubectl create rolebinding outrigger-health-check-reader --namespace=tenant-a --clusterrole=outrigger-health-check-reader --serviceaccount=default:outrigger';
      const message = await statusOf('tenant-a', 'secret-header', (st) => {
        const m = st.conditions?.find((c) => c.type === 'Ready')?.message ?? '';
        return m.includes(grant) ? m : undefined;
      });
      expect(message).toContain(
        'Secret api-token cannot be read: outrigger may not read Secrets in namespace tenant-a (403 Forbidden)',
      );
      const warned = await waitFor('the HealthCheckCannotRun Event', async () =>
        (await core.listNamespacedEvent({ namespace: 'tenant-a' })).items.find(
          (e) => e.reason === 'HealthCheckCannotRun' && e.involvedObject.name === 'secret-header',
        ),
      );
      expect(warned.message).toContain(grant);
      // Nothing read: the API server refused the list, and the value is nowhere outrigger writes.
      const log = readFileSync(operator.logPath, 'utf8');
      expect(log).toMatch(
        /"informer":"secrets".*"namespace":"tenant-a".*403|403.*"informer":"secrets"/,
      );
      expect(log).not.toContain(secretValue);
      expect(JSON.stringify(await statusOf('tenant-a', 'secret-header', (st) => st))).not.toContain(
        secretValue,
      );
      // podSelector with pods not granted (this suite does not apply the chart's podSelector
      // admission policy, as an install with it turned off would not): held, and said.
      await create('tenant-a', 'bypass-pods', {
        ...port(5432),
        podSelector: { matchLabels: { app: 'db' } },
      });
      const held = await statusOf('tenant-a', 'bypass-pods', (st) =>
        st.conditions?.find((c) => c.type === 'Ready' && c.reason === 'PodSelectorDisabled'),
      );
      expect(held.message).toContain('spec.podSelector is not enabled in this installation');
      // Other namespaces are not held: the canary is checked and detected as before.
      expect(await canaryDetectionMs()).toBeLessThan(10_000);
      expect(operatorExited).toBe(false);
      expect(await operator.metric('outrigger_unhandled_errors_total')).toBe(0);
      // The namespace grants it: picked up without a restart, the check runs.
      await kc.makeApiClient(RbacAuthorizationV1Api).createNamespacedRoleBinding({
        namespace: 'tenant-a',
        body: {
          metadata: { name: 'outrigger-health-check-reader' },
          roleRef: {
            apiGroup: 'rbac.authorization.k8s.io',
            kind: 'ClusterRole',
            name: 'outrigger-health-check-reader',
          },
          subjects: [{ kind: 'ServiceAccount', name: 'outrigger', namespace: 'default' }],
        },
      });
      await statusOf(
        'tenant-a',
        'secret-header',
        (st) =>
          st.addresses?.[0]?.state === 'Healthy' &&
          st.conditions?.find((c) => c.type === 'Ready')?.message.includes('cannot run') === false
            ? true
            : undefined,
        60_000,
      );
      // The grant withdrawn: the check goes on with what it read, and says so before a restart
      // would turn it into a check that cannot run.
      await kc.makeApiClient(RbacAuthorizationV1Api).deleteNamespacedRoleBinding({
        namespace: 'tenant-a',
        name: 'outrigger-health-check-reader',
      });
      const lost = await statusOf(
        'tenant-a',
        'secret-header',
        (st) => {
          const m = st.conditions?.find((c) => c.type === 'Ready')?.message ?? '';
          return m.includes('goes on with the values it read before') ? st : undefined;
        },
        30_000,
      );
      expect(lost.addresses?.[0]?.state).toBe('Healthy');
      expect(lost.conditions?.find((c) => c.type === 'Ready')?.message).toContain(grant);
      await waitFor('the HealthCheckSourcesLost Event', async () =>
        (await core.listNamespacedEvent({ namespace: 'tenant-a' })).items.find(
          (e) => e.reason === 'HealthCheckSourcesLost' && e.involvedObject.name === 'secret-header',
        ),
      );
      expect(readFileSync(operator.logPath, 'utf8')).not.toContain(secretValue);
      expect(operatorExited).toBe(false);
    } finally {
      await web.stop();
    }
  }, 180_000);
});

/** Probes in flight now, from the scheduler's lag histogram count minus results (approximation). */
async function busy(): Promise<number> {
  const started = await operator.metric('outrigger_probe_schedule_lag_seconds_count');
  const finished = await operator.metric('outrigger_probe_total');
  return started - finished;
}
