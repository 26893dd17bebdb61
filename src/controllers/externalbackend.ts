// The ExternalBackend reconciler: gathers the CR, its Service, Endpoints, EndpointSlices, selected
// pods and probe results from caches; computes the desired objects and status with the pure
// functions in src/externalbackend; writes only what differs.
import type { V1EndpointSlice, V1Endpoints, V1Pod, V1Service } from '@kubernetes/client-node';
import { Controller, errorMessage } from '../controller/runner.ts';
import {
  addressViews,
  decideService,
  denyListJudge,
  desiredEndpoints,
  desiredService,
  desiredSlices,
  endpointsUpToDate,
  labelEndpointsManagedBy,
  labelSliceManagedBy,
  managerName,
  ownership,
  podSubsets,
  publishedCounts,
  serviceName,
  sliceUpToDate,
  type AddressState,
  type BackendRef,
  type Judge,
  type ServiceDecision,
} from '../externalbackend/desired.ts';
import {
  apiVersion,
  externalBackendSpec,
  kind,
  type ExternalBackendSpec,
  type ExternalBackendStatus,
} from '../externalbackend/schema.ts';
import {
  addressTransitions,
  buildStatus,
  parseStatus,
  readyCondition,
  statusEqual,
  transitionEvents,
  type Problem,
} from '../externalbackend/status.ts';
import type { ProbeSpec } from '../health/probe.ts';
import { ProbeScheduler } from '../health/scheduler.ts';
import type { AddressHealth } from '../health/state.ts';
import { labelSelectorMatches } from '../endpoints/selector.ts';
import type { BackendWriter, OwnedKind } from '../kube/backendwriter.ts';
import { isAlreadyExists, isConflict } from '../kube/backendwriter.ts';
import type { EventRecorder } from '../kube/events.ts';
import { objectKey, splitKey, type Informer } from '../kube/informer.ts';
import type { CachedExternalBackend, CachedNamespace, CachedPolicy } from '../kube/resources.ts';
import { backendPorts, loadPolicy, policyJudge, type LoadedPolicy } from '../policy/evaluate.ts';
import { policyKind, policyName } from '../policy/schema.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { DenyList } from '../net/denylist.ts';

export const controllerName = 'externalbackend';

export interface ExternalBackendControllerOptions {
  readonly backends: Informer<CachedExternalBackend>;
  readonly services: Informer<V1Service>;
  readonly endpoints: Informer<V1Endpoints>;
  /** Only the slices outrigger manages (label-selected watch). */
  readonly slices: Informer<V1EndpointSlice>;
  readonly pods: Informer<V1Pod>;
  /** ExternalBackendPolicies (there is at most one, "cluster") and Namespaces, for the policy. */
  readonly policies: Informer<CachedPolicy>;
  readonly namespaces: Informer<CachedNamespace>;
  /** Most health-check targets one namespace may have. */
  readonly maxProbeTargetsPerNamespace: number;
  readonly writer: BackendWriter;
  readonly events: EventRecorder;
  /** The current deny list; it changes as cluster ranges come and go (call enqueueAll then). */
  readonly denyList: Pick<DenyList, 'denies'>;
  readonly probeConcurrency: number;
  /** An error escaped a probe (a bug): logged and counted by the caller. */
  readonly onProbeError?: (err: unknown) => void;
  readonly workers: number;
  readonly inScope: (namespace: string) => boolean;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly now?: () => Date;
}

/** An object we are about to create is already there but not in our cache yet: retry quietly. */
export class CacheLagError extends Error {
  override name = 'CacheLagError';
}

/** An object we are about to create is already there and belongs to someone else. */
export class ForeignObjectError extends Error {
  override name = 'ForeignObjectError';
}

/**
 * How often a backend blocked by a foreign EndpointSlice looks again: such slices are outside the
 * label-selected slice cache, so their removal brings no event.
 */
const foreignRecheckMs = 10_000;

/** An apply outrigger made: the resourceVersion the cache showed then, and what was written. */
interface AppliedMemo {
  readonly before: string;
  readonly wrote: V1Endpoints | V1EndpointSlice;
}

type Parsed = ReturnType<typeof externalBackendSpec.safeParse>;

const addressStates: readonly AddressState[] = ['Healthy', 'Unhealthy', 'Unknown', 'Denied'];

/** "<namespace>/<name>" of the ExternalBackend a probe target ("<ns>/<name>/<ip>") belongs to. */
function backendKeyOfTarget(target: string): string {
  return target.slice(0, target.lastIndexOf('/'));
}

function controllerOwner(obj: {
  metadata?: { ownerReferences?: { kind: string; name: string; controller?: boolean }[] };
}): { kind: string; name: string } | undefined {
  return obj.metadata?.ownerReferences?.find((o) => o.controller === true);
}

/** Who manages an object we will not touch, in words for a status message. */
function describeManager(obj: V1Endpoints | V1EndpointSlice): string {
  const owner = controllerOwner(obj);
  if (owner !== undefined) return `it is owned by ${owner.kind} ${owner.name}`;
  const labels = obj.metadata?.labels ?? {};
  const by = labels[labelEndpointsManagedBy] ?? labels[labelSliceManagedBy];
  if (by !== undefined) return `it is managed by ${by}`;
  return 'it was written by hand or by another tool';
}

function probeSpec(spec: ExternalBackendSpec, ip: string): ProbeSpec | undefined {
  const hc = spec.healthCheck;
  const resolve = (p: number | string): number | undefined =>
    typeof p === 'number' ? p : spec.ports.find((x) => x.name === p)?.port;
  if (hc?.tcp !== undefined) {
    const port = resolve(hc.tcp.port);
    return port === undefined ? undefined : { kind: 'tcp', ip, port };
  }
  if (hc?.http !== undefined) {
    const port = resolve(hc.http.port);
    if (port === undefined) return undefined;
    return {
      kind: 'http',
      ip,
      port,
      path: hc.http.path,
      scheme: hc.http.scheme,
      expectedStatuses: hc.http.expectedStatuses,
    };
  }
  return undefined;
}

export class ExternalBackendController {
  readonly controller: Controller;
  readonly scheduler: ProbeScheduler;
  private readonly o: ExternalBackendControllerOptions;
  private readonly now: () => Date;
  /** Parsed specs by cached object (cached objects are frozen and replaced on every change). */
  private readonly parsed = new WeakMap<CachedExternalBackend, Parsed>();
  /**
   * The status we last wrote and the resourceVersion it replaced: while the cache still shows that
   * version, ours is the truth (no duplicate Events or writes from a lagging cache).
   */
  private readonly written = new Map<string, { before: string; status: ExternalBackendStatus }>();
  /**
   * Per backend key, per object it owns ("<kind>/<name>"): outrigger's last apply of it, while
   * the cache may not have seen it yet (see known()).
   */
  private readonly applied = new Map<string, Map<string, AppliedMemo>>();
  /** Backends with addresses left unchecked by the namespace's probe-target limit. */
  private readonly limited = new Set<string>();

  constructor(o: ExternalBackendControllerOptions) {
    this.o = o;
    this.now = o.now ?? (() => new Date());
    this.controller = new Controller({
      name: controllerName,
      workers: o.workers,
      maxRetries: 15,
      log: o.log,
      metrics: o.metrics,
    });
    const q = this.controller.queue;
    this.scheduler = new ProbeScheduler({
      denyList: o.denyList,
      concurrency: o.probeConcurrency,
      onResult: (target, _health, result, changed) => {
        o.metrics.probeDuration.observe({ kind: target.spec.kind }, result.seconds);
        o.metrics.probeTotal.inc({ result: result.ok ? 'success' : 'failure' });
        if (changed) q.add(backendKeyOfTarget(target.key));
      },
      onLag: (seconds) => {
        o.metrics.probeScheduleLag.observe(seconds);
      },
      onError: (_target, err) => {
        o.onProbeError?.(err);
      },
    });

    const enqueue = (obj: CachedExternalBackend): void => {
      if (o.inScope(obj.metadata?.namespace ?? '')) q.add(objectKey(obj));
    };
    o.backends.addHandlers({
      add: enqueue,
      update: (_old, xb) => {
        enqueue(xb);
      },
      delete: enqueue,
    });
    const byService = (namespace: string | undefined, name: string | undefined): void => {
      if (namespace === undefined || name === undefined || !o.inScope(namespace)) return;
      for (const xb of o.backends.list(namespace))
        if (this.serviceNameOf(xb) === name) q.add(objectKey(xb));
    };
    const byOwner = (obj: V1Service | V1Endpoints | V1EndpointSlice): void => {
      const owner = controllerOwner(obj);
      const ns = obj.metadata?.namespace ?? '';
      if (owner?.kind === kind && o.inScope(ns)) q.add(`${ns}/${owner.name}`);
    };
    /** Handlers for an object related to backends by owner and by the Service it belongs to. */
    const related = <T extends V1Service | V1Endpoints | V1EndpointSlice>(
      name: (obj: T) => string | undefined,
    ) => {
      const on = (obj: T): void => {
        byOwner(obj);
        byService(obj.metadata?.namespace, name(obj));
      };
      return {
        add: on,
        update: (_old: T, obj: T) => {
          on(obj);
        },
        delete: on,
      };
    };
    o.services.addHandlers(related((s) => s.metadata?.name));
    o.endpoints.addHandlers(related((e) => e.metadata?.name));
    o.slices.addHandlers(related((s) => s.metadata?.labels?.['kubernetes.io/service-name']));
    const onPod = (pods: readonly (V1Pod | undefined)[]): void => {
      const ns = pods.find((p) => p !== undefined)?.metadata?.namespace ?? '';
      if (!o.inScope(ns)) return;
      for (const xb of o.backends.list(ns)) {
        const p = this.spec(xb);
        const selector = p.success ? p.data.podSelector : undefined;
        if (selector === undefined) continue;
        if (
          pods.some(
            (pod) => pod !== undefined && labelSelectorMatches(selector, pod.metadata?.labels),
          )
        )
          q.add(objectKey(xb));
      }
    };
    // Every backend depends on the policy; a namespace's backends on its labels.
    o.policies.addHandlers({
      add: () => {
        this.enqueueAll();
      },
      update: () => {
        this.enqueueAll();
      },
      delete: () => {
        this.enqueueAll();
      },
    });
    const byNamespace = (n: CachedNamespace): void => {
      const ns = n.metadata.name ?? '';
      if (o.inScope(ns)) for (const xb of o.backends.list(ns)) q.add(objectKey(xb));
    };
    o.namespaces.addHandlers({
      add: byNamespace,
      update: (before, after) => {
        if (JSON.stringify(before.metadata.labels) !== JSON.stringify(after.metadata.labels))
          byNamespace(after);
      },
      delete: byNamespace,
    });
    o.pods.addHandlers({
      add: (p) => {
        onPod([p]);
      },
      update: (a, b) => {
        onPod([a, b]);
      },
      delete: (p) => {
        onPod([p]);
      },
    });
  }

  run(): Promise<void> {
    return this.controller.run((key) => this.reconcile(key));
  }

  /** Queues every backend in scope: something they all depend on (the deny list) changed. */
  enqueueAll(): void {
    for (const xb of this.o.backends.list())
      if (this.o.inScope(xb.metadata?.namespace ?? '')) this.controller.queue.add(objectKey(xb));
  }

  async shutDown(): Promise<void> {
    this.controller.shutDown();
    await this.scheduler.stop();
  }

  private spec(xb: CachedExternalBackend): Parsed {
    let p = this.parsed.get(xb);
    if (p === undefined) {
      p = externalBackendSpec.safeParse(xb.spec);
      this.parsed.set(xb, p);
    }
    return p;
  }

  private serviceNameOf(xb: CachedExternalBackend): string | undefined {
    const p = this.spec(xb);
    return p.success ? (p.data.service.name ?? xb.metadata?.name) : undefined;
  }

  async reconcile(key: string): Promise<void> {
    const [namespace, name] = splitKey(key);
    const xb = this.o.backends.get(namespace, name);
    if (xb === undefined || xb.metadata?.deletionTimestamp !== undefined) {
      // Garbage collection removes what we own; only our own bookkeeping is left to drop.
      this.forget(key, namespace, name);
      return;
    }
    const ref: BackendRef = { namespace, name, uid: xb.metadata?.uid ?? '' };
    const memo = this.written.get(key);
    const previous =
      memo !== undefined && memo.before === xb.metadata?.resourceVersion
        ? memo.status
        : parseStatus(xb.status);
    const generation = xb.metadata?.generation ?? 0;

    const parsed = this.spec(xb);
    if (!parsed.success) {
      this.syncProbes(key, undefined, previous, () => undefined);
      const issue = parsed.error.issues[0];
      const message = `spec is invalid at ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`;
      await this.finish(xb, key, previous, {
        generation,
        previous,
        views: [],
        counts: { ready: 0, total: 0 },
        failOpen: false,
        problem: { reason: 'InvalidSpec', message },
        now: this.now(),
      });
      return;
    }
    const spec = parsed.data;
    const judge = this.judge(namespace, spec);
    const { health, unchecked } = this.syncProbes(key, spec, previous, judge);
    const { views, failOpen } = addressViews(spec, health, judge, {
      ips: unchecked,
      message: `not checked: namespace ${namespace} has reached its limit of ${String(this.o.maxProbeTargetsPerNamespace)} health-check targets; published not ready`,
    });
    if (unchecked.size > 0)
      this.o.events.event(
        { apiVersion, kind, namespace, name, uid: ref.uid },
        'Warning',
        'ProbeLimitReached',
        `${String(unchecked.size)} addresses are not checked and are published not ready: namespace ${namespace} has reached its limit of ${String(this.o.maxProbeTargetsPerNamespace)} health-check targets`,
      );
    const svcName = serviceName(ref, spec);
    const existing = this.o.services.get(namespace, svcName);
    const decision = decideService(ref, spec, existing);
    const pods = podSubsets(
      spec,
      existing ?? desiredService(ref, spec),
      this.o.pods.list(namespace),
    );
    const counts = publishedCounts(views, pods);

    let problem: { reason: Problem; message: string } | undefined =
      decision.action === 'refuse'
        ? { reason: decision.reason, message: decision.message }
        : this.conflict(ref, spec, svcName);
    let failure: unknown;
    if (problem === undefined) {
      try {
        await this.write(ref, spec, decision, views, pods);
      } catch (err) {
        if (err instanceof CacheLagError) throw err;
        if (err instanceof ForeignObjectError) {
          problem = { reason: 'EndpointsConflict', message: err.message };
          this.controller.queue.addAfter(key, foreignRecheckMs);
        } else {
          failure = err;
          problem = { reason: 'WriteFailed', message: errorMessage(err) };
        }
      }
    }
    await this.finish(xb, key, previous, {
      generation,
      previous,
      views,
      counts,
      failOpen,
      problem,
      now: this.now(),
    });
    if (failure !== undefined)
      throw failure instanceof Error ? failure : new Error(errorMessage(failure));
  }

  /** The address policy as cached; unreadable counts as invalid, so nothing is allowed. */
  private policy(): LoadedPolicy {
    if (!this.o.policies.hasSynced()) {
      const why = this.o.policies.failure()?.message ?? 'not read yet';
      return { state: 'invalid', message: `${policyKind}s cannot be read: ${why}` };
    }
    return loadPolicy(this.o.policies.get('', policyName));
  }

  /**
   * Why an address of this backend may not be published: the deny list first, then the policy.
   * Each address is judged once per reconcile (the judge is asked again by syncProbes and
   * addressViews).
   */
  private judge(namespace: string, spec: ExternalBackendSpec): Judge {
    const denied = denyListJudge(this.o.denyList);
    const ns = this.o.namespaces.hasSynced() ? this.o.namespaces.get('', namespace) : undefined;
    const allowed = policyJudge(this.policy(), {
      namespace,
      namespaceLabels: ns?.metadata.labels ?? (ns === undefined ? undefined : {}),
      ports: backendPorts(spec),
    });
    const memo = new Map<string, string | undefined>();
    return (ip) => {
      if (memo.has(ip)) return memo.get(ip);
      const why = denied(ip) ?? allowed(ip);
      memo.set(ip, why);
      return why;
    };
  }

  /**
   * Keeps the probe targets of this backend in line with its spec; returns their health by IP and
   * the addresses left unchecked because the namespace is at its probe-target limit (targets
   * already running keep their place: first come, first served).
   */
  private syncProbes(
    key: string,
    spec: ExternalBackendSpec | undefined,
    previous: ExternalBackendStatus | undefined,
    judge: Judge,
  ): { health: Map<string, AddressHealth>; unchecked: Set<string> } {
    const health = new Map<string, AddressHealth>();
    const unchecked = new Set<string>();
    const keep = new Set<string>();
    const hc = spec?.healthCheck;
    if (spec !== undefined && hc !== undefined) {
      const [namespace] = splitKey(key);
      const others = this.scheduler
        .keys()
        .filter((k) => k.startsWith(`${namespace}/`) && !k.startsWith(`${key}/`)).length;
      let room = Math.max(0, this.o.maxProbeTargetsPerNamespace - others);
      const before = new Map((previous?.addresses ?? []).map((a) => [a.ip, a.state]));
      for (const a of spec.addresses) {
        const ps = probeSpec(spec, a.ip);
        if (ps === undefined || judge(a.ip) !== undefined) continue;
        if (room === 0) {
          unchecked.add(a.ip);
          continue;
        }
        room--;
        const targetKey = `${key}/${a.ip}`;
        keep.add(targetKey);
        // Start from the published state, so a restart does not flap a known-bad address.
        const prev = before.get(a.ip);
        this.scheduler.upsert({
          key: targetKey,
          tenant: splitKey(key),
          spec: ps,
          intervalMs: hc.intervalSeconds * 1000,
          timeoutMs: hc.timeoutSeconds * 1000,
          thresholds: {
            healthyThreshold: hc.healthyThreshold,
            unhealthyThreshold: hc.unhealthyThreshold,
          },
          ...(prev === 'Healthy' || prev === 'Unhealthy' ? { initialState: prev } : {}),
        });
        const h = this.scheduler.health(targetKey);
        if (h !== undefined) health.set(a.ip, h);
      }
    }
    let freed = 0;
    for (const k of this.scheduler.keys())
      if (k.startsWith(`${key}/`) && !keep.has(k)) {
        this.scheduler.remove(k);
        freed++;
      }
    if (unchecked.size > 0) this.limited.add(key);
    else this.limited.delete(key);
    // Room freed under the limit: neighbours waiting for it may now check their addresses.
    if (freed > 0) {
      const [namespace] = splitKey(key);
      for (const other of this.limited)
        if (other !== key && splitKey(other)[0] === namespace) this.controller.queue.add(other);
    }
    return { health, unchecked };
  }

  /** An Endpoints or EndpointSlice by our names that this backend does not own. */
  private conflict(
    ref: BackendRef,
    spec: ExternalBackendSpec,
    svcName: string,
  ): { reason: Problem; message: string } | undefined {
    const ep = this.o.endpoints.get(ref.namespace, svcName);
    if (ownership(ep, ref) === 'foreign' && ep !== undefined) {
      return {
        reason: 'EndpointsConflict',
        message: `Endpoints ${svcName} already exists and ${describeManager(ep)}; outrigger will not overwrite it. Delete it to let this ExternalBackend publish the Service's endpoints`,
      };
    }
    for (const slice of desiredSlices(ref, spec, [])) {
      const cur = this.o.slices.get(ref.namespace, slice.metadata?.name ?? '');
      if (cur !== undefined && ownership(cur, ref) === 'foreign') {
        return {
          reason: 'EndpointsConflict',
          message: `EndpointSlice ${slice.metadata?.name ?? ''} already exists and ${describeManager(cur)}; outrigger will not overwrite it`,
        };
      }
    }
    return undefined;
  }

  private async write(
    ref: BackendRef,
    spec: ExternalBackendSpec,
    decision: ServiceDecision,
    views: Parameters<typeof desiredSlices>[2],
    pods: Parameters<typeof desiredSlices>[3],
  ): Promise<void> {
    const w = this.o.writer;
    const xbRef = { apiVersion, kind, namespace: ref.namespace, name: ref.name, uid: ref.uid };
    if (decision.action === 'create') {
      await this.create('Service', decision.service);
      this.o.events.event(
        xbRef,
        'Normal',
        'ServiceCreated',
        `Created selectorless Service ${decision.service.metadata?.name ?? ''}`,
      );
    } else if (decision.action === 'update') {
      await w.setServicePorts(
        ref.namespace,
        serviceName(ref, spec),
        decision.service.spec?.ports ?? [],
      );
    }

    // Read again after the Service write: the conflict check before it saw an older cache, and
    // an object that appeared meanwhile may be someone else's.
    const ep = desiredEndpoints(ref, spec, views, pods);
    const cachedEp = this.o.endpoints.get(ref.namespace, ep.metadata?.name ?? '');
    const currentEp = this.known(ref, 'Endpoints', cachedEp);
    if (currentEp === undefined) await this.create('Endpoints', ep);
    else if (!endpointsUpToDate(currentEp, ep))
      await this.applyOwned(ref, 'Endpoints', ep, currentEp, cachedEp?.metadata?.resourceVersion);

    const slices = desiredSlices(ref, spec, views, pods);
    for (const slice of slices) {
      const cached = this.o.slices.get(ref.namespace, slice.metadata?.name ?? '');
      const current = this.known(ref, 'EndpointSlice', cached);
      if (current === undefined) await this.createSlice(ref, slice);
      else if (!sliceUpToDate(current, slice))
        await this.applyOwned(
          ref,
          'EndpointSlice',
          slice,
          current,
          cached?.metadata?.resourceVersion,
        );
    }

    // Objects this backend owns under names it no longer wants (a family that went away, a
    // renamed Service).
    const keep = {
      Service: decision.action === 'none' && decision.adopted ? [] : [serviceName(ref, spec)],
      Endpoints: [ep.metadata?.name ?? ''],
      EndpointSlice: slices.map((s) => s.metadata?.name ?? ''),
    };
    const owned: [OwnedKind, readonly (V1Service | V1Endpoints | V1EndpointSlice)[]][] = [
      ['EndpointSlice', this.o.slices.list(ref.namespace)],
      ['Endpoints', this.o.endpoints.list(ref.namespace)],
      ['Service', this.o.services.list(ref.namespace)],
    ];
    for (const [k, objs] of owned) {
      for (const obj of objs) {
        const n = obj.metadata?.name ?? '';
        if (ownership(obj, ref) === 'ours' && !keep[k].includes(n))
          await w.delete(k, ref.namespace, n, obj.metadata?.uid ?? '');
      }
    }
  }

  /**
   * The object as it is on the server, as far as outrigger knows: the cached one, or, while the
   * cache still shows the version outrigger's own last apply replaced, what that apply wrote. A
   * lagging watch must neither hide outrigger's writes (so that a change back looks like no
   * change) nor make every next apply fail its precondition.
   */
  private known<T extends V1Endpoints | V1EndpointSlice>(
    ref: BackendRef,
    k: 'Endpoints' | 'EndpointSlice',
    cached: T | undefined,
  ): T | undefined {
    if (cached === undefined) return undefined;
    const memos = this.applied.get(`${ref.namespace}/${ref.name}`);
    const memoKey = `${k}/${cached.metadata?.name ?? ''}`;
    const memo = memos?.get(memoKey);
    if (memo === undefined) return cached;
    if (memo.before !== cached.metadata?.resourceVersion) {
      // The cache has moved on: it knows better than the memo now.
      memos?.delete(memoKey);
      return cached;
    }
    return memo.wrote as T;
  }

  /**
   * Server-side apply (forced) of an object this backend owns. Forcing takes every field, so it
   * must never reach an object someone else owns: the apply carries the resourceVersion of
   * `current` (see known()) as a precondition, and an object replaced since (by anyone) makes it
   * fail with 409 and retry from a fresh cache instead of taking the object over. `cachedVersion`
   * is what the cache shows, remembered to tell when the cache has caught up.
   */
  private async applyOwned<T extends V1Endpoints | V1EndpointSlice>(
    ref: BackendRef,
    k: 'Endpoints' | 'EndpointSlice',
    want: T,
    current: T,
    cachedVersion: string | undefined,
  ): Promise<void> {
    const name = want.metadata?.name ?? '';
    if (ownership(current, ref) !== 'ours')
      throw new ForeignObjectError(
        `${k} ${name} already exists and ${describeManager(current)}; outrigger will not overwrite it. Delete it to let this ExternalBackend publish the Service's endpoints`,
      );
    const backend = `${ref.namespace}/${ref.name}`;
    const memos = this.applied.get(backend) ?? new Map<string, AppliedMemo>();
    this.applied.set(backend, memos);
    const memoKey = `${k}/${name}`;
    memos.delete(memoKey);
    const resourceVersion = current.metadata?.resourceVersion;
    try {
      const after = await this.o.writer.apply(k, {
        ...want,
        metadata: {
          ...want.metadata,
          ...(resourceVersion !== undefined ? { resourceVersion } : {}),
        },
      });
      if (after !== undefined && cachedVersion !== undefined)
        memos.set(memoKey, {
          before: cachedVersion,
          wrote: { ...want, metadata: { ...want.metadata, resourceVersion: after } },
        });
    } catch (err) {
      if (isConflict(err))
        throw new CacheLagError(`${k} ${name} was changed by someone else since it was read`);
      throw err;
    }
  }

  /**
   * Creates a slice. One already there under that name is outside the slice cache (which holds
   * only slices with outrigger's label): if this backend owns it, someone changed its labels by
   * hand and they are put back (it would feed kube-proxy stale endpoints otherwise); if someone
   * else does, it is left alone and reported; if it has our labels, the cache lags.
   */
  private async createSlice(ref: BackendRef, slice: V1EndpointSlice): Promise<void> {
    const name = slice.metadata?.name ?? '';
    try {
      await this.o.writer.create('EndpointSlice', slice);
      return;
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    const existing = await this.o.writer.findSlice(ref.namespace, name);
    if (existing === undefined)
      throw new CacheLagError(`EndpointSlice ${name} was deleted while being created`);
    if (ownership(existing, ref) !== 'ours')
      throw new ForeignObjectError(
        `EndpointSlice ${name} already exists and ${describeManager(existing)}; outrigger will not overwrite it. Delete it to let this ExternalBackend publish the Service's endpoints`,
      );
    if (existing.metadata?.labels?.[labelSliceManagedBy] === managerName)
      throw new CacheLagError(`EndpointSlice ${name} exists but is not in the cache yet`);
    await this.applyOwned(ref, 'EndpointSlice', slice, existing, undefined);
    this.o.events.event(
      { apiVersion, kind, namespace: ref.namespace, name: ref.name, uid: ref.uid },
      'Warning',
      'EndpointSliceRestored',
      `EndpointSlice ${name} had lost outrigger's labels (changed by hand?); they are restored, so that it is kept up to date again`,
    );
  }

  /** Creates, turning "already exists" into a quiet retry: the cache has not caught up yet. */
  private async create(
    k: OwnedKind,
    obj: V1Service | V1Endpoints | V1EndpointSlice,
  ): Promise<void> {
    try {
      await this.o.writer.create(k, obj);
    } catch (err) {
      if (isAlreadyExists(err))
        throw new CacheLagError(
          `${k} ${obj.metadata?.name ?? ''} exists but is not in the cache yet`,
        );
      throw err;
    }
  }

  /** Writes status when it changed; Events for address and condition transitions; metrics. */
  private async finish(
    xb: CachedExternalBackend,
    key: string,
    previous: ExternalBackendStatus | undefined,
    input: Parameters<typeof buildStatus>[0],
  ): Promise<void> {
    const { namespace = '', name = '', uid = '' } = xb.metadata ?? {};
    const ref = { apiVersion, kind, namespace, name, uid };
    for (const state of addressStates) {
      this.o.metrics.backendAddresses.set(
        { namespace, name, state: state.toLowerCase() },
        input.views.filter((v) => v.state === state).length,
      );
    }
    for (const e of transitionEvents(addressTransitions(previous, input.views, input.failOpen)))
      this.o.events.event(ref, e.type, e.reason, e.message);
    const ready = readyCondition(input);
    const before = previous?.conditions?.find((c) => c.type === 'Ready');
    if (before?.reason !== ready.reason) {
      if (ready.status === 'False')
        this.o.events.event(ref, 'Warning', ready.reason, ready.message);
      else if (before !== undefined) this.o.events.event(ref, 'Normal', 'Ready', ready.message);
    }

    const status = buildStatus(input);
    if (statusEqual(status, previous)) return;
    await this.o.writer.patchStatus(namespace, name, status);
    this.written.set(key, { before: xb.metadata?.resourceVersion ?? '', status });
  }

  private forget(key: string, namespace: string, name: string): void {
    this.syncProbes(key, undefined, undefined, () => undefined);
    this.written.delete(key);
    this.applied.delete(key);
    for (const state of addressStates)
      this.o.metrics.backendAddresses.remove({ namespace, name, state: state.toLowerCase() });
  }
}
