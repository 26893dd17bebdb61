import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { ensureBinaries, type Binaries } from './binaries.ts';
import { generatePki, type Pki } from './pki.ts';
import { freePort } from './ports.ts';
import { ProcessGroup, tail, type ManagedProcess } from './processes.ts';

/** Service CIDRs of the local control plane (dual-stack); allocated addresses only, never routed. */
export const serviceClusterIpRange = '10.96.0.0/16,fd00:10:96::/112';

export interface ClusterOptions {
  /** Start kube-controller-manager with this `--controllers` list (e.g. ['endpoints-controller']). */
  readonly controllers?: readonly string[];
  /** Directory for data, certificates and logs; default: a new temp directory. */
  readonly dir?: string;
  /**
   * Keep the processes running after this process exits (for `npm run cluster:up`). By default a
   * watchdog stops everything when the process that started the cluster dies.
   */
  readonly persistent?: boolean;
  /**
   * Run the ServiceAccount admission plugin, which gives every Pod the projected token volume a
   * kubelet mounts (e2e/harness/node.ts). Off by default: without kube-controller-manager nobody
   * creates the `default` ServiceAccount it requires.
   */
  readonly serviceAccountAdmission?: boolean;
}

export interface Cluster {
  readonly kubeconfigPath: string;
  /** True for USE_EXISTING_CLUSTER=true: nothing was started, and stop() leaves the cluster alone. */
  readonly existing: boolean;
  /** Path of a kubectl binary of the control plane's version (or `kubectl` from PATH). */
  readonly kubectl: string;
  /** The temp directory, the pids and the ports this harness started; empty for existing clusters. */
  readonly dir: string | undefined;
  readonly ports: readonly number[];
  pids(): number[];
  /** Milliseconds from the first spawn to a ready API server. */
  readonly startupMs: number;
  kubeConfig(): KubeConfig;
  /**
   * Starts kube-controller-manager with only the given controllers (replacing a running one).
   * Returns false without doing anything on an existing cluster, which runs its own controllers.
   */
  /** Starts (or restarts) kube-controller-manager with these controllers and extra flags. */
  startControllerManager(
    controllers: readonly string[],
    extraArgs?: readonly string[],
  ): Promise<boolean>;
  stopControllerManager(): Promise<void>;
  /**
   * Stops kube-apiserver (SIGTERM, or SIGKILL: a crash with no graceful shutdown), waits `downMs`,
   * starts it again on the same port and waits until ready.
   */
  restartApiServer(downMs?: number, signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /**
   * Compacts etcd's history up to its current revision, as the API server's periodic compaction
   * does: from then on, a watch or list from an older resourceVersion gets 410 Gone (once the API
   * server's watch cache no longer holds it). Resolves with the compacted revision.
   */
  compactEtcd(): Promise<number>;
  stop(): Promise<void>;
}

function loadFrom(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

function existingCluster(): Cluster {
  const path = process.env.KUBECONFIG;
  if (path === undefined || path === '' || path.includes(':')) {
    throw new Error('USE_EXISTING_CLUSTER=true needs KUBECONFIG set to a single kubeconfig file');
  }
  return {
    kubeconfigPath: path,
    existing: true,
    kubectl: 'kubectl',
    dir: undefined,
    ports: [],
    pids: () => [],
    startupMs: 0,
    kubeConfig: () => loadFrom(path),
    startControllerManager: () => Promise.resolve(false),
    stopControllerManager: () => Promise.resolve(),
    restartApiServer: () =>
      Promise.reject(new Error('cannot restart the API server of an existing cluster')),
    compactEtcd: () => Promise.reject(new Error('cannot compact the etcd of an existing cluster')),
    stop: () => Promise.resolve(),
  };
}

interface TlsClient {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
}

/** GET https://127.0.0.1:port/path; resolves with the status code, or 0 when nothing answers. */
function probe(port: number, path: string, tls: TlsClient | 'insecure'): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'GET',
        agent: false,
        timeout: 2000,
        ...(tls === 'insecure' ? { rejectUnauthorized: false } : tls),
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => {
      resolve(0);
    });
    req.end();
  });
}

async function waitUntil(
  what: string,
  proc: ManagedProcess,
  check: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.hasExited()) {
      throw new Error(`${proc.name} exited before ${what}; last log lines:\n${tail(proc.logPath)}`);
    }
    if (await check()) return;
    await delay(100);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}; last log lines of ${proc.name}:\n${tail(proc.logPath)}`,
  );
}

function kubeconfigFor(server: string, pki: Pki): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'outrigger-local',
          cluster: { server, 'certificate-authority-data': b64(pki.ca.certPem) },
        },
      ],
      users: [
        {
          name: 'outrigger-admin',
          user: {
            'client-certificate-data': b64(pki.admin.certPem),
            'client-key-data': b64(pki.admin.keyPem),
          },
        },
      ],
      contexts: [
        {
          name: 'outrigger-local',
          context: { cluster: 'outrigger-local', user: 'outrigger-admin' },
        },
      ],
      'current-context': 'outrigger-local',
    },
    null,
    2,
  );
}

/**
 * Starts etcd and kube-apiserver (and optionally kube-controller-manager) on free loopback ports,
 * or returns the existing cluster when USE_EXISTING_CLUSTER=true.
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  if (process.env.USE_EXISTING_CLUSTER === 'true') return existingCluster();

  const bins: Binaries = ensureBinaries();
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'outrigger-cp-'));
  const group = new ProcessGroup(dir);
  if (!opts.persistent) group.reapOnExit();
  const file = (name: string, content: string): string => {
    const p = join(dir, name);
    writeFileSync(p, content, { mode: 0o600 });
    return p;
  };
  const ports: number[] = [];
  let kcm: ManagedProcess | undefined;

  try {
    const pki = await generatePki();
    const caFile = file('ca.crt', pki.ca.certPem);
    const caKeyFile = file('ca.key', pki.ca.keyPem);
    const saKey = file('sa.key', pki.serviceAccount.privatePem);
    const saPub = file('sa.pub', pki.serviceAccount.publicPem);
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    ports.push(etcdPort, peerPort, apiPort);
    const started = Date.now();

    const etcd = group.start('etcd', bins.etcd, [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);

    const server = `https://127.0.0.1:${apiPort}`;
    const apiserverArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${file('apiserver.crt', pki.server.certPem)}`,
      `--tls-private-key-file=${file('apiserver.key', pki.server.keyPem)}`,
      `--client-ca-file=${caFile}`,
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      '--authorization-mode=RBAC',
      `--service-cluster-ip-range=${serviceClusterIpRange}`,
      '--endpoint-reconciler-type=none',
      // Without kube-controller-manager nobody creates the `default` ServiceAccount that this
      // admission plugin insists on, and tests create Pods in fresh namespaces.
      ...(opts.serviceAccountAdmission === true
        ? []
        : ['--disable-admission-plugins=ServiceAccount']),
      // As hardened clusters run it: setting blockOwnerDeletion needs update on the owner's
      // finalizers, so the chart's RBAC proof covers that rule too.
      '--enable-admission-plugins=OwnerReferencesPermissionEnforcement',
      '--allow-privileged=true',
      '--profiling=false',
      '--v=1',
    ];
    let apiserver = group.start('kube-apiserver', bins.kubeApiserver, apiserverArgs);

    const adminTls: TlsClient = {
      ca: pki.ca.certPem,
      cert: pki.admin.certPem,
      key: pki.admin.keyPem,
    };
    await waitUntil(
      'etcd is ready',
      etcd,
      async () => {
        try {
          const res = await fetch(`http://127.0.0.1:${etcdPort}/health`);
          return res.ok;
        } catch {
          return false;
        }
      },
      30_000,
    );
    const apiserverReady = (proc: ManagedProcess): Promise<void> =>
      waitUntil(
        'kube-apiserver is ready',
        proc,
        async () => (await probe(apiPort, '/readyz', adminTls)) === 200,
        90_000,
      );
    await apiserverReady(apiserver);
    const startupMs = Date.now() - started;

    const kubeconfigPath = file('kubeconfig', kubeconfigFor(server, pki));

    const stopControllerManager = async (): Promise<void> => {
      if (kcm !== undefined) await group.stop(kcm);
      kcm = undefined;
    };

    const startControllerManager = async (
      controllers: readonly string[],
      extraArgs: readonly string[] = [],
    ): Promise<boolean> => {
      if (bins.kubeControllerManager === undefined) {
        throw new Error(`no kube-controller-manager in ${bins.dir}`);
      }
      await stopControllerManager();
      const port = await freePort();
      ports.push(port);
      const proc = group.start('kube-controller-manager', bins.kubeControllerManager, [
        `--kubeconfig=${kubeconfigPath}`,
        `--controllers=${controllers.join(',')}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${port}`,
        `--cert-dir=${join(dir, 'kcm-certs')}`,
        `--service-account-private-key-file=${saKey}`,
        `--root-ca-file=${caFile}`,
        `--cluster-signing-cert-file=${caFile}`,
        `--cluster-signing-key-file=${caKeyFile}`,
        '--use-service-account-credentials=false',
        `--service-cluster-ip-range=${serviceClusterIpRange}`,
        '--v=1',
        ...extraArgs,
      ]);
      kcm = proc;
      await waitUntil(
        'kube-controller-manager is healthy',
        proc,
        async () => (await probe(port, '/healthz', 'insecure')) === 200,
        60_000,
      );
      return true;
    };

    if (opts.controllers !== undefined && opts.controllers.length > 0) {
      await startControllerManager(opts.controllers);
    }

    return {
      kubeconfigPath,
      existing: false,
      kubectl: bins.kubectl ?? 'kubectl',
      dir,
      ports,
      pids: () => [etcd.pid, apiserver.pid, ...(kcm ? [kcm.pid] : [])],
      startupMs,
      kubeConfig: () => loadFrom(kubeconfigPath),
      startControllerManager,
      stopControllerManager,
      restartApiServer: async (downMs = 2000, signal = 'SIGTERM') => {
        if (signal === 'SIGKILL') await group.kill(apiserver);
        else await group.stop(apiserver);
        await delay(downMs);
        apiserver = group.start('kube-apiserver', bins.kubeApiserver, apiserverArgs);
        await apiserverReady(apiserver);
      },
      compactEtcd: async () => {
        // etcd's JSON gateway for its v3 API (keys are base64).
        const call = async (path: string, body: unknown): Promise<unknown> => {
          const res = await fetch(`http://127.0.0.1:${String(etcdPort)}${path}`, {
            method: 'POST',
            body: JSON.stringify(body),
          });
          if (!res.ok) throw new Error(`etcd ${path}: ${String(res.status)} ${await res.text()}`);
          return res.json();
        };
        const range = (await call('/v3/kv/range', {
          key: Buffer.from('/').toString('base64'),
          count_only: true,
        })) as { header?: { revision?: string } };
        const revision = Number(range.header?.revision ?? 0);
        await call('/v3/kv/compaction', { revision: String(revision), physical: true });
        return revision;
      },
      stop: () => group.stopAll(),
    };
  } catch (err) {
    await group.stopAll({ keepDir: process.env.OUTRIGGER_KEEP_FAILED === 'true' });
    throw err;
  }
}
