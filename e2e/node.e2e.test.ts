// A real node: kubelet v1.36.3, containerd and runc inside a network namespace that plays the node
// (e2e/harness/node.ts), with kube-scheduler and the controllers a Deployment needs. Pods run from
// outrigger's own image (built without a daemon, imported into containerd) under restricted Pod
// Security, get a bridge-CNI address and the ServiceAccount token the kubelet mounts, and use it
// through the `kubernetes` Service (kube-proxy on the node). After stop(), nothing of the node is
// left on this machine.
//
// On that node the chart goes through its lifecycle (previous chart, upgrade across the CRD change,
// rollback, uninstall, reinstall) while the client pod sends requests through kube-proxy and one
// backend server dies in each step: docs/lifecycle.md has the figures.
//
// This suite does not skip itself: without root, containerd, runc, the CNI plugins or nft it fails
// and says what to install (bash e2e/scripts/setup-system.sh).
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  AuthenticationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
  type V1Container,
  type V1Pod,
  Watch,
} from '@kubernetes/client-node';
import { fileURLToPath } from 'node:url';
import { buildImage, type BuiltImage } from './image/build.ts';
import { ensureHelm } from './harness/binaries.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { kubeletNodeUnavailable, startKubeletNode, type KubeletNode } from './harness/node.ts';
import { isAlive } from './harness/processes.ts';
import { createBackendNetwork, type BackendNetwork, type Server } from './harness/netns.ts';
import { ruleset, rulesetChanges } from './harness/nftables.ts';
import { createExternalBackend, fastTcpBackend, teardown, waitFor } from './helpers.ts';
import { claim } from './harness/claims.ts';

const missing =
  process.env.USE_EXISTING_CLUSTER === 'true'
    ? 'the real node runs beside the local control plane only (unset USE_EXISTING_CLUSTER)'
    : kubeletNodeUnavailable();

let cluster: Cluster;
let kc: KubeConfig;
let node: KubeletNode;
let image: BuiltImage;
let hostBefore: HostState;
let stopped = false;
let net: BackendNetwork;
/** The ExternalBackend's HTTP servers by address. */
const backendServers = new Map<string, Server>();
const repository = 'docker.io/library/outrigger';
const chartDir = fileURLToPath(new URL('../charts/outrigger', import.meta.url));
/** The previous chart built from this repository (see e2e/lifecycle.e2e.test.ts). */
const previousChart = fileURLToPath(
  new URL('./fixtures/outrigger-chart-8f194d9.tgz', import.meta.url),
);
const execFileP = promisify(execFile);

/** What a node could leave on the host outside its directory, listed before it starts. */
interface HostState {
  readonly nft: string;
  readonly paths: Record<string, string[] | null>;
}

// Fixed places a runtime or kubelet writes to by default; the node must use its own directory.
const watchedPaths = [
  '/var/lib/cni',
  '/var/lib/cni/results',
  '/var/lib/cni/networks',
  '/etc/cni/net.d',
  '/opt/cni',
  '/var/lib/containerd',
  '/run/containerd',
  '/opt/containerd',
  '/var/lib/kubelet',
  '/var/log/pods',
  '/var/log/containers',
  '/var/run/netns',
  '/etc/kubernetes',
];

function hostState(): HostState {
  const paths: Record<string, string[] | null> = {};
  for (const p of watchedPaths) paths[p] = existsSync(p) ? readdirSync(p).sort() : null;
  // Other suites on this machine add and remove their own namespaces meanwhile: only a pod's
  // (containerd names them cni-<uuid>) would be the node's.
  paths['/var/run/netns'] = paths['/var/run/netns']?.filter((n) => n.startsWith('cni-')) ?? null;
  return { nft: ruleset(), paths };
}

/** What identifies a real node's traces (e2e/fixtures/hold-node.ts prints the same). */
interface Footprint {
  readonly dir: string;
  readonly cgroupRoot: string;
  readonly netns: string;
  readonly podCidr: string;
  readonly pids: readonly number[];
  readonly podUids: readonly string[];
  /** The node's mount namespace, as /proc/<pid>/ns/mnt reads. */
  readonly mountNs: string;
}

function footprint(n: KubeletNode, podUids: readonly string[]): Footprint {
  return {
    dir: n.dir,
    cgroupRoot: n.cgroupRoot,
    netns: n.netns,
    podCidr: n.podCidr,
    pids: n.pids(),
    podUids,
    mountNs: readlinkSync(`/proc/${String(n.pids()[0])}/ns/mnt`),
  };
}

/** Every trace of the node on this machine (empty once it is gone). */
function traces(n: Footprint): string[] {
  const { podUids, mountNs } = n;
  const found: string[] = [];
  for (const pid of n.pids) if (isAlive(pid)) found.push(`process ${String(pid)}`);
  // The node's mounts live in its own mount namespace, which lasts while any process is in it.
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readlinkSync(`/proc/${e}/ns/mnt`) !== mountNs) continue;
      found.push(`process ${e} in the node's mount namespace`);
      for (const line of readFileSync(`/proc/${e}/mountinfo`, 'utf8').split('\n')) {
        const target = line.split(' ')[4];
        if (target?.startsWith(`${n.dir}/`) === true) found.push(`namespace mount ${target}`);
      }
    } catch {
      // Exited while being read.
    }
  }
  // Any process (a container, a shim) in the node's cgroups or naming its directory.
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cgroups = readFileSync(`/proc/${e}/cgroup`, 'utf8');
      const cmdline = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      if (cgroups.includes(n.cgroupRoot) || cmdline.includes(n.dir))
        found.push(`process ${e}: ${cmdline.replaceAll('\0', ' ').slice(0, 120)}`);
    } catch {
      // Exited while being read.
    }
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const target = line.split(' ')[4];
    if (target?.startsWith(`${n.dir}/`) === true) found.push(`mount ${target}`);
  }
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const root = join('/sys/fs/cgroup', h, n.cgroupRoot);
    if (existsSync(root)) found.push(`cgroup ${root}`);
  }
  // The pods' own cgroups, by UID, wherever they are.
  const podCgroups = spawnSync('find', ['/sys/fs/cgroup', '-maxdepth', '6', '-type', 'd'], {
    encoding: 'utf8',
  }).stdout;
  for (const uid of podUids)
    for (const d of podCgroups.split('\n'))
      if (d.includes(`pod${uid}`)) found.push(`pod cgroup ${d}`);
  if (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.includes(n.netns))
    found.push(`network namespace ${n.netns}`);
  if (spawnSync('ip', ['route', 'show', n.podCidr], { encoding: 'utf8' }).stdout.trim() !== '')
    found.push(`route ${n.podCidr}`);
  if (existsSync('/var/lib/cni/results'))
    for (const f of readdirSync('/var/lib/cni/results'))
      if (f.startsWith('outrigger-')) found.push(`CNI result /var/lib/cni/results/${f}`);
  if (existsSync('/var/log/containers'))
    for (const f of readdirSync('/var/log/containers')) {
      const target = readlinkSync(join('/var/log/containers', f));
      if (target.startsWith(n.dir)) found.push(`log link /var/log/containers/${f}`);
    }
  if (existsSync(n.dir)) found.push(`directory ${n.dir}`);
  return found;
}

/** A container of outrigger's image that Pod Security `restricted` admits. */
function restrictedContainer(script: string): V1Container {
  return {
    name: 'app',
    image: `${repository}:${image.reference.split(':')[1] ?? ''}`,
    imagePullPolicy: 'Never',
    command: ['node', '-e', script],
    ports: [{ containerPort: 8080 }],
    readinessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1 },
    securityContext: {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}

// Serves /healthz, and /whoami: a SelfSubjectReview sent with the mounted token and CA to the
// `kubernetes` Service, as in-cluster clients do.
const whoamiServer = `
const fs = require('fs'), http = require('http'), https = require('https');
const sa = '/var/run/secrets/kubernetes.io/serviceaccount/';
http.createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok');
  const token = fs.readFileSync(sa + 'token', 'utf8');
  const call = https.request({
    host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT,
    method: 'POST', path: '/apis/authentication.k8s.io/v1/selfsubjectreviews',
    ca: fs.readFileSync(sa + 'ca.crt'), timeout: 5000,
    headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
  }, (r) => {
    let body = '';
    r.on('data', (c) => (body += c));
    r.on('end', () => res.end(JSON.stringify({
      namespace: fs.readFileSync(sa + 'namespace', 'utf8'), token, status: r.statusCode, body,
    })));
  });
  call.on('timeout', () => call.destroy(new Error('timeout')));
  call.on('error', (e) => { res.statusCode = 502; res.end(String(e)); });
  call.end(JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }));
}).listen(8080);
`;

async function restrictedNamespace(name: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({
    body: {
      metadata: {
        name,
        labels: {
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
        },
      },
    },
  });
  // The ServiceAccount admission plugin refuses Pods until the controller made `default`.
  await waitFor(
    `ServiceAccount default in ${name}`,
    async () =>
      (await core.readNamespacedServiceAccount({ namespace: name, name: 'default' })).metadata,
    30_000,
    200,
  );
}

const ready = (p: V1Pod): boolean =>
  p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

function inPodCidr(ip: string | undefined): boolean {
  const prefix = node.podCidr.replace(/\.0\/24$/, '.');
  return ip !== undefined && ip.startsWith(prefix) && ip !== `${prefix}1`;
}

/** GET http://ip:port/path from inside the node's namespace (where the kubelet's probes come from). */
async function getFromNode(url: string): Promise<string> {
  const r = await node.node.exec(process.execPath, [
    '-e',
    `fetch(${JSON.stringify(url)}).then(async (r) => { process.stdout.write(await r.text()); process.exitCode = r.ok ? 0 : 1; })`,
  ]);
  if (r.code !== 0) throw new Error(`GET ${url} from the node: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** GET an https URL from inside the node's namespace, verifying `ca` and `servername`. */
async function getSecureFromNode(
  url: string,
  o: { readonly ca: string; readonly servername: string; readonly token?: string },
): Promise<{ status: number; body: string }> {
  const script = `
const [url, opts] = process.argv.slice(1);
const { ca, servername, token } = JSON.parse(opts);
require('node:https').get(url, { ca, servername, headers: token ? { Authorization: 'Bearer ' + token } : {} }, (r) => {
  let body = '';
  r.on('data', (c) => (body += c));
  r.on('end', () => process.stdout.write(JSON.stringify({ status: r.statusCode, body })));
}).on('error', (e) => { process.stderr.write(String(e)); process.exitCode = 1; });
`;
  const r = await node.node.exec(process.execPath, ['-e', script, url, JSON.stringify(o)]);
  if (r.code !== 0) throw new Error(`GET ${url} from the node: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout) as { status: number; body: string };
}

interface Sample {
  /** When the request was sent (ms since the epoch). */
  readonly t: number;
  readonly ok: boolean;
  readonly body: string;
}

/**
 * GETs `url` from inside the node's namespace every 100 ms for `ms`, one process for all of them;
 * resolves with every request's outcome.
 */
async function trafficFromNode(url: string, ms: number): Promise<Sample[]> {
  const script = `
const [url, ms] = process.argv.slice(1);
const end = Date.now() + Number(ms);
const out = [];
(async () => {
  while (Date.now() < end) {
    const t = Date.now();
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
      out.push({ t, ok: r.ok, body: await r.text() });
    } catch (e) {
      out.push({ t, ok: false, body: String(e) });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  process.stdout.write(JSON.stringify(out));
})();
`;
  const r = await node.node.exec(process.execPath, ['-e', script, url, String(ms)], ms + 30_000);
  if (r.code !== 0) throw new Error(`traffic from the node: ${r.stderr}`);
  return JSON.parse(r.stdout) as Sample[];
}

beforeAll(async () => {
  // A missing prerequisite fails the suite (and says how to get it) instead of skipping it.
  if (missing !== undefined) throw new Error(`the real-node suite cannot run: ${missing}`);
  hostBefore = hostState();
  cluster = await startCluster({ serviceAccountAdmission: true });
  kc = cluster.kubeConfig();
  const dir = cluster.dir ?? '/tmp';
  image = buildImage({ out: join(dir, 'image') });
  const started = Date.now();
  node = await startKubeletNode(cluster, {
    dir: join(dir, 'node'),
    images: [{ archive: image.archive, repository }],
  });
  claim('node-schedulable', Date.now() - started);
  console.log(
    `real node schedulable in ${String(Date.now() - started)} ms (${Object.entries(node.startupMs)
      .map(([phase, ms]) => `${phase} ${String(ms)}`)
      .join(', ')}); outrigger's image built in ${String(image.buildMs)} ms`,
  );
  net = createBackendNetwork(dir, 2, { fromNodes: true });
}, 600_000);

afterAll(async () => {
  await teardown(
    () => net.remove(),
    async () => {
      if (!stopped) await node.stop();
    },
    () => cluster.stop(),
  );
}, 120_000);

describe('a real node', () => {
  it("imported outrigger's image and the pause image into its own containerd", () => {
    const names = node.ctr(['images', 'list', '--quiet']).split('\n');
    expect(names).toContain(image.reference.replace(/^outrigger/, repository));
    expect(names).toContain(node.pauseImage);
    // Built here, under a name no registry serves.
    expect(node.pauseImage).toMatch(/^localhost\/outrigger\/pause:/);
    // The machine's default containerd (if any) was not used.
    expect(node.containerdSocket.startsWith(node.dir)).toBe(true);
  });

  it('runs a restricted pod to Ready with a bridge address and the ServiceAccount token it uses through the kubernetes Service', async () => {
    const ns = 'node-restricted';
    await restrictedNamespace(ns);
    const core = kc.makeApiClient(CoreV1Api);
    // Pod Security is enforced: a pod that may escalate is refused.
    const refused = restrictedContainer(whoamiServer);
    await expect(
      core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: 'refused' },
          spec: {
            containers: [
              {
                ...refused,
                securityContext: { ...refused.securityContext, allowPrivilegeEscalation: true },
              },
            ],
          },
        },
      }),
    ).rejects.toThrow(/allowPrivilegeEscalation/);

    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'whoami' },
        spec: { containers: [restrictedContainer(whoamiServer)] },
      },
    });
    const pod = await waitFor(
      'pod whoami to be Ready',
      async () => {
        const p = await core.readNamespacedPod({ namespace: ns, name: 'whoami' });
        return ready(p) ? p : undefined;
      },
      120_000,
      500,
    );
    expect(pod.spec?.nodeName).toBe(node.nodeName);
    expect(pod.status?.hostIP).toBe(node.node.ip);
    expect(inPodCidr(pod.status?.podIP)).toBe(true);
    // The kubelet mounted the projected token volume the ServiceAccount admission plugin added.
    expect(pod.spec?.volumes?.some((v) => v.name.startsWith('kube-api-access-'))).toBe(true);

    const who = JSON.parse(await getFromNode(`http://${pod.status?.podIP ?? ''}:8080/whoami`)) as {
      namespace: string;
      token: string;
      status: number;
      body: string;
    };
    expect(who.namespace).toBe(ns);
    expect(who.status).toBe(201);
    const review = JSON.parse(who.body) as { status?: { userInfo?: { username?: string } } };
    expect(review.status?.userInfo?.username).toBe(`system:serviceaccount:${ns}:default`);
    // The token is bound to this pod.
    const tr = await kc.makeApiClient(AuthenticationV1Api).createTokenReview({
      body: { spec: { token: who.token } },
    });
    expect(tr.status?.authenticated).toBe(true);
    expect(tr.status?.user?.extra?.['authentication.kubernetes.io/pod-name']).toEqual(['whoami']);
  }, 180_000);

  it("runs a Deployment's pods to Ready and publishes them in its Service's EndpointSlice", async () => {
    const ns = 'node-deployment';
    await restrictedNamespace(ns);
    const labels = { app: 'web' };
    await kc.makeApiClient(CoreV1Api).createNamespacedService({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      },
    });
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [restrictedContainer(whoamiServer)] },
          },
        },
      },
    });
    await waitFor(
      'Deployment web to have 2 ready replicas',
      async () => {
        const d = await kc
          .makeApiClient(AppsV1Api)
          .readNamespacedDeployment({ namespace: ns, name: 'web' });
        return d.status?.readyReplicas === 2 ? d : undefined;
      },
      120_000,
      500,
    );
    const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: ns });
    const ips = pods.items.map((p) => p.status?.podIP);
    expect(new Set(ips).size).toBe(2);
    expect(ips.every(inPodCidr)).toBe(true);
    const ready = await waitFor(
      'the EndpointSlice of web to list both pods ready',
      async () => {
        const slices = await kc.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({
          namespace: ns,
          labelSelector: 'kubernetes.io/service-name=web',
        });
        const addrs = slices.items
          .flatMap((s) => s.endpoints ?? [])
          .filter((e) => e.conditions?.ready === true)
          .flatMap((e) => e.addresses)
          .sort();
        return addrs.length === 2 ? addrs : undefined;
      },
      60_000,
      500,
    );
    expect(ready).toEqual([...ips].sort());
    // Through the Service's ClusterIP, rewritten by kube-proxy in the node's namespace.
    const svc = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedService({ namespace: ns, name: 'web' });
    await waitFor(
      'the ClusterIP to answer from the node',
      async () =>
        (await getFromNode(`http://${svc.spec?.clusterIP ?? ''}/healthz`)) === 'ok'
          ? true
          : undefined,
      30_000,
      500,
    );
  }, 180_000);

  it('installs the chart as a user does (only the image values set): two replicas Running and Ready under restricted Pod Security, one leader', async () => {
    const ns = 'outrigger-system';
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({
      body: {
        metadata: {
          name: ns,
          labels: {
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
          },
        },
      },
    });
    const [repo, tag] = image.reference.split(':');
    const t0 = Date.now();
    const helm = spawnSync(
      ensureHelm(),
      [
        'install',
        'outrigger',
        chartDir,
        `--kubeconfig=${cluster.kubeconfigPath}`,
        `--namespace=${ns}`,
        `--set=image.repository=${repo ?? ''}`,
        `--set=image.tag=${tag ?? ''}`,
        // Prometheus's stand-in, granted get on /metrics by the chart's metrics-reader role.
        `--set-json=metrics.readers=${JSON.stringify([{ name: 'prometheus', namespace: ns }])}`,
        '--wait',
        '--timeout=3m',
      ],
      { encoding: 'utf8' },
    );
    const installMs = Date.now() - t0;
    if (helm.status !== 0) {
      const events = await core.listNamespacedEvent({ namespace: ns });
      throw new Error(
        `helm install failed:\n${helm.stdout}${helm.stderr}\n${events.items.map((e) => `${e.involvedObject.name ?? ''}: ${e.message ?? ''}`).join('\n')}`,
      );
    }
    const pods = (
      await core.listNamespacedPod({
        namespace: ns,
        labelSelector: 'app.kubernetes.io/name=outrigger',
      })
    ).items;
    expect(pods).toHaveLength(2);
    for (const p of pods) {
      expect(p.status?.phase).toBe('Running');
      expect(ready(p)).toBe(true);
      expect(p.spec?.nodeName).toBe(node.nodeName);
      expect(inPodCidr(p.status?.podIP)).toBe(true);
      expect(p.status?.containerStatuses?.[0]?.restartCount).toBe(0);
      // The kubelet mounted the token (the chart leaves automounting on).
      expect(p.spec?.volumes?.some((v) => v.name.startsWith('kube-api-access-'))).toBe(true);
    }
    const holder = await waitFor(
      'a leader',
      async () => {
        const l = await kc
          .makeApiClient(CoordinationV1Api)
          .readNamespacedLease({ name: 'outrigger-leader', namespace: ns });
        return l.spec?.holderIdentity ?? undefined;
      },
      60_000,
      500,
    );
    const names = pods.map((p) => p.metadata?.name ?? '');
    expect(names.filter((n) => holder.startsWith(`${n}_`))).toHaveLength(1);
    expect(pods[0]?.spec?.containers[0]?.securityContext?.readOnlyRootFilesystem).toBe(true);
    claim('node-helm-install-ready', installMs, `helm install --wait; leader ${holder}`);
    // Prometheus' view: /metrics through the metrics Service (kube-proxy picks a replica), over
    // HTTPS verified as the ServiceMonitor verifies it (the chart's CA, the Service's name), with
    // a ServiceAccount token the operator reviews: refused without it.
    const metricsSvc = await core.readNamespacedService({
      namespace: ns,
      name: 'outrigger-metrics',
    });
    await core.createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'prometheus' } },
    });
    const token =
      (
        await core.createNamespacedServiceAccountToken({
          namespace: ns,
          name: 'prometheus',
          body: { spec: { audiences: [], expirationSeconds: 600 } },
        })
      ).status?.token ?? '';
    const tls = await core.readNamespacedSecret({ namespace: ns, name: 'outrigger-metrics-tls' });
    const ca = Buffer.from(tls.data?.['ca.crt'] ?? '', 'base64').toString('utf8');
    const url = `https://${metricsSvc.spec?.clusterIP ?? ''}:${String(metricsSvc.spec?.ports?.[0]?.port)}/metrics`;
    const servername = `outrigger-metrics.${ns}.svc`;
    expect((await getSecureFromNode(url, { ca, servername })).status).toBe(401);
    const metrics = await getSecureFromNode(url, { ca, servername, token });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^outrigger_/m);
  }, 300_000);

  it('serves an ExternalBackend through kube-proxy to a client pod on the node, and takes a dead server out', async () => {
    const ns = 'tenant';
    for (const addr of net.ipv4) backendServers.set(addr, await net.serve(addr, 8080, 'http'));
    // The documented way to grant a team addresses.
    const rules = [
      {
        name: 'tenant',
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
        cidrs: ['10.250.0.0/16'],
      },
    ];
    const helm = spawnSync(
      ensureHelm(),
      [
        'upgrade',
        'outrigger',
        chartDir,
        `--kubeconfig=${cluster.kubeconfigPath}`,
        '--namespace=outrigger-system',
        '--reuse-values',
        `--set-json=addressPolicy.rules=${JSON.stringify(rules)}`,
        '--wait',
      ],
      { encoding: 'utf8' },
    );
    if (helm.status !== 0) throw new Error(`helm upgrade failed:\n${helm.stdout}${helm.stderr}`);
    await restrictedNamespace(ns);
    await createExternalBackend(kc, ns, 'legacy', fastTcpBackend(net.ipv4, 8080));
    await waitFor(
      'kube-proxy on the node to program both servers',
      () => {
        const e = node.node.programmedEndpoints(ns, 'legacy');
        return Promise.resolve(e.length === 2 ? e : undefined);
      },
      60_000,
      250,
    );
    // The client pod resolves the Service through the node's CoreDNS and connects through
    // kube-proxy; the servers answer with their own address.
    const client = `
const http = require('http');
http.createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok');
  // A new connection each time (no keep-alive), so that kube-proxy picks a server each time.
  http.get('http://legacy.${ns}.svc.cluster.local:8080/', { timeout: 2000, agent: false }, (r) => {
    let body = '';
    r.on('data', (c) => (body += c));
    r.on('end', () => res.end(body.split(' ')[0]));
  }).on('error', (e) => { res.statusCode = 502; res.end(String(e)); });
}).listen(8080);
`;
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'client' }, spec: { containers: [restrictedContainer(client)] } },
    });
    const pod = await waitFor(
      'the client pod to be Ready',
      async () => {
        const p = await core.readNamespacedPod({ namespace: ns, name: 'client' });
        return ready(p) ? p : undefined;
      },
      60_000,
      250,
    );
    const ask = () => getFromNode(`http://${pod.status?.podIP ?? ''}:8080/`);
    const seen = new Set<string>();
    for (let i = 0; i < 30 && seen.size < 2; i++) seen.add(await ask());
    expect([...seen].sort()).toEqual([...net.ipv4].sort());

    // One server dies: the operator, in its pod, checks it from the pod network and takes it out.
    const [dead, alive] = [backendServers.get(net.ipv4[0] ?? ''), net.ipv4[1] ?? ''];
    const t0 = Date.now();
    await dead?.stop();
    await waitFor(
      'kube-proxy to drop the dead server',
      () => {
        const e = node.node.programmedEndpoints(ns, 'legacy');
        return Promise.resolve(e.length === 1 ? e : undefined);
      },
      30_000,
      100,
    );
    claim('node-dead-server-out', Date.now() - t0, "dead server out of kube-proxy's rules");
    for (let i = 0; i < 10; i++) expect(await ask()).toBe(alive);
    // The health checks came from an operator pod, on the node's pod network.
    const operatorIps = (
      await core.listNamespacedPod({
        namespace: 'outrigger-system',
        labelSelector: 'app.kubernetes.io/name=outrigger',
      })
    ).items.map((p) => p.status?.podIP ?? '');
    expect(operatorIps.every(inPodCidr)).toBe(true);
    const probes = operatorIps.map((ip) => net.countConnections(alive, 8080, `${ip}/32`));
    await waitFor(
      'a health check of the live server from an operator pod',
      () => Promise.resolve(probes.some((c) => c.read() > 0) || undefined),
      10_000,
      200,
    );
  }, 180_000);

  it('fails over when the leader is SIGKILLed while a server dies (the Lease must expire), and when its pod is deleted', async () => {
    const ns = 'tenant';
    const releaseNs = 'outrigger-system';
    const core = kc.makeApiClient(CoreV1Api);
    const leases = kc.makeApiClient(CoordinationV1Api);
    const holder = async (): Promise<string> =>
      (await leases.readNamespacedLease({ name: 'outrigger-leader', namespace: releaseNs })).spec
        ?.holderIdentity ?? '';
    const leaderPod = async (): Promise<V1Pod> => {
      const h = await holder();
      const pods = await core.listNamespacedPod({
        namespace: releaseNs,
        labelSelector: 'app.kubernetes.io/name=outrigger',
      });
      const p = pods.items.find((x) => h.startsWith(`${x.metadata?.name ?? ''}_`));
      if (p === undefined) throw new Error(`no pod holds the Lease (${h})`);
      return p;
    };
    const [ip0 = '', ip1 = ''] = net.ipv4;
    // Both servers up again (the previous test stopped the first).
    const server0 = await net.serve(ip0, 8080, 'http');
    await waitFor(
      'both servers in kube-proxy again',
      () => {
        const e = node.node.programmedEndpoints(ns, 'legacy');
        return Promise.resolve(e.length === 2 ? e : undefined);
      },
      30_000,
      100,
    );
    const client = await core.readNamespacedPod({ namespace: ns, name: 'client' });
    const traffic = trafficFromNode(`http://${client.status?.podIP ?? ''}:8080/`, 30_000);
    await delay(2000);

    // A crash: the leader's process dies without a word, so its Lease runs out (15 s by default);
    // at the same moment the second server dies, and only a leader takes it out.
    const old = await leaderPod();
    const oldHolder = await holder();
    const pids = node.containerProcesses(old.status?.containerStatuses?.[0]?.containerID ?? '');
    expect(pids.length).toBeGreaterThan(0);
    const killedAt = Date.now();
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await backendServers.get(ip1)?.stop();
    await waitFor(
      'kube-proxy to drop the dead server under a new leader',
      () => {
        const e = node.node.programmedEndpoints(ns, 'legacy');
        return Promise.resolve(e.length === 1 ? e : undefined);
      },
      60_000,
      100,
    );
    const removedAfter = Date.now() - killedAt;
    const newHolder = await holder();
    expect(newHolder).not.toBe(oldHolder);
    const results = await traffic;
    const after = (t: number) => results.filter((r) => r.t >= t);
    const failedWhile = after(killedAt).filter((r) => r.t < killedAt + removedAfter && !r.ok);
    // Once kube-proxy has the new rules (and its sync period), every request is served.
    const failedAfter = after(killedAt + removedAfter + 1500).filter((r) => !r.ok);
    claim('node-leader-killed-dead-server-out', removedAfter);
    console.log(
      `leader SIGKILLed with a server dying: dead server out of kube-proxy after ${String(removedAfter)} ms; ` +
        `${String(failedWhile.length)} of ${String(after(killedAt).filter((r) => r.t < killedAt + removedAfter).length)} requests failed meanwhile; ` +
        `${String(failedAfter.length)} failed after`,
    );
    expect(failedAfter).toEqual([]);
    // kubelet restarted the killed container in place.
    await waitFor(
      'the killed container to be restarted',
      async () => {
        const p = await core.readNamespacedPod({
          namespace: releaseNs,
          name: old.metadata?.name ?? '',
        });
        return (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 && ready(p)
          ? p
          : undefined;
      },
      60_000,
      250,
    );

    // A pod delete: the leader is told to stop (SIGTERM) and hands the Lease over.
    const leader = await leaderPod();
    const before = await holder();
    const deletedAt = Date.now();
    await core.deleteNamespacedPod({ namespace: releaseNs, name: leader.metadata?.name ?? '' });
    const next = await waitFor(
      'another replica to take the Lease',
      async () => {
        const h = await holder();
        return h !== before && h !== '' ? h : undefined;
      },
      60_000,
      100,
    );
    claim(
      'node-leader-pod-deleted',
      Date.now() - deletedAt,
      `leader pod ${leader.metadata?.name ?? ''} deleted: ${next.split('_')[0] ?? ''} leads`,
    );
    await server0.stop();
  }, 180_000);

  it('runs the chart lifecycle with traffic through kube-proxy and a server dying in each step: previous chart, upgrade across the CRD change, rollback, uninstall, reinstall', async () => {
    const ns = 'tenant';
    const releaseNs = 'outrigger-system';
    const core = kc.makeApiClient(CoreV1Api);
    const helmBin = ensureHelm();
    const [repo = '', tag = ''] = image.reference.split(':');
    // The same image under a second tag stands for the previous build: the pod template differs
    // between the charts only by it, so each step rolls the operator's pods as a real upgrade does.
    const previousTag = `${tag}-previous`;
    node.ctr(['images', 'tag', `${repository}:${tag}`, `${repository}:${previousTag}`]);
    const rules = [
      {
        name: 'tenant',
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
        cidrs: ['10.250.0.0/16'],
      },
    ];
    const run = async (bin: string, args: readonly string[]): Promise<number> => {
      const t0 = Date.now();
      try {
        await execFileP(bin, [...args, `--kubeconfig=${cluster.kubeconfigPath}`], {
          maxBuffer: 16 << 20,
        });
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string };
        throw new Error(`${bin} ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`, {
          cause: err,
        });
      }
      return Date.now() - t0;
    };
    const helm = (args: readonly string[]) =>
      run(helmBin, [...args, `--namespace=${releaseNs}`, '--wait', '--timeout=3m']);
    const programmed = () =>
      node.node.programmedEndpoints(ns, 'legacy').map((e) => e.split(':')[0]);
    const [victim = '', other = ''] = net.ipv4;
    const servers = new Map<string, Server>();
    const serveBoth = async (published = true) => {
      for (const ip of net.ipv4)
        if (!servers.has(ip)) servers.set(ip, await net.serve(ip, 8080, 'http'));
      await waitFor(
        'kube-proxy to program both servers',
        () => Promise.resolve(programmed().length === 2 || undefined),
        60_000,
        100,
      );
      // kube-proxy reads the slice; the Endpoints write may trail it. Both must have reached
      // this test's watch before the next step starts, or the write is counted in that step.
      if (published)
        await waitFor(
          'the Endpoints and the slice to list both servers ready, as this test watches them',
          () => Promise.resolve(bothPublished() || undefined),
          60_000,
          100,
        );
    };
    const kill = async (ip: string) => {
      await servers.get(ip)?.stop();
      servers.delete(ip);
    };

    // From the current chart's install (earlier tests) back to where an existing install of the
    // previous chart stands: no release, no CRDs (deleting them takes the tenant's Service too).
    await run(helmBin, ['uninstall', 'outrigger', `--namespace=${releaseNs}`, '--wait']);
    await run(cluster.kubectl, [
      'delete',
      'crd',
      'externalbackends.outrigger.dev',
      'externalbackendpolicies.outrigger.dev',
      '--wait',
    ]);
    await waitFor(
      'the garbage collector to delete the Service outrigger wrote',
      async () =>
        (await core.readNamespacedService({ namespace: ns, name: 'legacy' }).then(
          () => false,
          () => true,
        )) || undefined,
      60_000,
      250,
    );

    // Every write to the tenant's objects, as the API server reports it.
    interface Write {
      readonly at: number;
      readonly object: string;
      /** The write changed nothing a reader uses (addresses, conditions, ports, spec). */
      readonly noop: boolean;
    }
    const writes: Write[] = [];
    const lastSeen = new Map<string, string>();
    // A watch the API server closes (it does, now and then) resumes from the last resourceVersion
    // it saw, so no write goes uncounted; a resume the API server refuses (410) fails the test.
    const watchEnds: string[] = [];
    const controllers: AbortController[] = [];
    const watching = { on: true };
    const follow = async (
      path: string,
      query: Record<string, string>,
      resource: string,
      from: string,
    ): Promise<void> => {
      let last = from;
      let refused = false;
      const c = await new Watch(kc).watch(
        path,
        { ...query, allowWatchBookmarks: true, resourceVersion: last },
        (
          type: string,
          obj: { metadata?: { name?: string; resourceVersion?: string }; [k: string]: unknown },
        ) => {
          if (type === 'ERROR') {
            refused = true;
            watchEnds.push(`${resource}: refused ${JSON.stringify(obj)}`);
            return;
          }
          last = obj.metadata?.resourceVersion ?? last;
          if (type === 'BOOKMARK') return;
          const object = `${resource}/${obj.metadata?.name ?? ''}`;
          const content = JSON.stringify([obj.endpoints, obj.ports, obj.subsets, obj.spec, type]);
          writes.push({ at: Date.now(), object, noop: lastSeen.get(object) === content });
          lastSeen.set(object, content);
        },
        (err: unknown) => {
          if (!watching.on || refused) return;
          watchEnds.push(
            `${resource}: ${err === null || err === undefined ? 'closed' : err instanceof Error ? `${err.name}: ${err.message}` : `${typeof err} ${JSON.stringify(err)}`}`,
          );
          follow(path, query, resource, last).catch((e: unknown) => {
            watchEnds.push(`${resource}: resume failed: ${String(e)}`);
          });
        },
      );
      controllers.push(c);
    };
    /** Both servers are ready in the last Endpoints and in a slice this test's watches saw. */
    const bothPublished = (): boolean => {
      const ready = (object: string): string[] => {
        const seen = lastSeen.get(object);
        if (seen === undefined) return [];
        const [endpoints, , subsets, , type] = JSON.parse(seen) as [
          { addresses?: string[]; conditions?: { ready?: boolean } }[] | undefined,
          unknown,
          { addresses?: { ip?: string }[] }[] | undefined,
          unknown,
          string,
        ];
        if (type === 'DELETED') return [];
        return [
          ...(endpoints ?? [])
            .filter((e) => e.conditions?.ready === true)
            .flatMap((e) => e.addresses ?? []),
          ...(subsets ?? []).flatMap((x) => (x.addresses ?? []).map((a) => a.ip ?? '')),
        ];
      };
      const has = (ips: string[]) => net.ipv4.every((ip) => ips.includes(ip));
      return (
        has(ready('endpoints/legacy')) &&
        [...lastSeen.keys()].some((k) => k.startsWith('endpointslices/') && has(ready(k)))
      );
    };
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const byName = { fieldSelector: 'metadata.name=legacy' };
    const bySlice = { labelSelector: 'kubernetes.io/service-name=legacy' };
    await follow(
      `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
      bySlice,
      'endpointslices',
      (await discovery.listNamespacedEndpointSlice({ namespace: ns, ...bySlice })).metadata
        ?.resourceVersion ?? '',
    );
    await follow(
      `/api/v1/namespaces/${ns}/endpoints`,
      byName,
      'endpoints',
      (await core.listNamespacedEndpoints({ namespace: ns, ...byName })).metadata
        ?.resourceVersion ?? '',
    );
    await follow(
      `/api/v1/namespaces/${ns}/services`,
      byName,
      'services',
      (await core.listNamespacedService({ namespace: ns, ...byName })).metadata?.resourceVersion ??
        '',
    );

    // The client pod (earlier test) asks for the Service through kube-proxy about every 100 ms,
    // for the whole lifecycle, until told to stop.
    const client = await core.readNamespacedPod({ namespace: ns, name: 'client' });
    const stopFile = join(cluster.dir ?? '/tmp', 'lifecycle-traffic.stop');
    const trafficScript = `
const fs = require('fs');
const [url, stop] = process.argv.slice(1);
const out = [];
(async () => {
  while (!fs.existsSync(stop)) {
    const t = Date.now();
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
      out.push({ t, ok: r.ok, body: (await r.text()).slice(0, 80) });
    } catch (e) {
      out.push({ t, ok: false, body: String(e).slice(0, 80) });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  process.stdout.write(JSON.stringify(out));
})();
`;
    const traffic = node.node.exec(
      process.execPath,
      ['-e', trafficScript, `http://${client.status?.podIP ?? ''}:8080/`, stopFile],
      900_000,
    );

    interface StepResult {
      readonly step: string;
      readonly start: number;
      /** Requests count from here (the install: once the Service is first served). */
      readonly servedFrom: number;
      readonly helmMs: number;
      /** From the server's death to its leaving kube-proxy's rules; undefined: it stayed. */
      readonly leftMs: number | undefined;
      /** The step counts as settled from here: Helm done, the dead server out (if it goes). */
      readonly settled: number;
      readonly end: number;
      readonly note: string;
    }
    const results: StepResult[] = [];
    const holderPod = async (): Promise<string> =>
      (
        await kc
          .makeApiClient(CoordinationV1Api)
          .readNamespacedLease({ name: 'outrigger-leader', namespace: releaseNs })
      ).spec?.holderIdentity?.split('_')[0] ?? '';
    /** Resolves when the pod stops (deletionTimestamp set, or gone). */
    const podStopping = async (name: string): Promise<void> => {
      await waitFor(
        `pod ${name} to be told to stop`,
        async () => {
          const p = await core
            .readNamespacedPod({ namespace: releaseNs, name })
            .catch(() => undefined);
          return p === undefined || p.metadata?.deletionTimestamp !== undefined || undefined;
        },
        120_000,
        100,
      );
    };
    const waitLeft = async (ip: string, from: number, ms: number): Promise<number> => {
      await waitFor(
        `kube-proxy to drop the dead server ${ip}`,
        () => Promise.resolve(!programmed().includes(ip) || undefined),
        ms,
        100,
      );
      return Date.now() - from;
    };
    const settleMs = 2000;
    const afterMs = 5000;
    /**
     * One lifecycle step: `action` (Helm) runs while, at the moment `killAt` resolves, the victim
     * server dies; then the dead server must leave, the step settles, and five more seconds of
     * requests are watched.
     */
    const step = async (
      name: string,
      action: () => Promise<number>,
      killAt: (helmDone: Promise<number>) => Promise<void>,
      note: string,
      servedFrom?: () => number,
    ): Promise<void> => {
      const start = Date.now();
      const helmDone = action();
      await killAt(helmDone);
      const killedAt = Date.now();
      await kill(victim);
      const leftMs = await waitLeft(victim, killedAt, 90_000);
      const helmMs = await helmDone;
      const settled = Date.now() + settleMs;
      await delay(settleMs + afterMs);
      results.push({
        step: name,
        start,
        servedFrom: servedFrom?.() ?? start,
        helmMs,
        leftMs,
        settled,
        end: Date.now(),
        note,
      });
      await serveBoth();
    };
    /** Kills when the leader at the start of the step is told to stop (the handover). */
    const atLeaderStop = async (helmDone: Promise<number>) => {
      const leader = await holderPod();
      await Promise.race([podStopping(leader), helmDone]);
    };

    // 1. Install the previous chart as an existing install has it (CRDs from its crds/
    //    directory, the rules in its `cluster` object), then the tenant's backend: first served.
    let firstServedMs = 0;
    let firstServedAt = 0;
    await step(
      'install (previous chart), then the first backend',
      async () => {
        const t0 = Date.now();
        const ms = await helm([
          'install',
          'outrigger',
          previousChart,
          `--set=image.repository=${repo}`,
          `--set=image.tag=${previousTag}`,
          `--set-json=addressPolicy.rules=${JSON.stringify(rules)}`,
        ]);
        await createExternalBackend(kc, ns, 'legacy', fastTcpBackend(net.ipv4, 8080));
        await serveBoth();
        firstServedAt = Date.now();
        firstServedMs = firstServedAt - t0 - ms;
        return ms;
      },
      async (helmDone) => {
        await helmDone;
      },
      'the server dies once both are served',
      () => firstServedAt,
    );

    const policyCrd = () =>
      kc
        .makeApiClient(ApiextensionsV1Api)
        .readCustomResourceDefinition({ name: 'externalbackendpolicies.outrigger.dev' });
    const previousPolicyCrd = JSON.stringify((await policyCrd()).spec);

    // 2. The documented move to chart-managed CRDs, and `helm upgrade` to this chart with the
    //    current build: the CRDs change, the Deployment rolls.
    await step(
      'helm upgrade across the CRD change (Deployment rolls)',
      async () => {
        let ms = 0;
        for (const crd of [
          'externalbackends.outrigger.dev',
          'externalbackendpolicies.outrigger.dev',
        ]) {
          ms += await run(cluster.kubectl, [
            'label',
            'crd',
            crd,
            'app.kubernetes.io/managed-by=Helm',
            '--overwrite',
          ]);
          ms += await run(cluster.kubectl, [
            'annotate',
            'crd',
            crd,
            'meta.helm.sh/release-name=outrigger',
            `meta.helm.sh/release-namespace=${releaseNs}`,
            'helm.sh/resource-policy=keep',
            '--overwrite',
          ]);
        }
        ms += await run(cluster.kubectl, [
          'annotate',
          'externalbackendpolicy',
          'cluster',
          'helm.sh/resource-policy=keep',
          '--overwrite',
        ]);
        return (
          ms +
          (await helm([
            'upgrade',
            'outrigger',
            chartDir,
            '--reset-then-reuse-values',
            `--set=image.tag=${tag}`,
          ]))
        );
      },
      atLeaderStop,
      'the server dies when the leader is told to stop',
    );
    // The policy CRD is this chart's now (it changed: any number of grant objects).
    expect(JSON.stringify((await policyCrd()).spec)).not.toBe(previousPolicyCrd);

    // 3. Roll back to the previous chart (and build): the Deployment rolls again.
    await step(
      'helm rollback to the previous chart (Deployment rolls)',
      () => helm(['rollback', 'outrigger', '1']),
      atLeaderStop,
      'the server dies when the leader is told to stop',
    );

    // 4. Uninstall: no operator runs afterwards, so nothing is health-checked. The tenant's
    //    Service keeps its last state; a server that dies now is NOT taken out (asserted).
    const uninstallStart = Date.now();
    const uninstallMs = await helm(['uninstall', 'outrigger']);
    await waitFor(
      "the operator's pods to be gone",
      async () =>
        (
          await core.listNamespacedPod({
            namespace: releaseNs,
            labelSelector: 'app.kubernetes.io/name=outrigger',
          })
        ).items.length === 0 || undefined,
      120_000,
      250,
    );
    await kill(victim);
    await delay(15_000);
    const stillServed = programmed();
    results.push({
      step: 'helm uninstall (no operator afterwards)',
      start: uninstallStart,
      servedFrom: uninstallStart,
      helmMs: uninstallMs,
      leftMs: undefined,
      // Nothing settles: the dead server stays. "After" is its last 5 s.
      settled: Date.now() - afterMs,
      end: Date.now(),
      note: 'the server dies once the pods are gone, and stays in the rules',
    });
    expect(stillServed.sort()).toEqual([victim, other].sort());
    const grantKept = await kc
      .makeApiClient(CustomObjectsApi)
      .getClusterCustomObject({
        group: 'outrigger.dev',
        version: 'v1alpha1',
        plural: 'externalbackendpolicies',
        name: 'cluster',
      })
      .then(
        () => true,
        () => false,
      );

    // 5. Reinstall this chart (the user's values again): it adopts what exists; the server that
    //    died meanwhile leaves once the new leader has checked it.
    const reinstallStart = Date.now();
    const reinstallHelm = helm([
      'install',
      'outrigger',
      chartDir,
      `--set=image.repository=${repo}`,
      `--set=image.tag=${tag}`,
      `--set-json=addressPolicy.rules=${JSON.stringify(rules)}`,
    ]);
    const reinstallLeft = await waitLeft(victim, reinstallStart, 120_000);
    const reinstallMs = await reinstallHelm;
    const reinstallSettled = Date.now() + settleMs;
    await delay(settleMs + afterMs);
    results.push({
      step: 'helm install again (adopting what exists)',
      start: reinstallStart,
      servedFrom: reinstallStart,
      helmMs: reinstallMs,
      leftMs: reinstallLeft,
      settled: reinstallSettled,
      end: Date.now(),
      note: 'the server died during the uninstall; left counted from the install',
    });

    writeFileSync(stopFile, '');
    const r = await traffic;
    watching.on = false;
    for (const c of controllers) c.abort();
    await serveBoth(false);
    if (r.code !== 0) throw new Error(`traffic from the node: ${r.stderr}`);
    const samples = JSON.parse(r.stdout) as Sample[];

    const rows = results.map((s) => {
      const inStep = samples.filter((x) => x.t >= s.servedFrom && x.t < s.settled);
      const after = samples.filter((x) => x.t >= s.settled && x.t < s.end);
      const w = writes.filter((x) => x.at >= s.start && x.at < s.end);
      return {
        ...s,
        failedDuring: inStep.filter((x) => !x.ok).length,
        during: inStep.length,
        failedAfter: after.filter((x) => !x.ok).length,
        after: after.length,
        writes: w.length,
        noopWrites: w.filter((x) => x.noop).length,
        objects: [...new Set(w.map((x) => x.object))],
      };
    });
    const table = rows.map(
      (s) =>
        `${s.step.padEnd(56)} helm ${String(s.helmMs).padStart(6)} ms  dead server out ${s.leftMs === undefined ? 'never'.padStart(6) : `${String(s.leftMs).padStart(6)} ms`}  failed ${String(s.failedDuring)}/${String(s.during)} during, ${String(s.failedAfter)}/${String(s.after)} after  writes ${String(s.writes)} (${String(s.noopWrites)} no-op) ${s.objects.join(' ')}  [${s.note}]`,
    );
    console.log(
      `chart lifecycle on the real node (first backend served ${String(firstServedMs)} ms after helm install; the cluster grant ${grantKept ? 'survived' : 'did NOT survive'} the uninstall):\n${table.join('\n')}`,
    );

    console.log(
      `tenant writes (s since the first step): ${writes.map((w) => `${((w.at - (results[0]?.start ?? 0)) / 1000).toFixed(1)} ${w.object}${w.noop ? ' (no-op)' : ''}`).join('; ')}; watches resumed: ${watchEnds.join('; ') || 'none'}`,
    );
    // Every write was seen: no resume was refused.
    expect(watchEnds.filter((e) => / refused |resume failed/.test(e))).toEqual([]);
    for (const s of rows) {
      expect(s.during).toBeGreaterThan(10);
      // No write that changes nothing, in any step.
      expect({ step: s.step, noop: s.noopWrites }).toEqual({ step: s.step, noop: 0 });
    }
    const [install, upgrade, rollback, uninstall, reinstall] = rows;
    // While an operator runs, the dead server leaves within a bound (a handover included), and
    // every request is served once the step settles.
    for (const s of [install, upgrade, rollback, reinstall]) {
      expect({ step: s?.step, failedAfter: s?.failedAfter }).toEqual({
        step: s?.step,
        failedAfter: 0,
      });
      expect(s?.after ?? 0).toBeGreaterThan(20);
    }
    for (const s of [install, upgrade, rollback]) expect(s?.leftMs).toBeLessThan(10_000);
    // Without an operator the dead server is served unchecked: requests keep failing.
    expect(uninstall?.failedAfter).toBeGreaterThan(0);
    expect({ writes: uninstall?.writes, objects: uninstall?.objects }).toEqual({
      writes: 0,
      objects: [],
    });
    // Reinstall adopts: the only writes take the dead server out (the Endpoints and the slice).
    expect(reinstall?.objects.sort()).toEqual(expect.arrayContaining(['endpoints/legacy']));
    expect(reinstall?.writes).toBeLessThanOrEqual(2);
    expect(reinstall?.objects.some((o) => o.startsWith('services/'))).toBe(false);
  }, 900_000);

  it('stop() leaves no process, mount, cgroup, CNI state, kubelet directory, route or nftables rule', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const uids = (await core.listPodForAllNamespaces()).items.map((p) => p.metadata?.uid ?? '');
    expect(uids.length).toBeGreaterThanOrEqual(3);
    // The check sees the node while it runs: its pods' cgroups, their mounts, its processes.
    const f = footprint(node, uids);
    expect(f.mountNs).not.toBe(readlinkSync('/proc/self/ns/mnt'));
    const before = traces(f);
    for (const kind of [
      'process',
      'mount',
      'namespace mount',
      'pod cgroup',
      'cgroup',
      'network namespace',
      'route',
    ])
      expect(before.some((t) => t.startsWith(`${kind} `))).toBe(true);
    // The pods' volumes (the token) and root file systems are mounted in the node's namespace only.
    expect(before.some((t) => /^namespace mount .*kube-api-access-/.test(t))).toBe(true);
    expect(before.some((t) => /^mount .*kube-api-access-/.test(t))).toBe(false);
    // Nothing of the node's own is on the host's nftables (kube-proxy's are in its namespace).
    expect(rulesetChanges(hostBefore.nft, hostState().nft)).toEqual([]);

    const t0 = Date.now();
    await node.stop();
    stopped = true;
    console.log(`real node stopped in ${String(Date.now() - t0)} ms`);
    // The harness's watchdogs (which name the directory) exit within seconds of a stop.
    const left = await waitFor(
      'the last traces of the node to go',
      () => Promise.resolve(traces(f).length === 0 ? [] : undefined),
      10_000,
      200,
    ).catch(() => traces(f));
    expect(left).toEqual([]);
    expect(hostState()).toEqual(hostBefore);
    expect((await core.listNode()).items.map((n) => n.metadata?.name)).toEqual([]);
  }, 120_000);

  it('leaves nothing either when the process that started it is SIGKILLed (its watchdogs clean up)', async () => {
    const holder = spawn(
      process.execPath,
      [fileURLToPath(new URL('fixtures/hold-node.ts', import.meta.url))],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: holder.stdout }).once('line', resolve);
      holder.once('exit', (code) => {
        reject(new Error(`hold-node exited with ${String(code)}`));
      });
    });
    const f = JSON.parse(line) as Footprint & { clusterDir: string };
    const before = traces(f);
    expect(before.some((t) => t.startsWith('pod cgroup '))).toBe(true);
    expect(before.some((t) => t.startsWith('namespace mount '))).toBe(true);
    holder.kill('SIGKILL');
    const left = await waitFor(
      'the watchdogs to remove the node',
      () => Promise.resolve(traces(f).length === 0 ? [] : undefined),
      30_000,
      200,
    ).catch(() => traces(f));
    expect(left).toEqual([]);
    expect(hostState()).toEqual(hostBefore);
    await waitFor('the control plane directory to go', () =>
      Promise.resolve(existsSync(f.clusterDir) ? undefined : true),
    );
  }, 180_000);
});
