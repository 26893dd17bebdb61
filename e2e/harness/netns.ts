// Backends that live outside the "cluster": a network namespace per test file, joined to the host
// by a veth pair, holding addresses 10.250.<n>.10+ (and fd00:250:<n>::10+), with real servers
// listening inside it. Endpoints refuse loopback addresses, so this is how an ExternalBackend gets
// addresses the operator can actually probe without sending a packet anywhere but this machine.
//
// Network discipline: a blackhole route for 10.250.0.0/16 and fd00:250::/32 makes sure that once a
// namespace is gone, probes to its addresses die on this host instead of following the default route.
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import ipaddr from 'ipaddr.js';
import { ProcessGroup, type ManagedProcess } from './processes.ts';

const serverScript = fileURLToPath(new URL('../fixtures/backend-server.ts', import.meta.url));
const farmScript = fileURLToPath(new URL('../fixtures/backend-farm.ts', import.meta.url));

/** Runs `ip ARGS` (iproute2); throws with its message on failure unless `allowFailure`. */
export function ip(args: readonly string[], allowFailure = false): boolean {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0 && !allowFailure)
    throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.status === 0;
}

/** Why network namespaces cannot be made here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.env.OUTRIGGER_NO_NETNS === 'true') return 'OUTRIGGER_NO_NETNS=true';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (spawnSync('ip', ['netns', 'list']).status !== 0) return 'the `ip` command is not available';
  return undefined;
}

export interface Server {
  readonly ip: string;
  readonly port: number;
  /** The server's stdout: one "connection from …" line per connection. */
  readonly logPath: string;
  stop(): Promise<void>;
}

/** TCP backends in one process inside the namespace, switched on and off one by one. */
export interface Farm {
  /** Starts listening on ip:port; resolves once it accepts connections. */
  up(ip: string, port: number): Promise<void>;
  /** Stops listening and drops open connections: probes are refused from now on. */
  down(ip: string, port: number): Promise<void>;
  stop(): Promise<void>;
}

export interface BackendNetwork {
  readonly name: string;
  /** IPv4 addresses inside the namespace, in order. */
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
  /** Starts a server inside the namespace and waits until it accepts connections. */
  serve(
    ip: string,
    port: number,
    kind: 'tcp' | 'http' | 'silent',
    httpStatus?: number,
  ): Promise<Server>;
  /** One server on `port` of every address of the namespace (ip "::"), checked on the first. */
  serveAll(port: number, kind: 'tcp' | 'http' | 'silent'): Promise<Server>;
  /**
   * Takes the host's end of the veth pair down (true) or up again: the host can no longer reach any
   * address of the namespace (its connected route goes; the blackhole route answers instead).
   */
  cut(down: boolean): void;
  /** Starts a backend farm (e2e/fixtures/backend-farm.ts) in the namespace. */
  farm(): Farm;
  /** Starts any program inside the namespace (an etcd member, say), its output in a log file. */
  run(name: string, bin: string, args: readonly string[]): ManagedProcess;
  /**
   * Counts new TCP connections (SYNs) that arrive in the namespace for ip:port from `fromCidr`,
   * with an nftables counter: whether anyone still sends connections to a dead server. read()
   * returns the count so far.
   */
  countConnections(ip: string, port: number, fromCidr: string): { read(): number };
  /** Stops a program started with run(): SIGTERM, or SIGKILL for a crash. */
  stopProcess(proc: ManagedProcess, signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /**
   * `count` more IPv6 addresses that the namespace answers on without configuring each one: a
   * /64 routed to it and delivered locally there ("AnyIP"), so thousands cost two routes. Servers
   * and farm listeners may bind to any of them.
   */
  routed(count: number): string[];
  /** Stops every server, then removes the namespace and its veth pair. */
  remove(): Promise<void>;
}

/**
 * Whether the host already routes `<prefix>.<n>.0/24` or any part of it, in any routing table
 * (another run's namespace, an address of its own): such a subnet is not ours to take.
 */
export function subnetInUse(n: number, prefix = '10.250'): boolean {
  const r = spawnSync(
    'ip',
    ['-4', 'route', 'show', 'table', 'all', 'root', `${prefix}.${String(n)}.0/24`],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`ip route show failed: ${r.stderr.trim()}`);
  return r.stdout.trim() !== '';
}

/**
 * What makes this caller's subnets differ from another's: the Jest test file (Jest's `expect`
 * state; e2e files all run in one process, so the pid alone gave every file the same subnet and
 * veth names, and a file could inherit what the previous one left on them) and the process.
 */
function origin(): string {
  const jestExpect = (globalThis as { expect?: { getState?: () => { testPath?: string } } }).expect;
  const where = jestExpect?.getState?.().testPath ?? process.argv[1] ?? '';
  return `${where}:${String(process.pid)}`;
}

/**
 * A free n (1..250) for `<prefix>.<n>.0/24` and every one of `alsoFree` (`<p>.<n>.0/24`): the
 * first tried is a hash of the test file, the process and the prefix, then the next ones in turn.
 */
export function chooseSubnet(prefix: string, alsoFree: readonly string[] = []): number {
  const start = createHash('sha256').update(`${origin()}:${prefix}`).digest().readUInt32LE(0);
  for (let i = 0; i < 250; i++) {
    const n = ((start + i) % 250) + 1;
    if (![prefix, ...alsoFree].some((p) => subnetInUse(n, p))) return n;
  }
  throw new Error(`every subnet ${prefix}.1-250.0/24 is in use on this host`);
}

async function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 500 });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      resolve(false);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/**
 * Creates namespace `outrigger-<pid>-<n>` with `count` IPv4 and IPv6 addresses. A watchdog removes
 * it if this process dies without calling remove().
 */
export function createBackendNetwork(
  dir: string,
  count = 4,
  opts: { readonly fromNodes?: boolean } = {},
): BackendNetwork {
  const why = netnsUnavailable();
  if (why !== undefined) throw new Error(why);
  const n = chooseSubnet('10.250');
  const name = `outrigger-${String(process.pid)}-${String(n)}`;
  const host = `orh${String(n)}x${String(process.pid % 10000)}`;
  const peer = `orn${String(n)}x${String(process.pid % 10000)}`;
  const v4 = (i: number) => `10.250.${String(n)}.${String(i)}`;
  const v6 = (i: number) => `fd00:250:${n.toString(16)}::${i.toString(16)}`;
  const ipv4 = Array.from({ length: count }, (_, i) => v4(10 + i));
  const ipv6 = Array.from({ length: count }, (_, i) => v6(10 + i));

  ip(['route', 'add', 'blackhole', '10.250.0.0/16'], true);
  ip(['-6', 'route', 'add', 'blackhole', 'fd00:250::/32'], true);
  ip(['netns', 'add', name]);
  // Removes the namespace (and with it the veth pair) when this process dies.
  const watchdog = spawn(
    'sh',
    ['-c', 'cat >/dev/null 2>&1; ip netns del "$1" 2>/dev/null', 'outrigger-netns-reaper', name],
    {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    },
  );
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();

  ip(['link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
  ip(['link', 'set', peer, 'netns', name]);
  ip(['addr', 'add', `${v4(1)}/24`, 'dev', host]);
  ip(['-6', 'addr', 'add', `${v6(1)}/64`, 'dev', host, 'nodad']);
  ip(['link', 'set', host, 'up']);
  // With fromNodes, node namespaces (dataplane.ts) reach the backends through the host: packets
  // arriving on this veth may be forwarded (per interface; net.ipv4.ip_forward is left alone).
  // Without it the namespace is exactly what the other suites have always had.
  if (opts.fromNodes === true) writeFileSync(`/proc/sys/net/ipv4/conf/${host}/forwarding`, '1');
  const inNs = (args: readonly string[]) => ip(['netns', 'exec', name, 'ip', ...args]);
  inNs(['link', 'set', 'lo', 'up']);
  for (const a of ipv4) inNs(['addr', 'add', `${a}/24`, 'dev', peer]);
  for (const a of ipv6) inNs(['-6', 'addr', 'add', `${a}/64`, 'dev', peer, 'nodad']);
  inNs(['link', 'set', peer, 'up']);
  // Replies to the node namespaces of e2e/harness/dataplane.ts, which reach backends through the
  // host (their only other neighbour is the host itself).
  if (opts.fromNodes === true) {
    inNs(['route', 'add', '10.249.0.0/16', 'via', v4(1)]);
    // And to the pods of real nodes (e2e/harness/node.ts), which keep their own addresses.
    inNs(['route', 'add', '10.248.0.0/16', 'via', v4(1)]);
  }

  let routedUp = false;
  const routedPrefix = `fd00:250:${n.toString(16)}:1::`;
  const group = new ProcessGroup(join(dir, `netns-${String(n)}`));
  group.reapOnExit();
  const servers = new Set<ManagedProcess>();
  const farmsRunning = new Set<{
    child: ChildProcessByStdio<Writable, Readable, null>;
    exited: Promise<void>;
  }>();
  return {
    name,
    ipv4,
    ipv6,
    async serveAll(port, kind) {
      return this.serve('::', port, kind);
    },
    async serve(addr, port, kind, httpStatus = 200) {
      const proc = group.start(`${kind}-${addr.replaceAll(':', '_')}-${String(port)}`, 'ip', [
        'netns',
        'exec',
        name,
        process.execPath,
        serverScript,
        addr,
        String(port),
        kind,
        String(httpStatus),
      ]);
      servers.add(proc);
      const deadline = Date.now() + 15_000;
      const probeAt = addr === '::' ? (ipv4[0] ?? '') : addr;
      while (!(await accepts(probeAt, port))) {
        if (proc.hasExited() || Date.now() > deadline)
          throw new Error(`backend server ${addr}:${String(port)} did not start`);
        await delay(50);
      }
      return {
        ip: addr,
        port,
        logPath: proc.logPath,
        stop: async () => {
          servers.delete(proc);
          await group.stop(proc);
        },
      };
    },
    cut(down) {
      ip(['link', 'set', host, down ? 'down' : 'up']);
      if (!down) {
        // Link-down removed the connected routes and the IPv6 address's route; put them back.
        ip(['addr', 'replace', `${v4(1)}/24`, 'dev', host]);
        ip(['-6', 'addr', 'replace', `${v6(1)}/64`, 'dev', host, 'nodad']);
        if (routedUp)
          ip(['-6', 'route', 'replace', `${routedPrefix}/64`, 'via', v6(10), 'dev', host]);
      }
    },
    routed(count) {
      const prefix = routedPrefix;
      if (!routedUp) {
        inNs(['-6', 'route', 'add', 'local', `${prefix}/64`, 'dev', 'lo']);
        ip(['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv6.ip_nonlocal_bind=1']);
        ip(['-6', 'route', 'add', `${prefix}/64`, 'via', v6(10), 'dev', host]);
        routedUp = true;
      }
      // Canonical (RFC 5952) text, as the CRD demands: fd00:250:1:1::1, ::1:0 past 65535.
      return Array.from({ length: count }, (_, i) =>
        ipaddr.IPv6.parse(
          `${prefix}${((i + 1) >>> 16).toString(16)}:${((i + 1) & 0xffff).toString(16)}`,
        ).toRFC5952String(),
      );
    },
    run(procName, bin, args) {
      return group.start(procName, 'ip', ['netns', 'exec', name, bin, ...args]);
    },
    countConnections(addr, port, fromCidr) {
      const nft = (...args: string[]) => {
        const r = spawnSync('ip', ['netns', 'exec', name, 'nft', ...args], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`nft ${args.join(' ')}: ${r.stderr.trim()}`);
        return r.stdout;
      };
      const counter = `c_${addr.replaceAll(/[.:]/g, '_')}_${String(port)}`;
      nft('add', 'table', 'inet', 'outrigger_test');
      nft('add', 'counter', 'inet', 'outrigger_test', counter);
      nft(
        'add chain inet outrigger_test input { type filter hook input priority -10; policy accept; }',
      );
      nft(
        'add',
        'rule',
        'inet',
        'outrigger_test',
        'input',
        'ip',
        'saddr',
        fromCidr,
        'ip',
        'daddr',
        addr,
        'tcp',
        'dport',
        String(port),
        'tcp',
        'flags',
        '&',
        '(syn|ack)',
        '==',
        'syn',
        'counter',
        'name',
        counter,
      );
      return {
        read() {
          const out = nft('list', 'counter', 'inet', 'outrigger_test', counter);
          return Number(/packets (\d+)/.exec(out)?.[1] ?? 'NaN');
        },
      };
    },
    async stopProcess(proc, signal = 'SIGTERM') {
      if (signal === 'SIGKILL') await group.kill(proc);
      else await group.stop(proc);
    },
    farm() {
      // Its stdin is a pipe only this process holds: the farm exits when this process dies.
      const child = spawn('ip', ['netns', 'exec', name, process.execPath, farmScript], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const waiting = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
      const exited = new Promise<void>((resolve) =>
        child.once('exit', () => {
          resolve();
        }),
      );
      createInterface({ input: child.stdout }).on('line', (line) => {
        const m = /^(ok|error) (\w+ \S+ \d+)(?:: (.*))?$/.exec(line);
        const w = m ? waiting.get(m[2] ?? '') : undefined;
        if (m === null || w === undefined) return;
        waiting.delete(m[2] ?? '');
        if (m[1] === 'ok') w.resolve();
        else w.reject(new Error(`backend farm: ${line}`));
      });
      const send = (cmd: string): Promise<void> =>
        new Promise((resolve, reject) => {
          if (waiting.has(cmd)) {
            reject(new Error(`backend farm: "${cmd}" is already in flight`));
            return;
          }
          waiting.set(cmd, { resolve, reject });
          child.stdin.write(`${cmd}\n`);
        });
      const farms = { child, exited };
      farmsRunning.add(farms);
      return {
        up: (addr, port) => send(`up ${addr} ${String(port)}`),
        down: (addr, port) => send(`down ${addr} ${String(port)}`),
        stop: async () => {
          farmsRunning.delete(farms);
          child.stdin.end();
          await exited;
        },
      };
    },
    async remove() {
      for (const f of farmsRunning) f.child.stdin.end();
      await Promise.all([...farmsRunning].map((f) => f.exited));
      farmsRunning.clear();
      await group.stopAll();
      ip(['netns', 'del', name], true);
      watchdog.stdin.end();
    },
  };
}
