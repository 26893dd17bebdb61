// A workload for fault and soak runs: selector Services whose pods flip readiness, and
// ExternalBackends whose servers (in a backend farm) die and return and whose address lists are
// edited. It knows the one thing the API server cannot say — which servers are up — and from that
// and the API server's objects it computes, from scratch and without outrigger's code, what every
// Endpoints, EndpointSlice and ExternalBackend status must say. Objects that belong to others are
// planted and must come out of every run untouched.
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
  type V1Endpoints,
  type V1EndpointSlice,
  type V1Pod,
} from '@kubernetes/client-node';
import { setTimeout as delay } from 'node:timers/promises';
import { group, plural, version } from '../../src/api/externalbackend.ts';
import type { Farm } from '../harness/netns.ts';
import { boundPod, writePodStatus } from '../helpers.ts';

export interface WorldOptions {
  /** Namespace name prefix; namespaces are `<prefix>-0`, `<prefix>-1`, ... */
  readonly prefix: string;
  readonly namespaces: number;
  readonly servicesPerNamespace: number;
  readonly podsPerService: number;
  readonly backendsPerNamespace: number;
  /** Addresses per ExternalBackend, alternating IPv4 and IPv6 from the backend network. */
  readonly addressesPerBackend: number;
  /** Backend network addresses (both families), in the order they are handed out. */
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
  /** Seed of the churn's random choices, so a failing run can be replayed. */
  readonly seed?: number;
}

interface BackendTruth {
  readonly ns: string;
  readonly name: string;
  readonly port: number;
  /** Every address this backend may have; spec.addresses is a subset that churn edits. */
  readonly pool: readonly string[];
}

export interface ChurnStats {
  readonly ops: number;
  /** Operations the API server refused or could not answer (expected while it is faulted). */
  readonly failed: number;
  readonly byKind: Record<string, number>;
}

/** A normalised view of one object: sorted lines, so two views compare as strings. */
export type View = Map<string, string[]>;

const managedByEndpoints = 'endpoints.kubernetes.io/managed-by';
const managedBySlice = 'endpointslice.kubernetes.io/managed-by';
const serviceNameLabel = 'kubernetes.io/service-name';
const outriggerManager = 'controller.outrigger.dev';

/** mulberry32: a small seeded generator; Math.random cannot be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

function podIP(nsIndex: number, svc: number, pod: number): string {
  // Data only: pod IPs are published in Endpoints, never connected to.
  return `10.244.${String(nsIndex * 16 + svc)}.${String(pod + 10)}`;
}

function portLines(ports: { name?: string; port: number; protocol?: string }[] | undefined) {
  return (ports ?? []).map((p) => `${p.name ?? ''}:${String(p.port)}/${p.protocol ?? 'TCP'}`);
}

/** Endpoints as lines "<ip> <R|N> <targetRef> <port>", one per address and port, plus labels. */
export function endpointsView(ep: V1Endpoints): string[] {
  const lines: string[] = [];
  for (const s of ep.subsets ?? []) {
    const ports = portLines(s.ports);
    for (const [ready, list] of [
      ['R', s.addresses],
      ['N', s.notReadyAddresses],
    ] as const)
      for (const a of list ?? [])
        for (const p of ports.length > 0 ? ports : ['-'])
          lines.push(`${a.ip} ${ready} ${a.targetRef?.name ?? '-'} ${p}`);
  }
  lines.push(`label ${managedByEndpoints}=${ep.metadata?.labels?.[managedByEndpoints] ?? ''}`);
  return lines.sort();
}

/** An EndpointSlice as lines "<ip> ready=… serving=… terminating=…", ports, and its labels. */
export function sliceView(s: V1EndpointSlice): string[] {
  const lines = (s.endpoints ?? []).map(
    (e) =>
      `${e.addresses.join(',')} ready=${String(e.conditions?.ready)} serving=${String(e.conditions?.serving)} terminating=${String(e.conditions?.terminating)}`,
  );
  for (const p of portLines(
    (s.ports ?? []).map((p) => ({
      port: p.port ?? 0,
      ...(p.name !== undefined ? { name: p.name } : {}),
      ...(p.protocol !== undefined ? { protocol: p.protocol } : {}),
    })),
  ))
    lines.push(`port ${p}`);
  lines.push(`addressType ${s.addressType}`);
  lines.push(`label ${serviceNameLabel}=${s.metadata?.labels?.[serviceNameLabel] ?? ''}`);
  lines.push(`label ${managedBySlice}=${s.metadata?.labels?.[managedBySlice] ?? ''}`);
  return lines.sort();
}

interface ExternalBackendObject {
  metadata?: { name?: string; namespace?: string; generation?: number; uid?: string };
  spec?: { addresses?: { ip: string }[]; service?: { name?: string } };
  status?: {
    observedGeneration?: number;
    readyAddresses?: number;
    totalAddresses?: number;
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}

function familyOf(ip: string): 'IPv4' | 'IPv6' {
  return ip.includes(':') ? 'IPv6' : 'IPv4';
}

export class World {
  readonly namespaces: string[];
  readonly core: CoreV1Api;
  private readonly objects: CustomObjectsApi;
  private readonly discovery: DiscoveryV1Api;
  private readonly backends: BackendTruth[] = [];
  /** "<ip> <port>" of every farm server that is up. */
  private readonly up = new Set<string>();
  /** Objects planted for others, with the resourceVersion they must keep. */
  private readonly foreign: {
    kind: 'Endpoints' | 'EndpointSlice';
    ns: string;
    name: string;
    rv: string;
  }[] = [];
  private readonly random: () => number;
  /** The prober cannot reach any backend (its network is cut): every probe fails. */
  proberCut = false;

  readonly opts: WorldOptions;
  private readonly farm: Farm;

  private constructor(kc: KubeConfig, opts: WorldOptions, farm: Farm) {
    this.opts = opts;
    this.farm = farm;
    this.core = kc.makeApiClient(CoreV1Api);
    this.objects = kc.makeApiClient(CustomObjectsApi);
    this.discovery = kc.makeApiClient(DiscoveryV1Api);
    this.namespaces = Array.from(
      { length: opts.namespaces },
      (_, i) => `${opts.prefix}-${String(i)}`,
    );
    this.random = rng(opts.seed ?? 1);
  }

  /** Creates namespaces, Services, pods, ExternalBackends, their servers, and the foreign objects. */
  static async create(kc: KubeConfig, farm: Farm, opts: WorldOptions): Promise<World> {
    const w = new World(kc, opts, farm);
    await w.setUp();
    return w;
  }

  get backendCount(): number {
    return this.backends.length;
  }

  /** The port a backend's servers listen on. */
  portOf(ns: string, name: string): number {
    const b = this.backends.find((x) => x.ns === ns && x.name === name);
    if (b === undefined) throw new Error(`no backend ${ns}/${name}`);
    return b.port;
  }

  private async setUp(): Promise<void> {
    const { opts } = this;
    const pool = opts.ipv4
      .flatMap((v4, i) => [v4, opts.ipv6[i]])
      .filter((x): x is string => x !== undefined);
    if (pool.length < opts.addressesPerBackend)
      throw new Error(`the backend network has ${String(pool.length)} addresses, fewer than asked`);
    for (const [i, ns] of this.namespaces.entries()) {
      await this.core.createNamespace({ body: { metadata: { name: ns } } });
      for (let s = 0; s < opts.servicesPerNamespace; s++) {
        const svc = `svc-${String(s)}`;
        await this.core.createNamespacedService({
          namespace: ns,
          body: {
            metadata: { name: svc, labels: { app: svc } },
            spec: {
              selector: { app: svc },
              ports: [
                { name: 'http', port: 80, targetPort: 'http' },
                { name: 'metrics', port: 9090, targetPort: 9090 },
              ],
            },
          },
        });
        for (let p = 0; p < opts.podsPerService; p++) {
          const name = `${svc}-${String(p)}`;
          await this.core.createNamespacedPod({
            namespace: ns,
            body: boundPod(name, { app: svc }, [{ name: 'http', port: 8080 }]),
          });
          await writePodStatus(this.core, ns, name, podIP(i, s, p), p % 2 === 0);
        }
      }
      for (let b = 0; b < opts.backendsPerNamespace; b++) {
        const port = 20000 + i * 100 + b;
        const t: BackendTruth = {
          ns,
          name: `xb-${String(b)}`,
          port,
          pool: pool.slice(0, opts.addressesPerBackend),
        };
        this.backends.push(t);
        for (const ip of t.pool) await this.setServer(ip, port, true);
        await this.objects.createNamespacedCustomObject({
          group,
          version,
          namespace: ns,
          plural,
          body: {
            apiVersion: `${group}/${version}`,
            kind: 'ExternalBackend',
            metadata: { name: t.name },
            spec: {
              ports: [{ name: 'tcp', port, protocol: 'TCP' }],
              addresses: t.pool.map((ip) => ({ ip })),
              healthCheck: {
                tcp: { port: 'tcp' },
                intervalSeconds: 1,
                timeoutSeconds: 1,
                healthyThreshold: 1,
                unhealthyThreshold: 1,
                failOpen: true,
              },
            },
          },
        });
      }
    }
    await this.plantForeign();
  }

  /** Objects that others manage, next to outrigger's, which no run may change. */
  private async plantForeign(): Promise<void> {
    const ns = this.namespaces[0] ?? '';
    const xb = this.backends.find((b) => b.ns === ns);
    if (xb !== undefined) {
      // Another controller's slice for the same Service (a mesh, a hand-run mirror).
      const s = await this.discovery.createNamespacedEndpointSlice({
        namespace: ns,
        body: {
          metadata: {
            name: `${xb.name}-other`,
            labels: { [serviceNameLabel]: xb.name, [managedBySlice]: 'someone-else.example' },
          },
          addressType: 'IPv4',
          endpoints: [{ addresses: ['192.0.2.55'], conditions: { ready: true } }],
          ports: [{ name: 'tcp', port: xb.port, protocol: 'TCP' }],
        },
      });
      this.foreign.push({
        kind: 'EndpointSlice',
        ns,
        name: s.metadata?.name ?? '',
        rv: s.metadata?.resourceVersion ?? '',
      });
    }
    // The by-hand setup outrigger replaces: a selectorless Service and its hand-written Endpoints.
    await this.core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'legacy' }, spec: { ports: [{ name: 'http', port: 80 }] } },
    });
    const ep = await this.core.createNamespacedEndpoints({
      namespace: ns,
      body: {
        metadata: { name: 'legacy' },
        subsets: [{ addresses: [{ ip: '192.0.2.56' }], ports: [{ name: 'http', port: 80 }] }],
      },
    });
    this.foreign.push({
      kind: 'Endpoints',
      ns,
      name: 'legacy',
      rv: ep.metadata?.resourceVersion ?? '',
    });
  }

  /** Records a foreign object planted by a fault, which must come out of the run untouched. */
  addForeign(kind: 'Endpoints' | 'EndpointSlice', ns: string, name: string, rv: string): void {
    this.foreign.push({ kind, ns, name, rv });
  }

  async setServer(ip: string, port: number, on: boolean): Promise<void> {
    if (on) await this.farm.up(ip, port);
    else await this.farm.down(ip, port);
    if (on) this.up.add(`${ip} ${String(port)}`);
    else this.up.delete(`${ip} ${String(port)}`);
  }

  /** Switches every backend server off (true) or back on (false). */
  async allServers(on: boolean): Promise<void> {
    for (const b of this.backends) for (const ip of b.pool) await this.setServer(ip, b.port, on);
  }

  private pick<T>(xs: readonly T[]): T {
    const x = xs[Math.floor(this.random() * xs.length)];
    if (x === undefined) throw new Error('pick from an empty list');
    return x;
  }

  /** One random change of the kind a busy cluster sees; returns its kind. */
  async step(): Promise<string> {
    const r = this.random();
    const nsIndex = Math.floor(this.random() * this.namespaces.length);
    const ns = this.namespaces[nsIndex] ?? '';
    if (r < 0.45 && this.opts.servicesPerNamespace > 0 && this.opts.podsPerService > 0) {
      const s = Math.floor(this.random() * this.opts.servicesPerNamespace);
      const p = Math.floor(this.random() * this.opts.podsPerService);
      const name = `svc-${String(s)}-${String(p)}`;
      const pod = await this.core.readNamespacedPod({ namespace: ns, name });
      const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      await writePodStatus(this.core, ns, name, podIP(nsIndex, s, p), !ready);
      return 'pod-readiness';
    }
    if (r < 0.55 && this.opts.servicesPerNamespace > 0 && this.opts.podsPerService > 0) {
      const s = Math.floor(this.random() * this.opts.servicesPerNamespace);
      const p = Math.floor(this.random() * this.opts.podsPerService);
      const name = `svc-${String(s)}-${String(p)}`;
      await this.core.deleteNamespacedPod({ namespace: ns, name, gracePeriodSeconds: 0 });
      for (let i = 0; ; i++) {
        try {
          await this.core.createNamespacedPod({
            namespace: ns,
            body: boundPod(name, { app: `svc-${String(s)}` }, [{ name: 'http', port: 8080 }]),
          });
          break;
        } catch (err) {
          // The old pod may still be going away.
          if (i > 20 || !(err instanceof ApiException && err.code === 409)) throw err;
          await delay(100);
        }
      }
      await writePodStatus(this.core, ns, name, podIP(nsIndex, s, p), this.random() < 0.5);
      return 'pod-replaced';
    }
    const mine = this.backends.filter((b) => b.ns === ns);
    if (mine.length === 0) return 'none';
    const b = this.pick(mine);
    if (r < 0.8) {
      const ip = this.pick(b.pool);
      await this.setServer(ip, b.port, !this.up.has(`${ip} ${String(b.port)}`));
      return 'server-toggled';
    }
    await this.editAddresses(b);
    return 'backend-edited';
  }

  /** Removes one address from spec.addresses, or adds a missing one back. */
  private async editAddresses(b: BackendTruth): Promise<void> {
    await this.replaceAddresses(b, (current) => {
      const have = new Set(current);
      const missing = b.pool.filter((ip) => !have.has(ip));
      return missing.length > 0 && (have.size <= 1 || this.random() < 0.5)
        ? [...current, this.pick(missing)]
        : current.filter((ip) => ip !== this.pick([...have]));
    });
  }

  /** Gives a backend every address of its pool again, undoing what churn removed. */
  async restoreAddresses(ns: string, name: string): Promise<readonly string[]> {
    const b = this.backends.find((x) => x.ns === ns && x.name === name);
    if (b === undefined) throw new Error(`no backend ${ns}/${name}`);
    await this.replaceAddresses(b, () => [...b.pool]);
    return b.pool;
  }

  /** Read, change, replace, retrying on conflicts with outrigger's status writes. */
  private async replaceAddresses(
    b: BackendTruth,
    change: (current: readonly string[]) => readonly string[],
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const xb = (await this.objects.getNamespacedCustomObject({
        group,
        version,
        namespace: b.ns,
        plural,
        name: b.name,
      })) as ExternalBackendObject & { spec: { addresses: { ip: string }[] } };
      const addresses = change(xb.spec.addresses.map((a) => a.ip)).map((ip) => ({ ip }));
      try {
        await this.objects.replaceNamespacedCustomObject({
          group,
          version,
          namespace: b.ns,
          plural,
          name: b.name,
          body: { ...xb, spec: { ...xb.spec, addresses } },
        });
        return;
      } catch (err) {
        if (attempt > 5 || !(err instanceof ApiException && err.code === 409)) throw err;
      }
    }
  }

  /**
   * Runs step() about `perSecond` times a second until stopped. Failed steps are counted, not
   * thrown: the API server is expected to fail them while it is faulted.
   */
  churn(perSecond: number): { stop(): Promise<ChurnStats> } {
    const state = { running: true };
    let ops = 0;
    let failed = 0;
    const byKind: Record<string, number> = {};
    const loop = (async () => {
      while (state.running) {
        const started = Date.now();
        try {
          const kind = await this.step();
          byKind[kind] = (byKind[kind] ?? 0) + 1;
        } catch {
          failed++;
        }
        ops++;
        await delay(Math.max(0, 1000 / perSecond - (Date.now() - started)));
      }
    })();
    return {
      stop: async () => {
        state.running = false;
        await loop;
        return { ops, failed, byKind };
      },
    };
  }

  private async listBackends(ns: string): Promise<ExternalBackendObject[]> {
    const list = (await this.objects.listNamespacedCustomObject({
      group,
      version,
      namespace: ns,
      plural,
    })) as { items: ExternalBackendObject[] };
    return list.items;
  }

  /**
   * What every object outrigger manages must say, computed from the API server's Services, Pods and
   * ExternalBackends and the farm's truth. Keys are "<Kind> <ns>/<name>".
   */
  async expected(): Promise<View> {
    const want: View = new Map();
    for (const ns of this.namespaces) {
      const [services, pods, xbs] = await Promise.all([
        this.core.listNamespacedService({ namespace: ns }),
        this.core.listNamespacedPod({ namespace: ns }),
        this.listBackends(ns),
      ]);
      for (const svc of services.items) {
        const selector = svc.spec?.selector;
        if (selector === undefined) continue;
        const members = pods.items.filter(
          (p: V1Pod) =>
            Object.entries(selector).every(([k, v]) => p.metadata?.labels?.[k] === v) &&
            p.metadata?.deletionTimestamp === undefined &&
            p.status?.podIP !== undefined &&
            p.status.phase !== 'Failed' &&
            p.status.phase !== 'Succeeded',
        );
        const lines: string[] = [];
        for (const p of members) {
          const ready = p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
          for (const sp of svc.spec?.ports ?? []) {
            const target =
              typeof sp.targetPort === 'number'
                ? sp.targetPort
                : p.spec?.containers
                    .flatMap((c) => c.ports ?? [])
                    .find((cp) => cp.name === sp.targetPort)?.containerPort;
            if (target === undefined) continue;
            lines.push(
              `${p.status?.podIP ?? ''} ${ready ? 'R' : 'N'} ${p.metadata?.name ?? ''} ${sp.name ?? ''}:${String(target)}/${sp.protocol ?? 'TCP'}`,
            );
          }
        }
        lines.push(`label ${managedByEndpoints}=${outriggerManager}`);
        want.set(`Endpoints ${ns}/${svc.metadata?.name ?? ''}`, lines.sort());
      }
      for (const xb of xbs) {
        const name = xb.metadata?.name ?? '';
        const truth = this.backends.find((b) => b.ns === ns && b.name === name);
        if (truth === undefined) continue;
        const ips = (xb.spec?.addresses ?? []).map((a) => a.ip);
        const healthy = this.proberCut
          ? []
          : ips.filter((ip) => this.up.has(`${ip} ${String(truth.port)}`));
        const failOpen = ips.length > 0 && healthy.length === 0;
        const ready = (ip: string) => failOpen || healthy.includes(ip);
        const port = `tcp:${String(truth.port)}/TCP`;
        want.set(
          `Endpoints ${ns}/${name}`,
          [
            ...ips.map((ip) => `${ip} ${ready(ip) ? 'R' : 'N'} - ${port}`),
            `label ${managedByEndpoints}=${outriggerManager}`,
          ].sort(),
        );
        for (const family of ['IPv4', 'IPv6'] as const) {
          const members = ips.filter((ip) => familyOf(ip) === family);
          if (members.length === 0) continue;
          want.set(
            `EndpointSlice ${ns}/${name}-outrigger-${family.toLowerCase()}`,
            [
              ...members.map(
                (ip) =>
                  `${ip} ready=${String(ready(ip))} serving=${String(ready(ip))} terminating=false`,
              ),
              `port ${port}`,
              `addressType ${family}`,
              `label ${serviceNameLabel}=${name}`,
              `label ${managedBySlice}=${outriggerManager}`,
            ].sort(),
          );
        }
        want.set(`ExternalBackendStatus ${ns}/${name}`, [
          `observedGeneration=${String(xb.metadata?.generation)}`,
          `readyAddresses=${String(ips.filter(ready).length)}`,
          `totalAddresses=${String(ips.length)}`,
          `failingOpen=${String(failOpen)}`,
        ]);
      }
    }
    return want;
  }

  /** What the API server holds now for everything outrigger manages in the world's namespaces. */
  async actual(): Promise<View> {
    const have: View = new Map();
    for (const ns of this.namespaces) {
      const [eps, slices, xbs] = await Promise.all([
        this.core.listNamespacedEndpoints({ namespace: ns }),
        this.discovery.listNamespacedEndpointSlice({ namespace: ns }),
        this.listBackends(ns),
      ]);
      for (const ep of eps.items) {
        const ours =
          ep.metadata?.labels?.[managedByEndpoints] === outriggerManager ||
          (ep.metadata?.ownerReferences ?? []).some((o) => o.kind === 'ExternalBackend');
        if (ours) have.set(`Endpoints ${ns}/${ep.metadata?.name ?? ''}`, endpointsView(ep));
      }
      for (const s of slices.items) {
        const ours =
          s.metadata?.labels?.[managedBySlice] === outriggerManager ||
          (s.metadata?.ownerReferences ?? []).some((o) => o.kind === 'ExternalBackend');
        if (ours) have.set(`EndpointSlice ${ns}/${s.metadata?.name ?? ''}`, sliceView(s));
      }
      for (const xb of xbs) {
        if (!this.backends.some((b) => b.ns === ns && b.name === xb.metadata?.name)) continue;
        const readyCondition = xb.status?.conditions?.find((c) => c.type === 'Ready');
        have.set(`ExternalBackendStatus ${ns}/${xb.metadata?.name ?? ''}`, [
          `observedGeneration=${String(xb.status?.observedGeneration)}`,
          `readyAddresses=${String(xb.status?.readyAddresses)}`,
          `totalAddresses=${String(xb.status?.totalAddresses)}`,
          `failingOpen=${String(readyCondition?.reason === 'FailingOpen')}`,
        ]);
      }
    }
    return have;
  }

  /** Foreign objects that changed or vanished ("<Kind> <ns>/<name>: why"). */
  async foreignTouched(): Promise<string[]> {
    const out: string[] = [];
    for (const f of this.foreign) {
      try {
        const obj =
          f.kind === 'Endpoints'
            ? await this.core.readNamespacedEndpoints({ namespace: f.ns, name: f.name })
            : await this.discovery.readNamespacedEndpointSlice({ namespace: f.ns, name: f.name });
        if (obj.metadata?.resourceVersion !== f.rv)
          out.push(
            `${f.kind} ${f.ns}/${f.name}: resourceVersion ${f.rv} → ${obj.metadata?.resourceVersion ?? ''}`,
          );
      } catch (err) {
        out.push(`${f.kind} ${f.ns}/${f.name}: ${isNotFound(err) ? 'deleted' : String(err)}`);
      }
    }
    return out;
  }

  /** Differences between expected and actual, one line per object; empty when they agree. */
  async differences(): Promise<string[]> {
    const [want, have] = await Promise.all([this.expected(), this.actual()]);
    const out: string[] = [];
    for (const [key, lines] of want) {
      const got = have.get(key);
      if (got === undefined) out.push(`${key}: missing`);
      else if (got.join('\n') !== lines.join('\n'))
        out.push(
          `${key}: want [${lines.filter((l) => !got.includes(l)).join('; ')}] extra [${got.filter((l) => !lines.includes(l)).join('; ')}]`,
        );
    }
    for (const key of have.keys()) if (!want.has(key)) out.push(`${key}: not expected`);
    return out;
  }

  /**
   * Polls until expected and actual agree twice in a row, `stableMs` apart; resolves with the
   * milliseconds it took, or rejects with the last differences after `timeoutMs`.
   */
  async converge(timeoutMs = 60_000, stableMs = 1000): Promise<{ ms: number; lost: string[] }> {
    const started = Date.now();
    let last: string[] = [];
    let agreedAt: number | undefined;
    while (Date.now() - started < timeoutMs) {
      try {
        last = await this.differences();
      } catch (err) {
        last = [`reading the cluster failed: ${String(err)}`];
      }
      if (last.length === 0) {
        agreedAt ??= Date.now();
        if (Date.now() - agreedAt >= stableMs) return { ms: agreedAt - started, lost: [] };
      } else agreedAt = undefined;
      await delay(250);
    }
    return { ms: Date.now() - started, lost: last };
  }
}
