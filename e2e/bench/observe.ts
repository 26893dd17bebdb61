// What the benchmark reads while it runs: a controller process's memory and CPU from /proc, the
// API server's request counters by verb, and a client-side watch of every Endpoints object that
// tells when the cluster has converged and how long each readiness change took to show.
import { readdirSync, readFileSync } from 'node:fs';
import { Watch, type KubeConfig, type V1Endpoints } from '@kubernetes/client-node';
import { annotationTriggerTime } from '../../src/endpoints/desired.ts';
import { apiServerMetrics } from './apiserver.ts';
import type { Workload } from './workload.ts';
import { podIP } from './workload.ts';

export interface ProcessSample {
  readonly rssMiB: number;
  readonly peakRssMiB: number;
  readonly cpuSeconds: number;
}

/** Memory and CPU of a process, from /proc (Linux clock ticks are 100 per second). */
export function sampleProcess(pid: number): ProcessSample {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  const kb = (field: string): number =>
    Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  const { utime, stime } = parseStat(readFileSync(`/proc/${String(pid)}/stat`, 'utf8'));
  const ticks = utime + stime;
  return { rssMiB: kb('VmRSS') / 1024, peakRssMiB: kb('VmHWM') / 1024, cpuSeconds: ticks / 100 };
}

/** CPU seconds of one process, split into user and system time and by thread. */
export interface ThreadCpu {
  readonly userSeconds: number;
  readonly systemSeconds: number;
  /** The thread that runs JavaScript (its id is the process's). */
  readonly mainSeconds: number;
  /** Every other thread by its name (V8's GC and compiler helpers, libuv's pool), summed. */
  readonly others: Readonly<Record<string, number>>;
}

/** The name and user/system ticks of one /proc stat line (the name may hold spaces and parens). */
export function parseStat(stat: string): { comm: string; utime: number; stime: number } {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
    utime: Number(fields[11]),
    stime: Number(fields[12]),
  };
}

/**
 * Where a process's CPU went, from /proc/<pid>/task/<tid>/stat. A thread that exited since an
 * earlier reading is missing from a later one, so differences are taken name by name.
 */
export function sampleThreads(pid: number): ThreadCpu {
  let user = 0;
  let system = 0;
  let main = 0;
  const others: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${String(pid)}/task`)) {
    let line: string;
    try {
      line = readFileSync(`/proc/${String(pid)}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // exited between the listing and the read
    }
    const t = parseStat(line);
    const seconds = (t.utime + t.stime) / 100;
    user += t.utime / 100;
    system += t.stime / 100;
    if (tid === String(pid)) main += seconds;
    else others[t.comm] = (others[t.comm] ?? 0) + seconds;
  }
  return { userSeconds: user, systemSeconds: system, mainSeconds: main, others };
}

/** `after` less `before`, per second of `seconds`. */
export function threadCoresBetween(
  before: ThreadCpu,
  after: ThreadCpu,
  seconds: number,
): ThreadCpu {
  const others: Record<string, number> = {};
  for (const [name, s] of Object.entries(after.others))
    others[name] = (s - (before.others[name] ?? 0)) / seconds;
  return {
    userSeconds: (after.userSeconds - before.userSeconds) / seconds,
    systemSeconds: (after.systemSeconds - before.systemSeconds) / seconds,
    mainSeconds: (after.mainSeconds - before.mainSeconds) / seconds,
    others,
  };
}

/**
 * Seconds the whole machine spent in softirq context (/proc/stat), where the kernel processes
 * packets: without CONFIG_IRQ_TIME_ACCOUNTING it is also charged to whichever task it interrupted.
 */
export function machineSoftirqSeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.split(/\s+/) ?? [];
  // cpu user nice system idle iowait irq softirq ...
  return Number(cpu[7]) / 100;
}

/** Requests the API server has served for a resource, by verb (CREATE, UPDATE, PATCH, LIST...). */
export async function requestsByVerb(
  kc: KubeConfig,
  resource: string,
): Promise<Map<string, number>> {
  const text = await apiServerMetrics(kc);
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{') || !line.includes(`resource="${resource}"`))
      continue;
    if (line.includes('subresource="') && !line.includes('subresource=""')) continue;
    const verb = /verb="([A-Z]+)"/.exec(line)?.[1] ?? '?';
    out.set(verb, (out.get(verb) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

export function diffVerbs(a: Map<string, number>, b: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [verb, n] of b) if (n - (a.get(verb) ?? 0) > 0) out.set(verb, n - (a.get(verb) ?? 0));
  return out;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return (
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ??
    NaN
  );
}

interface Pending {
  readonly sentAt: number;
  readonly ready: boolean;
}

/**
 * Watches every Endpoints object. Knows the ready and not-ready IPs each Service should have
 * (the workload's pods, with the flips the benchmark makes), counts the Services whose Endpoints
 * match, and times each flip: from when it was sent, and from the trigger-time annotation the
 * controller wrote, to when this watch saw it.
 */
export class EndpointsTracker {
  private readonly want = new Map<string, { ready: number; total: number }>();
  private readonly good = new Set<string>();
  /** The ready and not-ready counts last seen per Service. */
  private readonly last = new Map<string, { ready: number; notReady: number }>();
  private readonly pending = new Map<string, Map<string, Pending>>();
  readonly fromSend: number[] = [];
  readonly fromTrigger: number[] = [];
  private abort: AbortController | undefined;
  events = 0;

  constructor(w: Workload) {
    for (const s of w.services)
      this.want.set(`${s.namespace}/${s.name}`, { ready: s.size, total: s.size });
  }

  get converged(): boolean {
    return this.good.size === this.want.size;
  }

  /** Services whose Endpoints are not as expected yet, with what is expected (for errors). */
  mismatches(max = 5): string {
    const out: string[] = [];
    for (const [k, v] of this.want) {
      if (this.good.has(k)) continue;
      out.push(
        `${k} (want ${String(v.ready)} ready of ${String(v.total)}; saw ${JSON.stringify(this.last.get(k) ?? 'nothing')})`,
      );
      if (out.length >= max) break;
    }
    return out.join(', ');
  }

  get convergedCount(): number {
    return this.good.size;
  }

  /** Forgets what was seen: the next events decide convergence (e.g. after Endpoints are deleted). */
  forgetSeen(): void {
    this.good.clear();
    this.last.clear();
  }

  /** Whether the Service's last seen Endpoints are what it should have now. */
  private judge(key: string): void {
    const want = this.want.get(key);
    const seen = this.last.get(key);
    const ok =
      want !== undefined && seen?.ready === want.ready && seen.ready + seen.notReady === want.total;
    if (ok) this.good.add(key);
    else this.good.delete(key);
  }

  /** A pod of `service` flipped to `ready` now. */
  flip(service: string, pod: number, ready: boolean): void {
    const w = this.want.get(service);
    if (w !== undefined) this.want.set(service, { ...w, ready: w.ready + (ready ? 1 : -1) });
    // A flip undone before the controller published it may never bring another event.
    this.judge(service);
    let m = this.pending.get(service);
    if (m === undefined) {
      m = new Map();
      this.pending.set(service, m);
    }
    m.set(podIP(pod), { sentAt: Date.now(), ready });
  }

  resetLatencies(): void {
    this.fromSend.length = 0;
    this.fromTrigger.length = 0;
    this.pending.clear();
  }

  async start(kc: KubeConfig): Promise<void> {
    const watch = new Watch(kc);
    this.abort = await watch.watch(
      '/api/v1/endpoints',
      {},
      (type: string, ep: V1Endpoints) => {
        if (type !== 'ADDED' && type !== 'MODIFIED') return;
        this.events++;
        this.seen(ep);
      },
      () => undefined,
    );
  }

  stop(): void {
    this.abort?.abort();
  }

  private seen(ep: V1Endpoints): void {
    const key = `${ep.metadata?.namespace ?? ''}/${ep.metadata?.name ?? ''}`;
    const want = this.want.get(key);
    if (want === undefined) return;
    const now = Date.now();
    let ready = 0;
    let notReady = 0;
    for (const s of ep.subsets ?? []) {
      ready += s.addresses?.length ?? 0;
      notReady += s.notReadyAddresses?.length ?? 0;
    }
    this.last.set(key, { ready, notReady });
    this.judge(key);
    const pending = this.pending.get(key);
    if (pending === undefined || pending.size === 0) return;
    const readyIPs = new Set(
      (ep.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip)),
    );
    const trigger = Date.parse(ep.metadata?.annotations?.[annotationTriggerTime] ?? '');
    for (const [ip, p] of pending) {
      if (readyIPs.has(ip) !== p.ready) continue;
      this.fromSend.push(now - p.sentAt);
      if (!Number.isNaN(trigger)) this.fromTrigger.push(Math.max(0, now - trigger));
      pending.delete(ip);
    }
  }
}
