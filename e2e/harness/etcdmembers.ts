// A real etcd cluster outside Kubernetes: one member per address of a backend network namespace,
// all formed into one cluster, with client URLs on :2379 (where etcd also serves /health).
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ensureBinaries } from './binaries.ts';
import type { BackendNetwork } from './netns.ts';
import type { ManagedProcess } from './processes.ts';
import { tail } from './processes.ts';

export interface EtcdMember {
  readonly name: string;
  readonly ip: string;
}

export interface EtcdMembers {
  readonly members: readonly EtcdMember[];
  /** SIGKILL: the member's host dies with no goodbye. */
  kill(i: number): Promise<void>;
  /** Starts a killed member again on its data directory; resolves once it reports healthy. */
  restart(i: number): Promise<void>;
  stop(): Promise<void>;
}

async function healthy(ip: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${ip}:2379/health`, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

export async function startEtcdMembers(
  net: BackendNetwork,
  dir: string,
  names: readonly string[],
): Promise<EtcdMembers> {
  const etcd = ensureBinaries().etcd;
  const members = names.map((name, i) => {
    const ip = net.ipv4[i];
    if (ip === undefined) throw new Error(`the backend network has no address ${String(i)}`);
    return { name, ip };
  });
  const initialCluster = members.map((m) => `${m.name}=http://${m.ip}:2380`).join(',');
  const procs: (ManagedProcess | undefined)[] = [];
  const start = (i: number): ManagedProcess => {
    const m = members[i];
    if (m === undefined) throw new Error(`no member ${String(i)}`);
    return net.run(`etcd-${m.name}`, etcd, [
      `--name=${m.name}`,
      `--data-dir=${join(dir, `etcd-${m.name}`)}`,
      `--listen-client-urls=http://${m.ip}:2379`,
      `--advertise-client-urls=http://${m.ip}:2379`,
      `--listen-peer-urls=http://${m.ip}:2380`,
      `--initial-advertise-peer-urls=http://${m.ip}:2380`,
      `--initial-cluster=${initialCluster}`,
      '--initial-cluster-state=new',
      '--initial-cluster-token=outrigger-e2e',
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
  };
  const waitHealthy = async (i: number): Promise<void> => {
    const m = members[i];
    const p = procs[i];
    if (m === undefined || p === undefined) throw new Error(`no member ${String(i)}`);
    const deadline = Date.now() + 30_000;
    while (!(await healthy(m.ip))) {
      if (p.hasExited() || Date.now() > deadline)
        throw new Error(`etcd member ${m.name} did not become healthy:\n${tail(p.logPath)}`);
      await delay(100);
    }
  };
  for (let i = 0; i < members.length; i++) procs[i] = start(i);
  for (let i = 0; i < members.length; i++) await waitHealthy(i);
  return {
    members,
    async kill(i) {
      const p = procs[i];
      if (p !== undefined) await net.stopProcess(p, 'SIGKILL');
      procs[i] = undefined;
    },
    async restart(i) {
      procs[i] = start(i);
      await waitHealthy(i);
    },
    async stop() {
      for (const p of procs) if (p !== undefined) await net.stopProcess(p);
    },
  };
}
