// The container image, started as the chart starts it. The image is built without a daemon
// (npm run image: an OCI image layout), unpacked from that layout with every digest checked, and
// its container run with runc exactly as the chart's Deployment (installed with helm, read back
// from the API server) describes it: uid 1000, read-only root file system, no capabilities,
// RuntimeDefault seccomp, the memory limit, /tmp as a size-limited emptyDir, the metrics
// certificate's Secret, the chart's ServiceAccount token and CA where a kubelet mounts them and
// the in-cluster environment. Two such containers, one per node namespace, elect a leader and
// reconcile; in-cluster API traffic goes through the `kubernetes` Service's ClusterIP, rewritten
// by each node's kube-proxy.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  type KubeConfig,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { buildImage, unpackImage, type BuiltImage, type UnpackedImage } from './image/build.ts';
import { renderDockerfile } from './image/dockerfile.ts';
import { ensureDataPlaneBinary, ensureHelm } from './harness/binaries.ts';
import { createGrant } from './harness/crd.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import {
  dataPlaneUnavailable,
  publishApiServer,
  startNode,
  type Node,
} from './harness/dataplane.ts';
import { createBackendNetwork, type BackendNetwork } from './harness/netns.ts';
import { runcUnavailable, runPod, type Container } from './harness/runc.ts';
import { createExternalBackend, fastTcpBackend, teardown, waitFor } from './helpers.ts';
import { describeUnless } from './skips.ts';
import { claim } from './harness/claims.ts';

const skipReason = dataPlaneUnavailable() ?? runcUnavailable();
const suite = describeUnless(skipReason);
const chartDir = fileURLToPath(new URL('../charts/outrigger', import.meta.url));
const releaseNs = 'outrigger-system';

let cluster: Cluster;
let kc: KubeConfig;
let nodes: Node[] = [];
let net: BackendNetwork;
let image: BuiltImage;
let unpacked: UnpackedImage;
let podSpec: V1PodSpec;
const containers: Container[] = [];
const started = new Map<string, number>();

beforeAll(async () => {
  if (skipReason !== undefined) {
    console.warn(`skipping the image tests: ${skipReason}`);
    return;
  }
  cluster = await startCluster();
  kc = cluster.kubeConfig();
  const dir = cluster.dir ?? '/tmp';
  image = buildImage({ out: join(dir, 'image') });
  unpacked = unpackImage(image.layout, join(dir, 'unpacked'));
  nodes = [
    await startNode(cluster, { dir: join(dir, 'node-a'), nodeName: 'node-a', coreDns: false }),
    await startNode(cluster, { dir: join(dir, 'node-b'), nodeName: 'node-b', coreDns: false }),
  ];
  const [first] = nodes;
  if (first === undefined) throw new Error('no node');
  await publishApiServer(cluster, first);
  net = createBackendNetwork(dir, 2, { fromNodes: true });
  await net.serve(net.ipv4[0] ?? '', 7000, 'tcp');

  const [repository, tag] = image.reference.split(':');
  const helm = spawnSync(
    ensureHelm(),
    [
      'install',
      'outrigger',
      chartDir,
      `--kubeconfig=${cluster.kubeconfigPath}`,
      `--namespace=${releaseNs}`,
      '--create-namespace',
      `--set=image.repository=${repository ?? ''}`,
      `--set=image.tag=${tag ?? ''}`,
    ],
    { encoding: 'utf8' },
  );
  if (helm.status !== 0) throw new Error(`helm install failed:\n${helm.stdout}${helm.stderr}`);
  // A grant object of the platform team's own, as README's quick start shows: the CRDs came with the release.
  await createGrant(kc, 'tests', [
    {
      name: 'images',
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'images' } },
      cidrs: ['10.250.0.0/16'],
    },
  ]);
}, 900_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  await teardown(
    () => {
      for (const c of containers) c.remove();
      return Promise.resolve();
    },
    () => net.remove(),
    ...nodes.map((n) => () => n.stop()),
    () => cluster.stop(),
  );
}, 60_000);

async function readyz(n: Node): Promise<boolean> {
  try {
    return (await fetch(`http://${n.ip}:8081/readyz`, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

// Needs nothing but the files: runs where the rest of this file is skipped, too.
describe('the Dockerfile', () => {
  it('is rendered from the same list the daemonless build follows (run `npm run generate`)', () => {
    const committed = readFileSync(
      fileURLToPath(new URL('../Dockerfile', import.meta.url)),
      'utf8',
    );
    expect(committed).toBe(renderDockerfile());
  });
});

suite('the image, run as the chart runs it', () => {
  it('is built reproducibly from the list: Node, the app and three Debian libraries, nothing else', () => {
    const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
    console.log(
      `image ${image.reference}: ${mib(image.layer.size)} compressed, ${mib(image.unpackedBytes)} unpacked, built in ${(image.buildMs / 1000).toFixed(1)} s (${image.manifest.digest})`,
    );
    const inMiB = (n: number) => Math.round((n / 1048576) * 10) / 10;
    claim('image-compressed-size', inMiB(image.layer.size));
    claim('image-unpacked-size', inMiB(image.unpackedBytes));
    // The same inputs again (the app as built above): the same layer, byte for byte.
    const again = buildImage({ out: join(cluster.dir ?? '', 'image-again'), build: false });
    expect(again.layer.digest).toBe(image.layer.digest);
    expect(again.manifest.digest).toBe(image.manifest.digest);
    expect(unpacked.config.User).toBe('1000:1000');
    expect(unpacked.config.Entrypoint).toEqual(['/usr/local/bin/node', '/app/dist/main.js']);
    const top = spawnSync('ls', [unpacked.rootfs], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean);
    expect(top.sort()).toEqual(['app', 'etc', 'lib', 'lib64', 'tmp', 'usr'].sort());
    // No shell to exec into, no package manager.
    for (const p of ['bin/sh', 'usr/bin/apt-get', 'usr/bin/dpkg'])
      expect(spawnSync('test', ['-e', join(unpacked.rootfs, p)]).status).not.toBe(0);
  });

  it('two containers start from the chart Deployment, become ready in-cluster, elect one leader and reconcile', async () => {
    const deployment = await kc
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ name: 'outrigger', namespace: releaseNs });
    expect(deployment.spec?.replicas).toBe(2);
    const spec = deployment.spec?.template.spec;
    if (spec === undefined) throw new Error('the Deployment has no pod template');
    podSpec = spec;
    expect(spec.containers[0]?.image).toBe(image.reference);
    const sa = spec.serviceAccountName ?? 'default';
    const core = kc.makeApiClient(CoreV1Api);
    const token = await core.createNamespacedServiceAccountToken({
      name: sa,
      namespace: releaseNs,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const caCrt = readFileSync(join(cluster.dir ?? '', 'ca.crt'), 'utf8');
    // The Secret volumes the chart mounts (the metrics serving certificate), as a kubelet reads
    // them.
    const secrets = Object.fromEntries(
      await Promise.all(
        (spec.volumes ?? []).flatMap((v) =>
          v.secret?.secretName === undefined
            ? []
            : [
                core
                  .readNamespacedSecret({ namespace: releaseNs, name: v.secret.secretName })
                  .then((x) => [v.secret?.secretName ?? '', x.data ?? {}] as const),
              ],
        ),
      ),
    );
    const seccompProfile = ensureDataPlaneBinary('seccomp-default');
    // In-cluster API traffic must go to the `kubernetes` Service's ClusterIP, which only
    // kube-proxy's rules on each node turn into the API server's address.
    const apiSyns = nodes.map((n) => n.countConnections('10.96.0.1', 443));

    nodes.forEach((n, i) => {
      const podName = `outrigger-6f7d8b9c5d-${['x1abc', 'y2def'][i] ?? ''}`;
      started.set(podName, Date.now());
      containers.push(
        runPod({
          dir: join(cluster.dir ?? '', `pod-${String(i)}`),
          id: `outrigger-e2e-${String(process.pid)}-${String(i)}`,
          podName,
          podNamespace: releaseNs,
          podSpec,
          image: unpacked,
          netns: n.netns,
          serviceAccount: { token: token.status?.token ?? '', caCrt, namespace: releaseNs },
          seccompProfile,
          kubernetesService: { host: '10.96.0.1', port: 443 },
          secrets,
        }),
      );
    });
    const readyAfter: number[] = [];
    for (const [i, n] of nodes.entries()) {
      await waitFor(
        `the container on ${n.nodeName} to be ready`,
        async () => {
          if (containers[i]?.status() !== 'running')
            throw new Error(
              `container ${containers[i]?.status() ?? ''}: ${readFileSync(containers[i]?.logPath ?? '', 'utf8').slice(-2000)}`,
            );
          return (await readyz(n)) || undefined;
        },
        60_000,
        50,
      );
      readyAfter.push(Date.now() - ([...started.values()][i] ?? 0));
    }
    for (const ms of readyAfter) claim('container-ready', ms, 'runc run → /readyz');
    for (const c of apiSyns) expect(c.read()).toBeGreaterThan(0);

    // It runs as the chart and the image say: uid 1000 (the image's user: the chart sets
    // runAsNonRoot, not a UID), no capabilities, seccomp filtering, no new privileges.
    const status = readFileSync(`/proc/${String(containers[0]?.pid() ?? 0)}/status`, 'utf8');
    expect(status).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^CapBnd:\s+0+$/m);
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);

    // Node sizes its heap from the memory limit it reads in the container's own cgroup, which
    // containerd mounts at /sys/fs/cgroup (docs/memory.md): the chart's limit must be there.
    const root = `/proc/${String(containers[0]?.pid() ?? 0)}/root/sys/fs/cgroup`;
    const v1 = `${root}/memory/memory.limit_in_bytes`;
    const seen = readFileSync(existsSync(v1) ? v1 : `${root}/memory.max`, 'utf8').trim();
    const limit = /^(\d+)Mi$/.exec(spec.containers[0]?.resources?.limits?.memory ?? '');
    expect(Number(seen)).toBe(Number(limit?.[1]) * 1048576);

    // One leader among the two.
    const lease = await waitFor('a leader', async () => {
      const l = await kc
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ name: 'outrigger-leader', namespace: releaseNs });
      return l.spec?.holderIdentity ?? undefined;
    });
    const leaderIndex = [...started.keys()].findIndex((p) => lease.startsWith(`${p}_`));
    expect(leaderIndex).toBeGreaterThanOrEqual(0);

    // A reconcile, by whichever leads: the slice for a health-checked ExternalBackend.
    await core.createNamespace({ body: { metadata: { name: 'images' } } });
    await createExternalBackend(kc, 'images', 'legacy', fastTcpBackend(net.ipv4, 7000));
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const readyIPs = async () => {
      const s = await discovery.readNamespacedEndpointSlice({
        namespace: 'images',
        name: 'legacy-outrigger-ipv4',
      });
      return (s.endpoints ?? [])
        .filter((e) => e.conditions?.ready === true)
        .flatMap((e) => e.addresses);
    };
    await waitFor('the leader to publish the healthy address only', async () =>
      (await readyIPs()).join() === net.ipv4[0] ? true : undefined,
    );

    // The leader dies; the other container takes the lease and serves the next change.
    const leader = containers[leaderIndex];
    leader?.kill('SIGKILL');
    const killedAt = Date.now();
    await net.serve(net.ipv4[1] ?? '', 7000, 'tcp');
    await waitFor(
      'the standby to take over and publish the second address',
      async () => ((await readyIPs()).length === 2 ? true : undefined),
      60_000,
      200,
    );
    console.log(
      `leader container killed: the standby published a change ${String(Date.now() - killedAt)} ms later (lease 15 s)`,
    );
  }, 240_000);
});
