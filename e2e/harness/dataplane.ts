// A node's data plane on the local control plane: a network namespace that plays a node, with a
// Node object of its own, kube-proxy (nftables mode) programming that namespace only, CoreDNS
// answering cluster.local for programs run inside it, and optionally an Ingress controller
// (Traefik) on the node's address. Programs started with node.exec() resolve through CoreDNS and
// reach ClusterIPs through kube-proxy's rules, as a pod on that node would.
//
// Network discipline: the node namespace gets routes for the Service range and the backend range
// only (no default route), the host gets blackhole routes for the node, Service and backend ranges,
// and every packet stays on this machine: loopback, the node namespace, the backends' namespaces.
//
//   host 127.0.0.1:<api>  <- tcp-forward on 10.249.<n>.1:<api>  <- node 10.249.<n>.2 (kube-proxy,
//   CoreDNS, Traefik, clients) -> ClusterIP 10.96.x.y, DNAT by kube-proxy -> 10.250.<m>.x (backends)
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, DiscoveryV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Cluster } from './controlplane.ts';
import { ensureDataPlaneBinary } from './binaries.ts';
import { chooseSubnet, ip } from './netns.ts';
import { ProcessGroup, until, type ManagedProcess } from './processes.ts';

const forwardScript = fileURLToPath(new URL('../fixtures/tcp-forward.ts', import.meta.url));

/** Where the node namespaces' addresses come from; a blackhole covers the whole range. */
export const nodeRange = '10.249.0.0/16';
/** The backends' range (e2e/harness/netns.ts). */
const backendRange = '10.250.0.0/16';

export interface ExecResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export interface NodeOptions {
  /** Directory for logs, configuration and the pid file (a ProcessGroup's directory). */
  readonly dir: string;
  /** The Node object's name; default node-a. */
  readonly nodeName?: string;
  /** Node labels, e.g. { 'topology.kubernetes.io/zone': 'zone-a' }. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Start CoreDNS in the namespace (default true). */
  readonly coreDns?: boolean;
  /** Start kube-proxy in the namespace (default true); without it the node only runs programs. */
  readonly kubeProxy?: boolean;
  /** Leave everything running when this process exits (npm run cluster:up -- --data-plane). */
  readonly persistent?: boolean;
}

export interface TraefikOptions {
  /** Extra static-configuration flags. */
  readonly args?: readonly string[];
}

export interface Node {
  readonly netns: string;
  readonly nodeName: string;
  /** The node's address (inside the namespace). */
  readonly ip: string;
  /** The host's end of the node's veth pair, where the API server forwarder listens. */
  readonly hostIp: string;
  /** The forwarder's port (the API server's own port on loopback). */
  readonly apiPort: number;
  /** The DNS server programs in the namespace use (CoreDNS), when started. */
  readonly dnsServer: string | undefined;
  /** A kubeconfig that works from inside the namespace (through the forwarder). */
  readonly kubeconfig: string;
  /** Cuts (true) or restores this node's route to the backends' namespaces, and only its own. */
  cutBackends(down: boolean): void;
  /** Runs a command inside the namespace and resolves when it exits (or is killed at the timeout). */
  exec(bin: string, args: readonly string[], timeoutMs?: number): Promise<ExecResult>;
  /**
   * The backends kube-proxy has programmed for a Service port, read from the namespace's nftables
   * ruleset ("ip:port" strings, sorted).
   */
  programmedEndpoints(namespace: string, service: string, portName?: string): string[];
  /**
   * Counts new TCP connections that programs in the namespace open to ip:port, before kube-proxy
   * rewrites the destination (e.g. the `kubernetes` Service's ClusterIP). read() returns the count.
   */
  countConnections(ip: string, port: number): { read(): number };
  /** Starts Traefik (Kubernetes Ingress provider) on the node's address; resolves with its URL. */
  startTraefik(opts?: TraefikOptions): Promise<{ url: string; process: ManagedProcess }>;
  /** The processes this node started (forwarder, kube-proxy, CoreDNS, Traefik). */
  pids(): number[];
  /** Stops every process, deletes the Node object and removes the namespace. */
  stop(): Promise<void>;
}

/** Why a node namespace cannot be made here, or undefined when it can. */
export function dataPlaneUnavailable(): string | undefined {
  if (process.env.OUTRIGGER_NO_NETNS === 'true') return 'OUTRIGGER_NO_NETNS=true';
  if (process.env.USE_EXISTING_CLUSTER === 'true')
    return 'the data plane runs beside the local control plane only';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (spawnSync('ip', ['netns', 'list']).status !== 0) return 'the `ip` command is not available';
  if (spawnSync('nft', ['--version']).status !== 0)
    return "kube-proxy's nftables mode needs the nft command (Debian package nftables)";
  return undefined;
}

async function httpOk(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

/** The API server's port, from the cluster's kubeconfig. */
function apiServer(kc: KubeConfig): URL {
  const server = kc.getCurrentCluster()?.server;
  if (server === undefined) throw new Error('the cluster kubeconfig names no server');
  return new URL(server);
}

/**
 * Makes a node namespace with kube-proxy (and CoreDNS) in it, a Node object for it, and the routes
 * and forwarder that connect it to the control plane and to the backends' namespaces.
 */
export async function startNode(cluster: Cluster, opts: NodeOptions): Promise<Node> {
  const why = dataPlaneUnavailable();
  if (why !== undefined) throw new Error(why);
  const kubeProxyBin = ensureDataPlaneBinary('kube-proxy');
  const coreDnsBin = (opts.coreDns ?? true) ? ensureDataPlaneBinary('coredns') : undefined;

  // A real node (e2e/harness/node.ts) puts its pods on 10.248.<n>.0/24, n the node's own.
  const n = chooseSubnet('10.249', ['10.248']);
  const netns = `outrigger-node-${String(process.pid)}-${String(n)}`;
  const hostVeth = `ornode${String(n)}h`;
  const nodeVeth = `ornode${String(n)}n`;
  const hostIp = `10.249.${String(n)}.1`;
  const nodeIp = `10.249.${String(n)}.2`;
  const nodeName = opts.nodeName ?? 'node-a';
  const group = new ProcessGroup(opts.dir);
  if (!opts.persistent) group.reapOnExit();
  const etcDir = join('/etc/netns', netns);

  ip(['route', 'add', 'blackhole', nodeRange], true);
  ip(['route', 'add', 'blackhole', backendRange], true);
  // ClusterIPs are virtual: a packet for one that kube-proxy did not rewrite dies here.
  ip(['route', 'add', 'blackhole', '10.96.0.0/16'], true);
  ip(['netns', 'add', netns]);
  // Removes the namespace, its resolv.conf and (with the namespace) the veth pair when this process
  // dies without stop(); a persistent node is removed by `npm run cluster:down` instead.
  writeFileSync(join(opts.dir, 'netns'), `${netns}\n`, { flag: 'a' });
  const watchdog = opts.persistent
    ? undefined
    : spawn(
        'sh',
        [
          '-c',
          'cat >/dev/null 2>&1; ip netns del "$1" 2>/dev/null; rm -rf "/etc/netns/$1"',
          'outrigger-node-reaper',
          netns,
        ],
        { detached: true, stdio: ['pipe', 'ignore', 'ignore'] },
      );
  watchdog?.unref();
  (watchdog?.stdin as unknown as { unref?: () => void } | null)?.unref?.();

  const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  let createdNode = false;
  const stopAll = async (): Promise<void> => {
    await group.stopAll({ keepDir: true });
    ip(['netns', 'del', netns], true);
    rmSync(etcDir, { recursive: true, force: true });
    watchdog?.stdin.end();
    if (createdNode) {
      try {
        await core.deleteNode({ name: nodeName });
      } catch {
        // Already gone, or the control plane is.
      }
    }
  };

  try {
    ip(['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', nodeVeth]);
    ip(['link', 'set', nodeVeth, 'netns', netns]);
    ip(['addr', 'add', `${hostIp}/24`, 'dev', hostVeth]);
    ip(['link', 'set', hostVeth, 'up']);
    const inNs = (args: readonly string[]) => ip(['netns', 'exec', netns, 'ip', ...args]);
    inNs(['link', 'set', 'lo', 'up']);
    inNs(['addr', 'add', `${nodeIp}/24`, 'dev', nodeVeth]);
    inNs(['link', 'set', nodeVeth, 'up']);
    // Only what a node of this cluster talks to: Services (rewritten by kube-proxy before they
    // leave) and the backends. No default route: nothing else is reachable from the node.
    inNs(['route', 'add', '10.96.0.0/16', 'via', hostIp]);
    inNs(['route', 'add', backendRange, 'via', hostIp]);
    // Other nodes' forwarders (the `kubernetes` Service may point at any of them).
    inNs(['route', 'add', nodeRange, 'via', hostIp]);
    // The host routes between the node and the backends' namespaces: forwarding is switched on
    // for packets arriving on this veth only (and on the backends' veths, in netns.ts), never
    // host-wide (net.ipv4.ip_forward stays as it is); it goes with the link.
    writeFileSync(`/proc/sys/net/ipv4/conf/${hostVeth}/forwarding`, '1');

    // The API server listens on the host's loopback; the node reaches it through a forwarder on its
    // gateway address, verifying the serving certificate by its DNS name.
    const api = apiServer(cluster.kubeConfig());
    const started: ManagedProcess[] = [];
    started.push(
      group.start('api-forward', process.execPath, [forwardScript, hostIp, api.port, api.port]),
    );
    const admin = cluster.kubeConfig();
    const cl = admin.getCurrentCluster();
    const user = admin.getCurrentUser();
    if (cl === null || user === null) throw new Error('the cluster kubeconfig has no cluster/user');
    const nodeKc = new KubeConfig();
    nodeKc.loadFromOptions({
      clusters: [
        {
          ...cl,
          server: `https://${hostIp}:${api.port}`,
          tlsServerName: 'kubernetes.default.svc',
        },
      ],
      users: [user],
      contexts: [{ name: 'node', cluster: cl.name, user: user.name }],
      currentContext: 'node',
    });
    const kubeconfig = join(opts.dir, `${nodeName}.kubeconfig`);
    writeFileSync(kubeconfig, nodeKc.exportConfig(), { mode: 0o600 });

    const created = await core.createNode({
      body: {
        metadata: {
          name: nodeName,
          labels: { 'kubernetes.io/hostname': nodeName, ...opts.labels },
        },
      },
    });
    createdNode = true;
    // kube-proxy waits up to 30 s for its Node to have addresses before it starts (a kubelet
    // would report them; a real node's kubelet reports the same one).
    await core.replaceNodeStatus({
      name: nodeName,
      body: {
        ...created,
        status: {
          ...created.status,
          addresses: [
            { type: 'InternalIP', address: nodeIp },
            { type: 'Hostname', address: nodeName },
          ],
        },
      },
    });

    const inNode = (name: string, bin: string, args: readonly string[], env = {}) => {
      const p = group.start(name, 'ip', ['netns', 'exec', netns, bin, ...args], {
        PATH: `/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ''}`,
        // Run from inside a pod (CI), Traefik would prefer in-cluster configuration to KUBECONFIG.
        KUBERNETES_SERVICE_HOST: undefined,
        KUBERNETES_SERVICE_PORT: undefined,
        ...env,
      });
      started.push(p);
      return p;
    };

    const kubeProxy =
      (opts.kubeProxy ?? true)
        ? inNode(`kube-proxy-${nodeName}`, kubeProxyBin, [
            `--kubeconfig=${kubeconfig}`,
            '--proxy-mode=nftables',
            `--hostname-override=${nodeName}`,
            `--bind-address=${nodeIp}`,
            `--nodeport-addresses=${nodeIp}/32`,
            `--healthz-bind-address=${nodeIp}:10256`,
            `--metrics-bind-address=${nodeIp}:10249`,
            // Leave the namespace's conntrack table size alone (it is the host's sysctl).
            '--conntrack-max-per-core=0',
            '--v=2',
          ])
        : undefined;
    if (kubeProxy !== undefined)
      await until(
        'kube-proxy is healthy',
        kubeProxy,
        () => httpOk(`http://${nodeIp}:10256/healthz`),
        60_000,
      );

    let dnsServer: string | undefined;
    if (coreDnsBin !== undefined) {
      const corefile = join(opts.dir, `Corefile-${nodeName}`);
      writeFileSync(
        corefile,
        [
          '.:53 {',
          `  bind ${nodeIp}`,
          '  errors',
          `  ready ${nodeIp}:8181`,
          // Only the cluster's own zone: no forward plugin, so no query leaves this machine.
          '  kubernetes cluster.local in-addr.arpa ip6.arpa {',
          `    kubeconfig ${kubeconfig}`,
          '    ttl 5',
          '  }',
          '}',
          '',
        ].join('\n'),
      );
      const coreDns = inNode(`coredns-${nodeName}`, coreDnsBin, ['-conf', corefile]);
      await until('CoreDNS is ready', coreDns, () => httpOk(`http://${nodeIp}:8181/ready`), 60_000);
      dnsServer = nodeIp;
      // `ip netns exec` bind-mounts /etc/netns/<name>/* over /etc: programs in the namespace
      // resolve through CoreDNS with a pod's search path.
      mkdirSync(etcDir, { recursive: true });
      writeFileSync(
        join(etcDir, 'resolv.conf'),
        `nameserver ${nodeIp}\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n`,
      );
    }

    return {
      netns,
      nodeName,
      ip: nodeIp,
      hostIp,
      apiPort: Number(api.port),
      dnsServer,
      kubeconfig,
      exec: (bin, args, timeoutMs = 30_000) =>
        new Promise((resolve) => {
          const started = Date.now();
          const child = spawn('ip', ['netns', 'exec', netns, bin, ...args], {
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let stdout = '';
          let stderr = '';
          child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
          child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
          const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
          child.once('close', (code) => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr, ms: Date.now() - started });
          });
        }),
      cutBackends(down) {
        // The node's own route to the backends' range, replaced by a blackhole: only this node
        // loses them; the host and every other namespace still reach them.
        ip(
          down
            ? ['netns', 'exec', netns, 'ip', 'route', 'replace', 'blackhole', backendRange]
            : ['netns', 'exec', netns, 'ip', 'route', 'replace', backendRange, 'via', hostIp],
        );
      },
      programmedEndpoints(namespace, service, portName) {
        const r = spawnSync(
          'ip',
          ['netns', 'exec', netns, 'nft', 'list', 'table', 'ip', 'kube-proxy'],
          {
            encoding: 'utf8',
          },
        );
        if (r.status !== 0) throw new Error(`nft list table ip kube-proxy: ${r.stderr.trim()}`);
        // kube-proxy's nftables mode (1.36) names a chain per Service port,
        // service-<hash>-<ns>/<svc>/<proto>/<port name>, whose dnat rule maps a random number to
        // each endpoint: "dnat ip to numgen random mod 2 map { 0 : 10.250.1.10 . 80 , 1 : ... }".
        const found = new Set<string>();
        let inChain = false;
        for (const line of r.stdout.split('\n')) {
          const head = /^\tchain service-[A-Z0-9]+-(\S+) \{$/.exec(line);
          if (head !== null) {
            const [ns, svc, , port] = (head[1] ?? '').split('/');
            inChain =
              ns === namespace && svc === service && (portName === undefined || port === portName);
          } else if (line === '\t}') {
            inChain = false;
          } else if (inChain) {
            for (const e of line.matchAll(/(\d+\.\d+\.\d+\.\d+) \. (\d+)/g))
              found.add(`${e[1] ?? ''}:${e[2] ?? ''}`);
          }
        }
        return [...found].sort();
      },
      countConnections(addr, port) {
        const nft = (...args: string[]): string => {
          const r = spawnSync('ip', ['netns', 'exec', netns, 'nft', ...args], { encoding: 'utf8' });
          if (r.status !== 0) throw new Error(`nft ${args.join(' ')}: ${r.stderr.trim()}`);
          return r.stdout;
        };
        const counter = `c_${addr.replaceAll('.', '_')}_${String(port)}`;
        nft('add', 'table', 'ip', 'outrigger_test');
        nft('add', 'counter', 'ip', 'outrigger_test', counter);
        // Before kube-proxy's DNAT (its nat output hook has priority -100).
        nft(
          'add chain ip outrigger_test output { type filter hook output priority -300; policy accept; }',
        );
        nft(
          `add rule ip outrigger_test output ip daddr ${addr} tcp dport ${String(port)} tcp flags & (syn|ack) == syn counter name ${counter}`,
        );
        return {
          read: () =>
            Number(
              /packets (\d+)/.exec(nft('list', 'counter', 'ip', 'outrigger_test', counter))?.[1] ??
                'NaN',
            ),
        };
      },
      async startTraefik(t = {}) {
        const bin = ensureDataPlaneBinary('traefik');
        const proc = inNode(
          `traefik-${nodeName}`,
          bin,
          [
            `--entryPoints.web.address=${nodeIp}:80`,
            `--entryPoints.traefik.address=${nodeIp}:9000`,
            '--ping=true',
            '--ping.entryPoint=traefik',
            '--providers.kubernetesingress=true',
            '--global.checkNewVersion=false',
            '--global.sendAnonymousUsage=false',
            '--log.level=INFO',
            ...(t.args ?? []),
          ],
          { KUBECONFIG: kubeconfig },
        );
        await until(
          'Traefik answers /ping',
          proc,
          () => httpOk(`http://${nodeIp}:9000/ping`),
          60_000,
        );
        return { url: `http://${nodeIp}`, process: proc };
      },
      pids: () => started.map((p) => p.pid),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Points the `kubernetes` Service (10.96.0.1:443, which in-cluster clients dial) at a node's API
 * forwarder, as the API server's endpoint reconciler would at its own address: kube-proxy then
 * sends in-cluster API traffic from every node to the API server.
 */
export async function publishApiServer(cluster: Cluster, via: Node): Promise<void> {
  await cluster
    .kubeConfig()
    .makeApiClient(DiscoveryV1Api)
    .createNamespacedEndpointSlice({
      namespace: 'default',
      body: {
        metadata: { name: 'kubernetes', labels: { 'kubernetes.io/service-name': 'kubernetes' } },
        addressType: 'IPv4',
        endpoints: [{ addresses: [via.hostIp], conditions: { ready: true } }],
        ports: [{ name: 'https', port: via.apiPort, protocol: 'TCP' }],
      },
    });
}

/** Removes the node namespaces a persistent data plane recorded in `dir` (npm run cluster:down). */
export function removeRecordedNodes(dir: string): number {
  let names: string[];
  try {
    names = readFileSync(join(dir, 'netns'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return 0;
  }
  for (const name of names) {
    ip(['netns', 'del', name], true);
    rmSync(join('/etc/netns', name), { recursive: true, force: true });
  }
  return names.length;
}
