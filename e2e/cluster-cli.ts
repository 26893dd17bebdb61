// `npm run cluster:up [-- --controllers=a,b] [--data-plane | --node]` starts a local control plane
// that keeps running after the command returns; with --data-plane also a node (a network namespace
// with kube-proxy and CoreDNS, see e2e/harness/dataplane.ts) whose programs reach Services by name;
// with --node a real node instead (the same, plus containerd and a kubelet that run Pods, and
// kube-scheduler and kube-controller-manager: e2e/harness/node.ts), with outrigger's image imported.
// `npm run cluster:down` stops everything and removes its directory; `status` tells.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster } from './harness/controlplane.ts';
import {
  dataPlaneUnavailable,
  publishApiServer,
  removeRecordedNodes,
  startNode,
} from './harness/dataplane.ts';
import { versions } from './harness/binaries.ts';
import {
  kubeletNodeUnavailable,
  nodeControllers,
  removeRecordedKubeletNode,
  startKubeletNode,
} from './harness/node.ts';
import { isAlive, stopRecorded } from './harness/processes.ts';
import { buildImage } from './image/build.ts';

const dir = process.env.OUTRIGGER_CLUSTER_DIR ?? join(tmpdir(), 'outrigger-local-cluster');

function recordedPids(): number[] {
  try {
    return readFileSync(join(dir, 'pids'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function up(args: string[]): Promise<number> {
  const controllersArg = args.find((a) => a.startsWith('--controllers='));
  const dataPlane = args.includes('--data-plane');
  const realNode = args.includes('--node');
  const unknown = args.filter(
    (a) => a !== controllersArg && a !== '--data-plane' && a !== '--node',
  );
  if (unknown.length > 0 || (dataPlane && realNode)) {
    process.stderr.write(
      `cluster:up: unknown argument ${unknown[0] ?? '--node with --data-plane'} (only --controllers=a,b and one of --data-plane, --node)\n`,
    );
    return 2;
  }
  const why = dataPlane ? dataPlaneUnavailable() : realNode ? kubeletNodeUnavailable() : undefined;
  if (why !== undefined) {
    process.stderr.write(`cluster:up: no ${realNode ? 'real node' : 'data plane'} here: ${why}\n`);
    return 1;
  }
  if (recordedPids().some((p) => isAlive(p))) {
    process.stderr.write(
      `cluster:up: a cluster is already running in ${dir}; run npm run cluster:down first\n`,
    );
    return 1;
  }
  if (existsSync(dir)) {
    removeRecordedKubeletNode(join(dir, 'node'));
    removeRecordedNodes(dir);
    await stopRecorded(dir);
  }
  mkdirSync(dir, { recursive: true });
  const controllers = controllersArg?.slice('--controllers='.length).split(',').filter(Boolean);
  process.stderr.write('cluster:up: starting etcd and kube-apiserver on loopback...\n');
  const cluster = await startCluster({
    dir,
    persistent: true,
    // A real node's pods get the ServiceAccount token volume from this admission plugin.
    serviceAccountAdmission: realNode,
    ...(controllers && { controllers }),
  });
  const outriggerRepository = 'docker.io/library/outrigger';
  let outriggerImage: string | undefined;
  const kubeletNode = realNode
    ? await (async () => {
        process.stderr.write("cluster:up: building outrigger's image (npm run image)...\n");
        const image = buildImage({ out: join(dir, 'image') });
        outriggerImage = image.reference.replace(/^outrigger/, outriggerRepository);
        process.stderr.write('cluster:up: starting containerd, kubelet and kube-proxy...\n');
        return startKubeletNode(cluster, {
          dir: join(dir, 'node'),
          persistent: true,
          images: [{ archive: image.archive, repository: outriggerRepository }],
        });
      })()
    : undefined;
  const node = dataPlane
    ? await startNode(cluster, { dir, persistent: true }).then(async (n) => {
        await publishApiServer(cluster, n);
        return n;
      })
    : undefined;
  process.stdout.write(
    [
      `Control plane ready in ${(cluster.startupMs / 1000).toFixed(1)} s` +
        (controllers ? ` (kube-controller-manager: ${controllers.join(',')})` : ''),
      ...(node
        ? [
            `  node:       ${node.nodeName} = network namespace ${node.netns} (${node.ip}), kube-proxy (nftables) and CoreDNS`,
            `              run a program on it: ip netns exec ${node.netns} curl http://<service>.<namespace>.svc.cluster.local`,
          ]
        : []),
      ...(kubeletNode
        ? [
            `  node:       ${kubeletNode.nodeName} = kubelet ${versions.KUBERNETES_VERSION ?? ''} + containerd in network namespace ${kubeletNode.netns} (${kubeletNode.node.ip}), pods in ${kubeletNode.podCidr}`,
            `              kube-scheduler; kube-controller-manager: ${nodeControllers.join(',')}`,
            `  image:      ${outriggerImage ?? ''} (imagePullPolicy: Never or IfNotPresent)`,
            `  containerd: ctr --address ${kubeletNode.containerdSocket} -n k8s.io images list`,
          ]
        : []),
      `  kubeconfig: ${cluster.kubeconfigPath}`,
      `  kubectl:    ${cluster.kubectl}`,
      `  logs:       ${join(dir, 'logs')}`,
      '',
      'Use it:',
      `  export KUBECONFIG=${cluster.kubeconfigPath}`,
      `  ${cluster.kubectl} get namespaces`,
      '  npm run outrigger -- --kubeconfig "$KUBECONFIG"',
      'Stop it:',
      '  npm run cluster:down',
      '',
    ].join('\n'),
  );
  return 0;
}

async function down(): Promise<number> {
  if (!existsSync(dir)) {
    process.stdout.write('cluster:down: no local cluster is running\n');
    return 0;
  }
  const realNode = removeRecordedKubeletNode(join(dir, 'node'));
  const nodes = removeRecordedNodes(dir);
  const n = await stopRecorded(dir);
  if (realNode)
    process.stdout.write('cluster:down: removed the real node (pods, containerd, kubelet)\n');
  if (nodes > 0) process.stdout.write(`cluster:down: removed ${String(nodes)} node namespace(s)\n`);
  process.stdout.write(`cluster:down: stopped ${n} process(es) and removed ${dir}\n`);
  return 0;
}

function status(): number {
  const alive = recordedPids().filter((p) => isAlive(p));
  if (alive.length === 0) {
    process.stdout.write('no local cluster is running\n');
    return 1;
  }
  process.stdout.write(
    `running (pids ${alive.join(' ')}), kubeconfig ${join(dir, 'kubeconfig')}\n`,
  );
  return 0;
}

const [command, ...rest] = process.argv.slice(2);
const run = async (): Promise<number> => {
  switch (command) {
    case 'up':
      return up(rest);
    case 'down':
      return down();
    case 'status':
      return status();
    default:
      process.stderr.write(
        'usage: cluster-cli.ts up [--controllers=a,b] [--data-plane | --node] | down | status\n',
      );
      return 2;
  }
};
run().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`cluster: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
