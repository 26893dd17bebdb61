// The cluster's own address space, discovered and kept current by watching, so that no namespace
// user can publish a ClusterIP, a pod IP, a node address or the API server as an ExternalBackend
// address without anyone configuring anything: every ServiceCIDR, every Node's podCIDRs and
// addresses, and the `kubernetes` Service's endpoints. When a source cannot be watched (no RBAC, an
// API server without ServiceCIDRs), the private ranges are denied in its place, and that is said in
// the log, a metric and the message of every address it denies.
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Logger } from '../runtime/log.ts';
import { isAborted, sleep } from '../runtime/signals.ts';
import {
  DenyList,
  fallbackDeniedCidrs,
  type DeniedRange,
  type NodeGrant,
  type RangeKind,
} from '../net/denylist.ts';
import { isPermanent, type Informer, type ListFailure } from '../runtime/informer.ts';
import type { CachedNode, CachedServiceCIDR, CachedSliceAddresses } from '../runtime/transforms.ts';

export type RangeSource = 'servicecidrs' | 'nodes' | 'apiserver';

export interface ClusterRangeInputs {
  readonly serviceCIDRs: readonly CachedServiceCIDR[];
  readonly nodes: readonly CachedNode[];
  /** EndpointSlices of default/kubernetes. */
  readonly apiServer: readonly CachedSliceAddresses[];
  /** Sources that cannot be watched, with why. */
  readonly unavailable: ReadonlyMap<RangeSource, string>;
}

function host(ip: string): string | undefined {
  if (isIP(ip) === 0) return undefined;
  const addr = ipaddr.process(ip);
  return `${addr.toString()}/${addr.kind() === 'ipv4' ? '32' : '128'}`;
}

function cidr(text: string): string | undefined {
  try {
    const [addr, bits] = ipaddr.parseCIDR(text);
    return `${addr.toString()}/${String(bits)}`;
  } catch {
    return undefined;
  }
}

const describeSource: Record<RangeSource, string> = {
  servicecidrs: 'ServiceCIDRs',
  nodes: 'Nodes',
  apiserver: 'the kubernetes Service endpoints',
};

/** The denied ranges the cluster's objects imply (pure). */
export function clusterRanges(i: ClusterRangeInputs): DeniedRange[] {
  const out: DeniedRange[] = [];
  for (const s of i.serviceCIDRs) {
    for (const c of s.cidrs) {
      const r = cidr(c);
      if (r !== undefined)
        out.push({ cidr: r, source: `ServiceCIDR ${s.metadata?.name ?? ''}`, kind: 'servicecidr' });
    }
  }
  for (const n of i.nodes) {
    const name = n.metadata?.name ?? '';
    for (const c of n.podCIDRs) {
      const r = cidr(c);
      if (r !== undefined)
        out.push({ cidr: r, source: `pod CIDR of Node ${name}`, kind: 'pod-cidr' });
    }
    for (const a of n.addresses) {
      const r = host(a);
      if (r !== undefined)
        out.push({ cidr: r, source: `address of Node ${name}`, kind: 'node-address' });
    }
  }
  for (const s of i.apiServer) {
    for (const a of s.addresses) {
      const r = host(a);
      // The ports matter only to a Node address grant, which never covers them (where etcd runs
      // on control-plane nodes, their addresses are the API server's too).
      if (r !== undefined)
        out.push({
          cidr: r,
          source: 'the API server (kubernetes Service)',
          kind: 'apiserver',
          ports: [...(s.ports ?? [])].sort((x, y) => x - y),
        });
    }
  }
  // kube-apiserver listens on every address of its host (both families, every interface), while
  // the kubernetes Service lists one per host: every address of a Node that carries an API server
  // address is the API server's too, on its ports (all of them if a slice names none).
  const apiHosts = new Set(i.apiServer.flatMap((s) => s.addresses.map(host)));
  const apiPorts = i.apiServer.some((s) => (s.ports ?? []).length === 0)
    ? []
    : [...new Set(i.apiServer.flatMap((s) => s.ports ?? []))].sort((x, y) => x - y);
  for (const n of i.nodes) {
    const hosts = n.addresses.map(host).filter((h): h is string => h !== undefined);
    if (!hosts.some((h) => apiHosts.has(h))) continue;
    for (const h of hosts)
      if (!apiHosts.has(h))
        out.push({
          cidr: h,
          source: `the API server (Node ${n.metadata?.name ?? ''} carries its address)`,
          kind: 'apiserver',
          ports: apiPorts,
        });
  }
  const why = [...i.unavailable].map(([src, reason]) => `${describeSource[src]}: ${reason}`);
  if (why.length > 0) {
    const source = `private range, denied because cluster ranges are unknown (${why.join('; ')})`;
    for (const c of fallbackDeniedCidrs) out.push({ cidr: c, source, kind: 'fallback' });
  }
  return out;
}

/** How long handler-triggered rebuilds wait, so a burst of events makes one. */
const coalesceMs = 100;

/** A short cause that stays the same from one failed attempt to the next (no request ids, dates). */
function cause(f: ListFailure | undefined): string {
  const phrase: Record<number, string> = {
    401: '401 Unauthorized',
    403: '403 Forbidden: no RBAC to list and watch',
    404: '404 Not Found: not served by this API server',
  };
  return f?.code === undefined ? 'not listed' : (phrase[f.code] ?? `HTTP ${String(f.code)}`);
}

export interface ClusterRangesOptions {
  /** Built-in and --denied-cidrs ranges, always denied. */
  readonly fixed: readonly DeniedRange[];
  readonly serviceCIDRs: Informer<CachedServiceCIDR>;
  readonly nodes: Informer<CachedNode>;
  readonly apiServer: Informer<CachedSliceAddresses>;
  readonly log: Logger;
  /** Ranges by source (after each change) and which sources are being discovered (1) or not (0). */
  readonly onRanges?: (
    counts: Readonly<Record<string, number>>,
    up: Readonly<Record<RangeSource, boolean>>,
  ) => void;
}

/**
 * The current deny list, rebuilt when a watched object changes what is denied. Listeners are told
 * after every change of the denied set (not of the objects: Node status updates that change no
 * address are quiet).
 */
export class ClusterRanges {
  private readonly o: ClusterRangesOptions;
  private list: DenyList;
  private signature = '';
  private readonly listeners: (() => void)[] = [];
  private readonly gaveUp = new Map<RangeSource, string>();

  private pending: NodeJS.Timeout | undefined;
  /** Why the `kubernetes` Service's endpoints cannot be watched, while they cannot. */
  private apiServerUnknown: string | undefined;

  constructor(o: ClusterRangesOptions) {
    this.o = o;
    this.list = new DenyList(o.fixed);
    // Handlers only schedule one rebuild for a burst of events: a relist of thousands of Nodes
    // fires one event each, and rebuilding per event would cost the square of the cluster's size.
    const changed = (): void => {
      this.pending ??= setTimeout(() => {
        this.pending = undefined;
        this.rebuild();
      }, coalesceMs).unref();
    };
    for (const inf of [o.serviceCIDRs, o.apiServer] as const)
      (inf as Informer<CachedServiceCIDR | CachedSliceAddresses>).addHandlers({
        add: changed,
        update: changed,
        delete: changed,
      });
    // Node status changes often (conditions, images); only its ranges matter here.
    o.nodes.addHandlers({
      add: changed,
      update: (a, b) => {
        if (a.podCIDRs.join() !== b.podCIDRs.join() || a.addresses.join() !== b.addresses.join())
          changed();
      },
      delete: changed,
    });
  }

  /**
   * Why `ip` is denied, or undefined when it is allowed (see DenyList.denies). A Node address grant
   * is honoured only while the API server's endpoints are known: otherwise its port could not be
   * kept out.
   */
  denies(ip: string, nodeGrant?: NodeGrant): string | undefined {
    if (nodeGrant === undefined) return this.list.denies(ip);
    const unknown = this.apiServerUnknown;
    if (unknown === undefined) return this.list.denies(ip, nodeGrant);
    const why = this.list.denies(ip);
    return why === undefined
      ? undefined
      : `${why}; Node addresses cannot be granted while the API server's endpoints are unknown (${unknown})`;
  }

  /** Which Node `ip` is an address of ("address of Node n1"), or undefined. */
  nodeAddress(ip: string): string | undefined {
    return this.list.nodeAddress(ip);
  }

  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  private sources(): [
    RangeSource,
    Informer<CachedNode | CachedServiceCIDR | CachedSliceAddresses>,
  ][] {
    return [
      ['servicecidrs', this.o.serviceCIDRs],
      ['nodes', this.o.nodes],
      ['apiserver', this.o.apiServer],
    ];
  }

  /** Sources that have not synced and cannot (or were given up on), with why. */
  private unavailable(): Map<RangeSource, string> {
    const out = new Map<RangeSource, string>();
    for (const [name, inf] of this.sources()) {
      if (inf.hasSynced()) continue;
      const f = inf.failure();
      if (isPermanent(f)) out.set(name, cause(f));
      else if (this.gaveUp.has(name)) out.set(name, this.gaveUp.get(name) ?? 'not synced');
    }
    return out;
  }

  /** Recomputes the list; tells listeners when what is denied changed. */
  rebuild(): void {
    const unavailable = this.unavailable();
    const discovered = clusterRanges({
      serviceCIDRs: this.o.serviceCIDRs.list(),
      nodes: this.o.nodes.list(),
      apiServer: this.o.apiServer.list(),
      unavailable,
    });
    // Synced but empty (no endpoints reconciler, the slice deleted) is as unknown as not synced:
    // a Node grant could otherwise reach the API server's port on every node.
    this.apiServerUnknown =
      unavailable.get('apiserver') ??
      (!this.o.apiServer.hasSynced()
        ? 'not listed yet'
        : !this.o.apiServer.list().some((sl) => sl.addresses.length > 0)
          ? 'the kubernetes Service lists no endpoints'
          : undefined);
    const signature = JSON.stringify(discovered);
    if (signature === this.signature) return;
    const wasUnavailable = this.signature.includes('"kind":"fallback"');
    this.signature = signature;
    this.list = new DenyList([...this.o.fixed, ...discovered]);
    if (unavailable.size > 0 && !wasUnavailable)
      this.o.log.error(
        { unavailable: Object.fromEntries(unavailable) },
        'cannot discover the cluster’s address ranges; denying every private range (RFC 1918, RFC 6598, ULA) in their place',
      );
    else if (unavailable.size === 0 && wasUnavailable)
      this.o.log.info(
        'cluster address ranges discovered again; private ranges no longer denied wholesale',
      );
    const counts: Record<RangeKind, number> = {
      builtin: 0,
      flag: 0,
      servicecidr: 0,
      'pod-cidr': 0,
      'node-address': 0,
      apiserver: 0,
      fallback: 0,
    };
    for (const d of [...this.o.fixed, ...discovered]) counts[d.kind]++;
    this.o.onRanges?.(counts, {
      servicecidrs: !unavailable.has('servicecidrs'),
      nodes: !unavailable.has('nodes'),
      apiserver: !unavailable.has('apiserver'),
    });
    for (const fn of this.listeners) fn();
  }

  /**
   * Re-judges the sources every few seconds until `signal` aborts: a source whose RBAC is granted
   * later syncs with no objects and so fires no handler, and one that starts failing fires none.
   */
  async run(signal: AbortSignal, everyMs = 5000): Promise<void> {
    while (!signal.aborted) {
      await sleep(everyMs, signal);
      if (!isAborted(signal)) this.rebuild();
    }
  }

  /**
   * Waits until every source has synced or cannot be (401/403/404), at most `timeoutMs`; sources
   * still pending then are given up on (their fallback applies until they sync). Resolves early
   * when `signal` aborts.
   */
  async waitReady(signal: AbortSignal, timeoutMs: number): Promise<void> {
    await Promise.all(this.sources().map(([, inf]) => inf.waitSettled(signal, timeoutMs)));
    for (const [name, inf] of this.sources())
      if (!inf.hasSynced() && !isPermanent(inf.failure()))
        this.gaveUp.set(
          name,
          `not synced within ${String(Math.round(timeoutMs / 1000))} s (${cause(inf.failure())})`,
        );
    this.rebuild();
  }
}
