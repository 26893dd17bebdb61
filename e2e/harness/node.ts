// A real node on the local control plane: the data-plane node of dataplane.ts (a network namespace
// with kube-proxy and CoreDNS) plus containerd, runc and a kubelet inside that same namespace, so
// that Pods are scheduled (kube-scheduler), get a bridge-CNI address, their ServiceAccount token and
// their probes from a real kubelet — with no NodePort, nftables rule or pod interface on the host.
//
//   host 127.0.0.1:<api>  <- tcp-forward on 10.249.<n>.1  <- node 10.249.<n>.2: kubelet, containerd,
//   kube-proxy, CoreDNS; bridge cni0 10.248.<n>.1/24 -> pods 10.248.<n>.x (their own namespaces)
//
// Everything the node writes lives under its directory: containerd's root, state and socket, the
// CNI configuration and address allocations, kubelet's root and pod logs, the pods' network
// namespace files. Every mount it makes lives in a mount namespace of its own, in which /run,
// /var/lib and /var/log are directories of the node too (for the paths containerd 1.6, libcni and
// kubelet use whatever they are told). What is left outside — processes, the cgroups under the
// node's own cgroup root, its network namespace — node-cleanup.sh removes; stop(), the watchdog
// and `npm run cluster:down` run it.
//
// Settings this machine needs (DESIGN.md §7): cgroup v1 (failCgroupV1: false, cgroupfs driver),
// swap allowed, containerd's restrict_oom_score_adj (root here lacks CAP_SYS_RESOURCE), a pause
// image built here.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api } from '@kubernetes/client-node';
import type { Cluster } from './controlplane.ts';
import { ensureDataPlaneBinary } from './binaries.ts';
import { dataPlaneUnavailable, publishApiServer, startNode, type Node } from './dataplane.ts';
import { ip } from './netns.ts';
import { ProcessGroup, tail, until, type ManagedProcess } from './processes.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const cleanupScript = join(here, 'node-cleanup.sh');
const packagesScript = fileURLToPath(new URL('../scripts/setup-system.sh', import.meta.url));

/** The real nodes' pod addresses (10.248.<n>.0/24 per node); a blackhole covers the range. */
export const podRange = '10.248.0.0/16';

/**
 * kube-controller-manager's controllers a Deployment and a mounted ServiceAccount token need (the
 * token controller and the root CA publisher for the kube-api-access volume), plus namespace
 * deletion so that tests can clean up after themselves.
 */
export const nodeControllers: readonly string[] = [
  'deployment-controller',
  'replicaset-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  'endpointslice-controller',
  'garbage-collector-controller',
  'namespace-controller',
  // Takes away the not-ready taint kubelet registers the Node with, once it reports Ready.
  'node-lifecycle-controller',
];

export interface KubeletNodeOptions {
  /** Directory for everything the node writes. */
  readonly dir: string;
  readonly nodeName?: string;
  /** OCI image archives to import into containerd, e.g. outrigger's (e2e/image/build.ts). */
  readonly images?: readonly ImageArchive[];
  /** Also start kube-controller-manager with nodeControllers (default true). */
  readonly controllerManager?: boolean;
  /** Leave everything running when this process exits (npm run cluster:up -- --node). */
  readonly persistent?: boolean;
}

export interface ImageArchive {
  readonly archive: string;
  /**
   * The repository the archive's tag belongs to, for archives whose index names only a tag
   * (org.opencontainers.image.ref.name, as e2e/image/build.ts writes): e.g. docker.io/library/outrigger.
   */
  readonly repository?: string;
}

export interface KubeletNode {
  /** The data-plane node the kubelet runs in (netns, kube-proxy, CoreDNS, exec()). */
  readonly node: Node;
  readonly nodeName: string;
  readonly netns: string;
  /** containerd's sandbox image (built by e2e/scripts/build-data-plane.sh pause-image). */
  readonly pauseImage: string;
  /** This node's pod range (the bridge's subnet). */
  readonly podCidr: string;
  /** Milliseconds each start-up phase took, in order. */
  readonly startupMs: Readonly<Record<string, number>>;
  /** containerd's socket (for `ctr --address`). */
  readonly containerdSocket: string;
  /** The cgroup (in every hierarchy) under which kubelet puts the pods. */
  readonly cgroupRoot: string;
  readonly dir: string;
  /** Imports an OCI archive into containerd's k8s.io namespace; resolves with the image names. */
  importImage(image: ImageArchive): string[];
  /** ctr against this node's containerd, in its k8s.io namespace; throws on failure. */
  ctr(args: readonly string[]): string;
  /**
   * The host pids of a container's processes (containerStatuses[].containerID, with or without
   * its containerd:// prefix), from its cgroup: for killing a container's process as a crash would.
   */
  containerProcesses(containerId: string): number[];
  /** Processes started for this node (kubelet, containerd, kube-scheduler, and the Node's). */
  pids(): number[];
  /** Stops everything and removes everything the node left on the machine. */
  stop(): Promise<void>;
}

/** The name an OCI archive's index gives its image (io.containerd.image.name), as ctr imports it. */
function imageName(archive: string): string {
  const r = spawnSync('tar', ['-xOf', archive, './index.json'], { encoding: 'utf8' });
  const index = JSON.parse(r.status === 0 ? r.stdout : '{}') as {
    manifests?: { annotations?: Record<string, string> }[];
  };
  const name = index.manifests?.[0]?.annotations?.['io.containerd.image.name'];
  if (name === undefined) throw new Error(`${archive} names no image (io.containerd.image.name)`);
  return name;
}

/** Why a real node cannot run here, or undefined when it can. */
export function kubeletNodeUnavailable(): string | undefined {
  const why = dataPlaneUnavailable();
  if (why !== undefined)
    return `${why} (a real node runs as root, with the packages bash e2e/scripts/setup-system.sh installs)`;
  const r = spawnSync('bash', [packagesScript, '--check'], { encoding: 'utf8' });
  if (r.status !== 0) return r.stderr.trim();
  if (!existsSync('/sys/fs/cgroup/memory') && !existsSync('/sys/fs/cgroup/cgroup.controllers'))
    return 'no cgroup file system at /sys/fs/cgroup';
  return undefined;
}

/** The kernel tunables kubelet's container manager sets when they differ (and their values). */
const kubeletTunables: Readonly<Record<string, string>> = {
  'vm/overcommit_memory': '1',
  'vm/panic_on_oom': '0',
  'kernel/panic': '10',
  'kernel/panic_on_oops': '1',
  'kernel/keys/root_maxkeys': '1000000',
  'kernel/keys/root_maxbytes': '25000000',
};

/** Host directories the node's mount namespace replaces with its own (target: source under dir). */
const hostPaths: Readonly<Record<string, string>> = {
  '/run': 'host/run',
  '/var/lib': 'host/var-lib',
  '/var/log': 'host/var-log',
};

function run(cmd: string, args: readonly string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim()}`);
}

/** The cgroup v1 hierarchies kubelet's cgroupfs driver uses (one directory per mounted controller). */
function cgroupHierarchies(): string[] {
  return readdirSync('/sys/fs/cgroup', { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join('/sys/fs/cgroup', d.name, 'cgroup.procs')))
    .map((d) => join('/sys/fs/cgroup', d.name));
}

/**
 * Makes the node's own cgroup root in every hierarchy, so that its pods' cgroups are its own to
 * remove (the default root, kubepods, would be shared with any other node on this machine).
 */
function makeCgroupRoot(name: string): void {
  for (const h of cgroupHierarchies()) {
    const d = join(h, name);
    mkdirSync(d, { recursive: true });
    // A new cpuset cgroup starts with no CPUs and no memory nodes: nothing could run in it.
    if (existsSync(join(h, 'cpuset.cpus'))) {
      for (const f of ['cpuset.cpus', 'cpuset.mems'])
        writeFileSync(join(d, f), readFileSync(join(h, f), 'utf8'));
    }
  }
}

/**
 * Starts a real node: the data-plane node (network namespace, kube-proxy, CoreDNS), containerd and
 * kubelet inside its namespace, kube-scheduler and kube-controller-manager on the host's loopback,
 * and points the `kubernetes` Service at the node's API forwarder so pods reach the API server.
 * The cluster must run the ServiceAccount admission plugin (startCluster's serviceAccountAdmission).
 */
export async function startKubeletNode(
  cluster: Cluster,
  opts: KubeletNodeOptions,
): Promise<KubeletNode> {
  const why = kubeletNodeUnavailable();
  if (why !== undefined) throw new Error(`a real node cannot run here: ${why}`);
  const kubeletBin = ensureDataPlaneBinary('kubelet');
  const schedulerBin = ensureDataPlaneBinary('kube-scheduler');
  const pauseArchive = ensureDataPlaneBinary('pause-image');
  const pauseImage = imageName(pauseArchive);
  const dir = opts.dir;
  mkdirSync(dir, { recursive: true });
  const nodeName = opts.nodeName ?? 'node-a';

  const startup: Record<string, number> = {};
  let last = Date.now();
  const mark = (phase: string): void => {
    startup[phase] = Date.now() - last;
    last = Date.now();
  };
  const node = await startNode(cluster, {
    dir: join(dir, 'net'),
    nodeName,
    ...(opts.persistent !== undefined && { persistent: opts.persistent }),
  });
  mark('network namespace, kube-proxy, CoreDNS');
  const n = Number(node.hostIp.split('.')[2]);
  const podCidr = `10.248.${String(n)}.0/24`;
  const bridgeIp = `10.248.${String(n)}.1`;
  const cgroupRoot = node.netns;
  const socket = join(dir, 'containerd', 'c.sock');
  const cniNetwork = `outrigger-${String(n)}-${String(process.pid)}`;
  const podRoute = `${podCidr} via ${node.ip}`;
  writeFileSync(
    join(dir, 'node.env'),
    [
      `NETNS=${node.netns}`,
      `CGROUP_ROOT=${cgroupRoot}`,
      `SOCKET=${socket}`,
      `POD_ROUTE='${podRoute}'`,
      '',
    ].join('\n'),
  );
  const group = new ProcessGroup(join(dir, 'run'));
  const cleanup = (keepDir: boolean): void => {
    spawnSync('bash', [cleanupScript, dir, ...(keepDir ? ['--keep-dir'] : [])], {
      stdio: 'ignore',
    });
  };
  // Runs node-cleanup.sh when this process dies without stop(), SIGKILL included.
  const watchdog = opts.persistent
    ? undefined
    : spawn(
        'sh',
        ['-c', 'cat >/dev/null 2>&1; bash "$1" "$2"', 'outrigger-node-reaper', cleanupScript, dir],
        { detached: true, stdio: ['pipe', 'ignore', 'ignore'] },
      );
  watchdog?.unref();
  (watchdog?.stdin as unknown as { unref?: () => void } | null)?.unref?.();

  const stop = async (): Promise<void> => {
    await group.stopAll({ keepDir: true });
    cleanup(true);
    await node.stop();
    cleanup(false);
    watchdog?.stdin.end();
  };

  const ctr = (args: readonly string[]): string => {
    const r = spawnSync('ctr', ['--address', socket, '--namespace', 'k8s.io', ...args], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`ctr ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const importImage = (image: ImageArchive): string[] => {
    const out = ctr([
      'images',
      'import',
      ...(image.repository !== undefined ? ['--base-name', image.repository] : []),
      image.archive,
    ]);
    // "unpacking <name> (sha256:...)...done" per image.
    return [...out.matchAll(/unpacking (\S+) \(sha256:/g)].map((m) => m[1] ?? '');
  };

  try {
    // Pods reach the host (the API forwarder) and the backends through the node, which routes.
    ip(['route', 'add', 'blackhole', podRange], true);
    ip(['route', 'add', ...podRoute.split(' ')]);
    ip(['netns', 'exec', node.netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    makeCgroupRoot(cgroupRoot);

    const cniConfDir = join(dir, 'cni', 'net.d');
    mkdirSync(cniConfDir, { recursive: true });
    writeFileSync(
      join(cniConfDir, '10-bridge.conflist'),
      JSON.stringify(
        {
          cniVersion: '1.0.0',
          name: cniNetwork,
          plugins: [
            {
              type: 'bridge',
              bridge: 'cni0',
              isGateway: true,
              // No masquerade: pods keep their address up to the host, which routes it back.
              ipMasq: false,
              hairpinMode: true,
              ipam: {
                type: 'host-local',
                ranges: [[{ subnet: podCidr, gateway: bridgeIp }]],
                routes: [{ dst: '0.0.0.0/0' }],
                dataDir: join(dir, 'cni', 'ipam'),
              },
            },
          ],
        },
        null,
        2,
      ),
    );
    const ctrDir = join(dir, 'containerd');
    mkdirSync(ctrDir, { recursive: true });
    const config = join(ctrDir, 'config.toml');
    writeFileSync(
      config,
      [
        'version = 2',
        `root = "${join(ctrDir, 'root')}"`,
        `state = "${join(ctrDir, 'state')}"`,
        '[grpc]',
        `  address = "${socket}"`,
        '[plugins."io.containerd.internal.v1.opt"]',
        `  path = "${join(ctrDir, 'opt')}"`,
        '[plugins."io.containerd.grpc.v1.cri"]',
        `  sandbox_image = "${pauseImage}"`,
        // runc would set the sandbox's oom_score_adj to -998, which needs CAP_SYS_RESOURCE.
        '  restrict_oom_score_adj = true',
        // The pods' network namespace files under the state directory, not /var/run/netns.
        '  netns_mounts_under_state_dir = true',
        '  enable_cdi = false',
        '[plugins."io.containerd.grpc.v1.cri".containerd]',
        '  snapshotter = "overlayfs"',
        '  default_runtime_name = "runc"',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
        '  runtime_type = "io.containerd.runc.v2"',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
        '  SystemdCgroup = false',
        '[plugins."io.containerd.grpc.v1.cri".cni]',
        '  bin_dir = "/usr/lib/cni"',
        `  conf_dir = "${cniConfDir}"`,
        '  max_conf_num = 1',
        '',
      ].join('\n'),
    );

    // containerd (with its shims and the CNI plugins) and kubelet share one mount namespace of
    // their own: containerd must see the volumes kubelet mounts, and none of their mounts (pods'
    // root file systems, volumes, network namespace files) is ever on the host's table; they all
    // go with the namespace. (`ip netns exec` would give each program a namespace of its own.)
    const mntns = join(dir, 'mntns');
    writeFileSync(mntns, '');
    run('unshare', [`--mount=${mntns}`, '--propagation', 'private', 'true']);
    // kubelet writes the kernel tunables it wants (vm.overcommit_memory=1, kernel.panic_on_oops=1,
    // ...) host-wide unless they already read so: in its namespace they do, from files mounted
    // over them, and the host's stay as they are.
    mkdirSync(join(dir, 'sysctl'), { recursive: true });
    for (const [key, value] of Object.entries(kubeletTunables)) {
      const file = join(dir, 'sysctl', key.replaceAll('/', '.'));
      writeFileSync(file, `${value}\n`);
      run('nsenter', [`--mount=${mntns}`, 'mount', '--bind', '-o', 'ro', file, `/proc/sys/${key}`]);
    }
    // Paths that containerd 1.6, libcni and kubelet use whatever they are told (the shims' sockets
    // in /run/containerd/s, libcni's result cache in /var/lib/cni/results, kubelet's device
    // plugin directory in /var/lib/kubelet and its log links in /var/log/containers) are the
    // node's own directories inside its namespace; nothing in them needs the host's files.
    for (const [target, source] of Object.entries(hostPaths)) {
      mkdirSync(join(dir, source), { recursive: true });
      run('nsenter', [`--mount=${mntns}`, 'mount', '--bind', join(dir, source), target]);
    }
    const inNode = (name: string, bin: string, args: readonly string[]): ManagedProcess =>
      group.start(
        name,
        'nsenter',
        [`--net=/var/run/netns/${node.netns}`, `--mount=${mntns}`, bin, ...args],
        { PATH: `/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ''}` },
      );

    const containerd = inNode('containerd', 'containerd', ['--config', config]);
    await until(
      'containerd answers',
      containerd,
      () => spawnSync('ctr', ['--address', socket, 'version'], { stdio: 'ignore' }).status === 0,
      30_000,
    );
    importImage({ archive: pauseArchive });
    mark('containerd');

    const kubeletDir = join(dir, 'kubelet');
    mkdirSync(kubeletDir, { recursive: true });
    const kubeletConfig = join(dir, 'kubelet-config.yaml');
    writeFileSync(
      kubeletConfig,
      JSON.stringify(
        {
          apiVersion: 'kubelet.config.k8s.io/v1beta1',
          kind: 'KubeletConfiguration',
          // This machine has cgroup v1 only (Kubernetes 1.35+ refuses it unless told).
          failCgroupV1: false,
          // containerd 1.6 cannot tell kubelet its cgroup driver (no RuntimeConfig).
          cgroupDriver: 'cgroupfs',
          cgroupRoot: `/${cgroupRoot}`,
          failSwapOn: false,
          containerRuntimeEndpoint: `unix://${socket}`,
          address: node.ip,
          healthzBindAddress: node.ip,
          healthzPort: 10248,
          readOnlyPort: 0,
          authentication: {
            anonymous: { enabled: false },
            webhook: { enabled: false },
            x509: { clientCAFile: join(cluster.dir ?? dir, 'ca.crt') },
          },
          authorization: { mode: 'AlwaysAllow' },
          clusterDomain: 'cluster.local',
          ...(node.dnsServer !== undefined && { clusterDNS: [node.dnsServer] }),
          // The host's resolv.conf names the host's resolvers, which pods must not use.
          resolvConf: '',
          podLogsDir: join(dir, 'pod-logs'),
          // A busy shared machine is no reason to evict a test's pods or its images.
          evictionHard: {
            'memory.available': '50Mi',
            'nodefs.available': '1%',
            'imagefs.available': '1%',
            'nodefs.inodesFree': '1%',
          },
          imageGCHighThresholdPercent: 100,
          imageGCLowThresholdPercent: 99,
          nodeStatusUpdateFrequency: '5s',
          syncFrequency: '10s',
          serializeImagePulls: false,
        },
        null,
        2,
      ),
    );
    const kubelet = inNode('kubelet', kubeletBin, [
      `--config=${kubeletConfig}`,
      `--kubeconfig=${node.kubeconfig}`,
      `--root-dir=${kubeletDir}`,
      `--cert-dir=${join(kubeletDir, 'pki')}`,
      `--hostname-override=${nodeName}`,
      `--node-ip=${node.ip}`,
      '--v=2',
    ]);
    // kube-scheduler on the host's loopback, like the rest of the control plane.
    const scheduler = group.start('kube-scheduler', schedulerBin, [
      `--kubeconfig=${cluster.kubeconfigPath}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      '--v=1',
    ]);
    const controllers =
      (opts.controllerManager ?? true)
        ? cluster.startControllerManager(nodeControllers)
        : Promise.resolve(false);
    // Awaited below; a failure meanwhile must not count as unhandled.
    controllers.catch(() => undefined);
    // While kubelet starts (the images are not needed before the first pod).
    for (const image of opts.images ?? []) importImage(image);
    mark('images');
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await until(
      `node ${nodeName} is Ready`,
      kubelet,
      async () => {
        try {
          const n = await core.readNode({ name: nodeName });
          return (
            n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false
          );
        } catch {
          return false;
        }
      },
      90_000,
    );
    mark('kubelet');
    await controllers;
    await publishApiServer(cluster, node);
    if (opts.controllerManager ?? true)
      await until(
        `node ${nodeName} to lose its not-ready taint`,
        kubelet,
        async () => {
          const n = await core.readNode({ name: nodeName });
          return !(n.spec?.taints ?? []).some((t) => t.key === 'node.kubernetes.io/not-ready');
        },
        60_000,
      );
    if (scheduler.hasExited())
      throw new Error(`kube-scheduler exited:\n${tail(scheduler.logPath, 40)}`);
    mark('schedulable');

    return {
      node,
      nodeName,
      netns: node.netns,
      podCidr,
      pauseImage,
      startupMs: startup,
      containerdSocket: socket,
      cgroupRoot,
      dir,
      importImage,
      ctr,
      containerProcesses: (containerId) => {
        const id = containerId.replace(/^containerd:\/\//, '');
        // kubelet's cgroupfs layout: <root>/kubepods[/<qos>]/pod<uid>/<container id>.
        const found = spawnSync(
          'find',
          [join('/sys/fs/cgroup/pids', cgroupRoot), '-type', 'd', '-name', id],
          { encoding: 'utf8' },
        ).stdout.trim();
        if (found === '') return [];
        return readFileSync(join(found.split('\n')[0] ?? '', 'cgroup.procs'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map(Number);
      },
      pids: () => [kubelet.pid, containerd.pid, scheduler.pid, ...node.pids()],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Removes a persistent real node recorded under `dir` (npm run cluster:down). */
export function removeRecordedKubeletNode(dir: string): boolean {
  if (!existsSync(join(dir, 'node.env'))) return false;
  spawnSync('bash', [cleanupScript, dir], { stdio: 'ignore' });
  return true;
}
