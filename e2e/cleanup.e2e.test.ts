// The harness must leave no process, port, directory or nftables rule behind: after a normal stop,
// and when the process that started the control plane is killed outright.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { expect, it } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import { startCluster } from './harness/controlplane.ts';
import { dataPlaneUnavailable, startNode } from './harness/dataplane.ts';
import { portIsFree } from './harness/ports.ts';
import { ip } from './harness/netns.ts';
import { ruleset, rulesetChanges } from './harness/nftables.ts';
import { isAlive } from './harness/processes.ts';
import { waitFor } from './helpers.ts';
import { describeUnless, itUnless, localOnly } from './skips.ts';

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

const local = describeUnless(localOnly);

local('control plane clean-up', () => {
  it('stop() ends every process, frees every port and removes the directory', async () => {
    const cluster = await startCluster({ controllers: ['endpoints-controller'] });
    const f: Footprint = { dir: cluster.dir, pids: cluster.pids(), ports: [...cluster.ports] };
    expect(f.pids).toHaveLength(3);
    expect(await leftovers(f)).toHaveLength(f.pids.length + f.ports.length + 1);
    await cluster.stop();
    expect(await leftovers(f)).toEqual([]);
  }, 180_000);

  itUnless(dataPlaneUnavailable())(
    "a node's stop() ends kube-proxy, CoreDNS and the forwarder, removes its namespace, resolv.conf and Node, and leaves the host's own nftables alone",
    async () => {
      const cluster = await startCluster();
      const before = ruleset();
      const forwarding = () => readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
      const forwardingBefore = forwarding();
      try {
        const node = await startNode(cluster, { dir: `${cluster.dir ?? '/tmp'}/node` });
        const f: Footprint = { dir: undefined, pids: node.pids(), ports: [] };
        expect(f.pids).toHaveLength(3);
        expect(existsSync(`/etc/netns/${node.netns}/resolv.conf`)).toBe(true);
        // kube-proxy's rules live in the node's namespace, not on the host.
        expect(rulesetChanges(before, ruleset())).toEqual([]);
        await node.stop();
        expect(await leftovers(f)).toEqual([]);
        expect(existsSync(`/var/run/netns/${node.netns}`)).toBe(false);
        expect(existsSync(`/etc/netns/${node.netns}`)).toBe(false);
        const nodes = await cluster.kubeConfig().makeApiClient(CoreV1Api).listNode();
        expect(nodes.items.map((n) => n.metadata?.name)).toEqual([]);
        expect(rulesetChanges(before, ruleset())).toEqual([]);
        // Forwarding was switched on for the node's veth only, never host-wide.
        expect(forwarding()).toBe(forwardingBefore);
      } finally {
        await cluster.stop();
      }
    },
    180_000,
  );

  // The check above must still see a leak of ours while a host's own rules count packets: proved on
  // a throwaway namespace standing in for the host, with a foreign table whose counters move.
  itUnless(dataPlaneUnavailable())(
    'the nftables check ignores counters but catches a leaked table or rule',
    () => {
      const ns = `outrigger-nftcheck-${String(process.pid)}-${String(Date.now() % 100000)}`;
      const nft = (...args: string[]) => {
        const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', ...args], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`nft ${args.join(' ')}: ${r.stderr.trim()}`);
        return r.stdout;
      };
      ip(['netns', 'add', ns]);
      try {
        ip(['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
        nft('add table inet foreign');
        nft('add counter inet foreign hits');
        nft('add chain inet foreign out { type filter hook output priority 0; policy accept; }');
        nft('add rule inet foreign out counter name hits');
        nft('add rule inet foreign out counter');
        const before = ruleset(ns);
        const countersBefore = nft('list', 'ruleset');
        // A connection attempt to the namespace's own loopback (refused): packets the counters see.
        spawnSync('ip', [
          'netns',
          'exec',
          ns,
          process.execPath,
          '-e',
          "require('node:net').connect(9, '127.0.0.1').on('error', () => {})",
        ]);
        expect(nft('list', 'ruleset')).not.toBe(countersBefore);
        expect(rulesetChanges(before, ruleset(ns))).toEqual([]);

        nft('add table ip kube-proxy');
        expect(rulesetChanges(before, ruleset(ns))).toEqual(['+ table ip kube-proxy']);
        nft('delete table ip kube-proxy');
        nft('add rule inet foreign out ip daddr 10.250.1.10 counter');
        expect(rulesetChanges(before, ruleset(ns))).toEqual([
          '+ table inet foreign / chain out: ip daddr 10.250.1.10 counter',
        ]);
      } finally {
        ip(['netns', 'del', ns], true);
      }
    },
    30_000,
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
