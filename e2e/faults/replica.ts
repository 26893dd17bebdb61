// One outrigger replica as a Deployment's pod would run it: behind its own fault-injecting API
// proxy (which records every request it makes, so its writes carry its identity and time), and
// restarted by a supervisor whenever it exits, as the kubelet would (restartPolicy: Always). Each
// process the supervisor starts is a generation; a write belongs to the generation that was alive
// when the proxy received it.
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { ApiProxy, ProxiedRequest } from '../harness/apiproxy.ts';
import { startOperator, type OperatorProcess } from '../harness/operator.ts';

interface Generation {
  readonly n: number;
  readonly proc: OperatorProcess;
  readonly startedAt: number;
  endedAt?: number;
}

/** A write that reached the API server (not a Lease, not an Event), with who made it. */
export interface Write {
  readonly who: string;
  readonly verb: string;
  readonly what: string;
  readonly from: number;
  readonly to: number;
}

export function isObjectWrite(r: ProxiedRequest): boolean {
  return (
    ['create', 'update', 'patch', 'delete', 'deletecollection'].includes(r.verb) &&
    r.resource !== 'leases' &&
    r.resource !== 'events' &&
    r.forwardedAt !== undefined
  );
}

export class Replica {
  readonly name: string;
  readonly proxy: ApiProxy;
  private readonly args: readonly string[];
  private readonly logDir: string;
  private readonly generations: Generation[] = [];
  private stopping = false;
  private loop: Promise<void> | undefined;

  constructor(name: string, proxy: ApiProxy, args: readonly string[], logDir: string) {
    this.name = name;
    this.proxy = proxy;
    this.args = args;
    this.logDir = logDir;
  }

  get restarts(): number {
    return Math.max(0, this.generations.length - 1);
  }

  get current(): OperatorProcess | undefined {
    const g = this.generations[this.generations.length - 1];
    return g?.endedAt === undefined ? g?.proc : undefined;
  }

  logPath(n = this.generations.length): string {
    return join(this.logDir, `${this.name}-${String(n)}.log`);
  }

  /** Starts the first process and the supervisor; resolves once the first process is ready. */
  async start(): Promise<void> {
    this.stopping = false;
    const first = await this.spawn(60_000);
    this.loop = this.supervise(first);
  }

  private async spawn(readyTimeoutMs: number): Promise<Generation> {
    const n = this.generations.length + 1;
    // Before the process exists: it may write before it reports ready.
    const startedAt = Date.now();
    const proc = await startOperator(this.proxy.kubeconfigPath, this.args, this.logPath(n), {
      installCrd: false,
      readyTimeoutMs,
    });
    const g: Generation = { n, proc, startedAt };
    this.generations.push(g);
    return g;
  }

  private async supervise(first: Generation): Promise<void> {
    let g = first;
    for (;;) {
      await g.proc.exited;
      g.endedAt = Date.now();
      if (this.stopping) return;
      // The kubelet's first restart comes after a short back-off.
      await delay(500);
      // stop() may have been called during the back-off.
      if (this.isStopping()) return;
      g = await this.spawn(0);
    }
  }

  private isStopping(): boolean {
    return this.stopping;
  }

  /** SIGKILL of the running process (the supervisor starts the next one). */
  async kill(): Promise<void> {
    await this.current?.kill();
  }

  signal(sig: 'SIGSTOP' | 'SIGCONT'): void {
    const pid = this.current?.pid;
    if (pid !== undefined) process.kill(pid, sig);
  }

  /** SIGTERM (a clean shutdown that releases the Lease) and no restart. */
  async stop(): Promise<void> {
    this.stopping = true;
    const p = this.current;
    if (p !== undefined) {
      process.kill(p.pid, 'SIGCONT');
      // A drain that hangs is a failure of its own (the process logs it); do not hang with it.
      await Promise.race([p.stop(), delay(10_000)]);
      await p.kill();
    }
    await this.loop;
  }

  /** Writes that reached the API server from request index `from` on, each with its generation. */
  writes(from = 0): Write[] {
    return this.proxy.requests
      .slice(from)
      .filter(isObjectWrite)
      .map((r) => {
        const g = this.generations.findLast((x) => x.startedAt <= r.at);
        return {
          who: `${this.name}#${String(g?.n ?? 0)}`,
          verb: r.verb,
          what: `${r.resource ?? ''}${r.subresource ? `/${r.subresource}` : ''} ${r.namespace ?? ''}/${r.name ?? ''}`,
          from: r.forwardedAt ?? r.at,
          to: r.endedAt ?? Number.POSITIVE_INFINITY,
        };
      });
  }
}

/**
 * Checks that at no instant did two processes write: ordered by when they reached the API server,
 * writes change hands only forwards (a process that handed over never writes again), and each
 * writer's last write had ended before the next writer's first one began.
 */
export function overlaps(writes: readonly Write[]): string[] {
  const sorted = [...writes].sort((a, b) => a.from - b.from);
  const problems: string[] = [];
  const retired = new Set<string>();
  const lastEnd = new Map<string, number>();
  let holder: string | undefined;
  for (const w of sorted) {
    if (holder !== undefined && w.who !== holder) {
      if (retired.has(w.who))
        problems.push(`${w.who} wrote again (${w.verb} ${w.what}) after handing over`);
      const end = lastEnd.get(holder) ?? 0;
      if (end > w.from)
        problems.push(
          `${holder}'s last write was still in flight ${String(end - w.from)} ms into ${w.who}'s first (${w.verb} ${w.what})`,
        );
      retired.add(holder);
    }
    holder = w.who;
    lastEnd.set(w.who, Math.max(lastEnd.get(w.who) ?? 0, w.to));
  }
  return problems;
}
