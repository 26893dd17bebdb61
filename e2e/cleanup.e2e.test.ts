// The harness must leave no process, port or directory behind: after a normal stop, and when the
// process that started the control plane is killed outright.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { CoreV1Api } from '@kubernetes/client-node';
import { startCluster } from './harness/controlplane.ts';
import { dataPlaneUnavailable, startNode } from './harness/dataplane.ts';
import { portIsFree } from './harness/ports.ts';
import { isAlive } from './harness/processes.ts';
import { waitFor } from './helpers.ts';

interface Footprint {
  dir: string | undefined;
  pids: number[];
  ports: readonly number[];
}

async function leftovers(f: Footprint): Promise<string[]> {
  const found: string[] = [];
  for (const pid of f.pids) if (isAlive(pid)) found.push(`process ${pid}`);
  for (const port of f.ports) if (!(await portIsFree(port))) found.push(`port ${port}`);
  if (f.dir !== undefined && existsSync(f.dir)) found.push(`directory ${f.dir}`);
  return found;
}

const local = process.env.USE_EXISTING_CLUSTER === 'true' ? describe.skip : describe;

local('control plane clean-up', () => {
  it('stop() ends every process, frees every port and removes the directory', async () => {
    const cluster = await startCluster({ controllers: ['endpoints-controller'] });
    const f: Footprint = { dir: cluster.dir, pids: cluster.pids(), ports: [...cluster.ports] };
    expect(f.pids).toHaveLength(3);
    expect(await leftovers(f)).toHaveLength(f.pids.length + f.ports.length + 1);
    await cluster.stop();
    expect(await leftovers(f)).toEqual([]);
  }, 180_000);

  (dataPlaneUnavailable() === undefined ? it : it.skip)(
    "a node's stop() ends kube-proxy, CoreDNS and the forwarder, removes its namespace, resolv.conf and Node, and leaves the host's own nftables alone",
    async () => {
      const cluster = await startCluster();
      const hostRules = () => spawnSync('nft', ['list', 'ruleset'], { encoding: 'utf8' }).stdout;
      const before = hostRules();
      const forwarding = () => readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
      const forwardingBefore = forwarding();
      try {
        const node = await startNode(cluster, { dir: `${cluster.dir ?? '/tmp'}/node` });
        const f: Footprint = { dir: undefined, pids: node.pids(), ports: [] };
        expect(f.pids).toHaveLength(3);
        expect(existsSync(`/etc/netns/${node.netns}/resolv.conf`)).toBe(true);
        // kube-proxy's rules live in the node's namespace, not on the host.
        expect(hostRules()).toBe(before);
        await node.stop();
        expect(await leftovers(f)).toEqual([]);
        expect(existsSync(`/var/run/netns/${node.netns}`)).toBe(false);
        expect(existsSync(`/etc/netns/${node.netns}`)).toBe(false);
        const nodes = await cluster.kubeConfig().makeApiClient(CoreV1Api).listNode();
        expect(nodes.items.map((n) => n.metadata?.name)).toEqual([]);
        expect(hostRules()).toBe(before);
        // Forwarding was switched on for the node's veth only, never host-wide.
        expect(forwarding()).toBe(forwardingBefore);
      } finally {
        await cluster.stop();
      }
    },
    180_000,
  );

  it('a watchdog cleans up when the process that started the control plane is SIGKILLed', async () => {
    const holder = spawn(
      process.execPath,
      [new URL('fixtures/hold-cluster.ts', import.meta.url).pathname],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: holder.stdout }).once('line', resolve);
      holder.once('exit', (code) => {
        reject(new Error(`hold-cluster exited with ${String(code)}`));
      });
    });
    const f = JSON.parse(line) as Footprint;
    expect(f.pids.every((p) => isAlive(p))).toBe(true);
    holder.kill('SIGKILL');
    const remaining = await waitFor(
      'the watchdog to clean up',
      async () => {
        const l = await leftovers(f);
        return l.length === 0 ? l : undefined;
      },
      20_000,
      200,
    );
    expect(remaining).toEqual([]);
  }, 180_000);
});
