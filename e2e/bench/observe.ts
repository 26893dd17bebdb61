// What the benchmark reads while it runs: a controller process's memory and CPU from /proc, the
// API server's request counters by verb, and a client-side watch of every Endpoints object that
// tells when the cluster has converged and how long each readiness change took to show.
import { readFileSync } from 'node:fs';
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
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssMiB: kb('VmRSS') / 1024, peakRssMiB: kb('VmHWM') / 1024, cpuSeconds: ticks / 100 };
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
