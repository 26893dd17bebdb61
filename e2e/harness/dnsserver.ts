// A DNS server the test controls: CoreDNS on loopback answering from a hosts file that the test
// rewrites (its hosts plugin reloads it), with no forward plugin, so it answers only for the names
// the test gave it and never sends a query anywhere. Paused with SIGSTOP, it stops answering
// altogether, as a DNS outage would.
import { renameSync, writeFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ensureDataPlaneBinary } from './binaries.ts';
import { freePort } from './ports.ts';
import { ProcessGroup, tail } from './processes.ts';

export interface DnsServer {
  /** "127.0.0.1:<port>", for --dns-servers. */
  readonly address: string;
  /**
   * Makes `name` resolve to `ips` (nothing: the name is gone), then waits until the server
   * answers so. Resolves with when the file was written and when the server first answered the
   * new records (ms), so that a test can tell the server's reload from what follows it.
   */
  set(name: string, ips: readonly string[]): Promise<{ writtenAt: number; answeredAt: number }>;
  /** What the server answers for `name` now (A and AAAA, sorted). */
  answer(name: string): Promise<string[]>;
  /** Stops answering (SIGSTOP) and answers again (SIGCONT). */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

/** The records' TTL, in seconds. */
export const recordTtlSeconds = 1;

export async function startDnsServer(dir: string): Promise<DnsServer> {
  const bin = ensureDataPlaneBinary('coredns');
  const port = await freePort();
  const hostsPath = join(dir, 'dns-hosts');
  const records = new Map<string, readonly string[]>();
  const writeHosts = (): void => {
    const lines = [...records].flatMap(([name, ips]) => ips.map((ip) => `${ip} ${name}`));
    writeFileSync(`${hostsPath}.tmp`, `${lines.join('\n')}\n`);
    // A rename, so that the server never reads a half-written file.
    renameSync(`${hostsPath}.tmp`, hostsPath);
  };
  writeHosts();
  const corefile = join(dir, 'Corefile-dns');
  writeFileSync(
    corefile,
    [
      `.:${String(port)} {`,
      '  bind 127.0.0.1',
      '  errors',
      `  hosts ${hostsPath} {`,
      `    ttl ${String(recordTtlSeconds)}`,
      '    reload 100ms',
      '    no_reverse',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const procs = new ProcessGroup(join(dir, 'dns'));
  procs.reapOnExit();
  const proc = procs.start('coredns', bin, ['-conf', corefile]);
  const address = `127.0.0.1:${String(port)}`;
  const resolver = new Resolver({ timeout: 300, tries: 1 });
  resolver.setServers([address]);
  const family = async (name: string, six: boolean): Promise<string[]> => {
    try {
      return six ? await resolver.resolve6(name) : await resolver.resolve4(name);
    } catch {
      return [];
    }
  };
  const answer = async (name: string): Promise<string[]> =>
    [...(await family(name, false)), ...(await family(name, true))].sort();

  // Up once it answers for a name it knows.
  records.set('ready.dns.test', ['192.0.2.1']);
  writeHosts();
  for (let i = 0; ; i++) {
    if (proc.hasExited()) throw new Error(`CoreDNS exited:\n${tail(proc.logPath)}`);
    if ((await answer('ready.dns.test')).length > 0) break;
    if (i > 300) throw new Error(`CoreDNS does not answer:\n${tail(proc.logPath)}`);
    await delay(100);
  }
  return {
    address,
    answer,
    async set(name, ips) {
      records.set(name, [...ips]);
      if (ips.length === 0) records.delete(name);
      writeHosts();
      const writtenAt = Date.now();
      const want = [...ips].sort().join(',');
      for (let i = 0; ; i++) {
        if ((await answer(name)).join(',') === want) return { writtenAt, answeredAt: Date.now() };
        if (i > 200) throw new Error(`CoreDNS does not answer ${name} → ${want}`);
        await delay(20);
      }
    },
    pause() {
      process.kill(proc.pid, 'SIGSTOP');
    },
    resume() {
      process.kill(proc.pid, 'SIGCONT');
    },
    async stop() {
      try {
        process.kill(proc.pid, 'SIGCONT');
      } catch {
        // Already gone.
      }
      await procs.stopAll();
    },
  };
}
