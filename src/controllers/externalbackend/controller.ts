// The ExternalBackend reconciler: gathers the CR, its Service, Endpoints, EndpointSlices, selected
// pods and probe health from caches; plans every change with the pure planBackend; applies the
// plan in one place; writes status from the outcome.
import { labelSliceManagedBy, managerName } from '../../api/names.ts';
import type { V1EndpointSlice, V1Endpoints, V1Service } from '@kubernetes/client-node';
import {
  maxProbeSourceValueBytes,
  type CachedPod,
  type CachedProbeSource,
  type CachedService,
} from '../../runtime/cached.ts';
import {
  ParsedRefs,
  probeRefsOf,
  type ProbeRef,
  type ProbeRefs,
} from '../../health/kinds/index.ts';
import { Controller, done, errorMessage } from '../../runtime/runner.ts';
import {
  denyListJudge,
  ownership,
  publishedAddresses,
  serviceName,
  type BackendRef,
  type Judge,
} from './desired.ts';
import {
  foreignMessage,
  planBackend,
  type BackendPlan,
  type BackendWorld,
  type OwnedKind,
} from './plan.ts';
import { parseDrainAnnotation } from './drain.ts';
import { parsedSpec, type ParsedSpec } from '../../api/parsed.ts';
import { nextCertificateCheckMs, soonestExpiry } from './certificates.ts';
import {
  adoptEndpointsAnnotation,
  apiVersion,
  drainAnnotation,
  kind,
  type ExternalBackendSpec,
} from '../../api/externalbackend.ts';
import { type ExternalBackendStatus } from '../../api/externalbackendstatus.ts';
import { parseStatus, planStatus, readyCondition, type Problem } from './status.ts';
import { ProbeScheduler, type Target } from '../../health/scheduler.ts';
import type { LookupOutcome, Resolution, ResolutionLimits } from '../../dns/resolution.ts';
import { NameResolver } from '../../dns/resolver.ts';
import type { AddressHealth } from '../../health/state.ts';
import { annotationOverCapacity } from '../../endpoints/desired.ts';
import { labelSelectorMatches } from '../../runtime/labels.ts';
import type { BackendWriter } from './writer.ts';
import { isAlreadyExists, isConflict } from './writer.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import { isPermanent, type Informer, type ListFailure } from '../../runtime/informer.ts';
import { objectKey, splitKey } from '../../runtime/keys.ts';
import type { CachedExternalBackend, CachedPolicy } from '../../api/resources.ts';
import type { CachedNamespace } from '../../runtime/transforms.ts';
import {
  backendPorts,
  frozenBecause,
  nodeAddressGrant,
  policyJudge,
  type LoadedPolicy,
} from '../../policy/evaluate.ts';
import { readPolicies } from '../policy/controller.ts';
import type { Logger } from '../../runtime/log.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import type { DenyList } from '../../net/denylist.ts';

export const controllerName = 'externalbackend';

export interface ExternalBackendControllerOptions {
  readonly backends: Informer<CachedExternalBackend>;
  readonly services: Informer<CachedService>;
  readonly endpoints: Informer<V1Endpoints>;
  /** Only the slices outrigger manages (label-selected watch). */
  readonly slices: Informer<V1EndpointSlice>;
  /**
   * Pods, where a backend selects them (and selector mode's scope); undefined when neither
   * spec.podSelector is served nor selector mode runs (then no pods are watched at all).
   */
  readonly pods: Informer<CachedPod> | undefined;
  /** Whether spec.podSelector is served (--pod-selector); default: whenever pods is given. */
  readonly podSelector?: boolean;
  /**
   * The ClusterRole a namespace binds to let checks read its Secrets and ConfigMaps
   * (--health-check-reader-role), named in the status of a check refused that read.
   */
  readonly healthCheckReaderRole?: string;
  /** The ServiceAccount outrigger runs as ("<namespace>:<name>"), when known, for that hint. */
  readonly serviceAccount?: string;
  /** ExternalBackendPolicies (there is at most one, "cluster") and Namespaces, for the policy. */
  readonly policies: Informer<CachedPolicy>;
  readonly namespaces: Informer<CachedNamespace>;
  /**
   * Secrets and ConfigMaps labelled for health checks (probeRefLabel), in the namespaces whose
   * backends name one: what checks read their CA bundles and header values from.
   */
  readonly secrets: Informer<CachedProbeSource>;
  readonly configMaps: Informer<CachedProbeSource>;
  /** Most health-check targets one namespace may have. */
  readonly maxProbeTargetsPerNamespace: number;
  /** A certificate expiring within this long makes CertificateExpiringSoon True. */
  readonly certificateWarningMs: number;
  /** Most endpoints in one EndpointSlice (--max-endpoints-per-slice). */
  readonly maxEndpointsPerSlice: number;
  /**
   * After a status write, further ones for the same backend wait this long, so that the address
   * transitions of a burst (a subnet going dark) make one write and one Event per reason. Endpoints
   * and slices are never held back; a spec change (new generation) is written at once.
   */
  readonly statusBatchMs: number;
  readonly writer: BackendWriter;
  readonly events: EventRecorder;
  /** The current deny list; it changes as cluster ranges come and go (call enqueueAll then). */
  readonly denyList: Pick<DenyList, 'denies' | 'nodeAddress'>;
  readonly probeConcurrency: number;
  /** An error escaped a probe (a bug): logged and counted by the caller. */
  readonly onProbeError?: (err: unknown) => void;
  /** DNS for spec.dnsNames: the one lookup function (see dns/lookup.ts) and its limits. */
  readonly dns: {
    readonly lookup: (name: string) => Promise<LookupOutcome>;
    readonly limits: ResolutionLimits;
    readonly concurrency: number;
    /** An unchanged answer is reported (and its resolvedAt written) at most this often. */
    readonly refreshMs: number;
  };
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

/** The longest delay a timer takes (about 24.8 days); a longer wait is made of several. */
const maxTimerMs = 2 ** 31 - 1;

/** How soon a backend whose namespace's caches are still filling looks again. */
const cacheWaitMs = 100;

/** How long a failing Secret or ConfigMap list may hold a backend back (see listFailure). */
const cacheFailureGraceMs = 30_000;

/**
 * What a check says when its namespace has not granted outrigger reads of its Secrets or
 * ConfigMaps: the grant is a RoleBinding the namespace's owner creates (the consent, enforced by
 * the API server), and the message gives the command. The ServiceAccount is the one the API server
 * names in its refusal, so the command binds whoever outrigger really runs as.
 */
export function notGranted(
  kind: ProbeRef['kind'],
  namespace: string,
  f: ListFailure,
  role = 'outrigger-health-check-reader',
  self?: string,
): string {
  // The message may carry the API server's Status as JSON text, its quotes escaped once or twice.
  const sa = /User \\*"system:serviceaccount:([^:"\\]+):([^:"\\]+)\\*"/.exec(f.message);
  const subject =
    sa !== null
      ? `${sa[1] ?? ''}:${sa[2] ?? ''}`
      : (self ?? '<outrigger-namespace>:<outrigger-serviceaccount>');
  return `outrigger may not read ${kind}s in namespace ${namespace} (403 Forbidden); to let health checks read the labelled ones, run: kubectl create rolebinding outrigger-health-check-reader --namespace=${namespace} --clusterrole=${role} --serviceaccount=${subject}`;
}

/** An apply outrigger made: the resourceVersion the cache showed then, and what was written. */
interface AppliedMemo {
  readonly before: string;
  readonly wrote: V1Endpoints | V1EndpointSlice;
}

const addressStates = ['Healthy', 'Unhealthy', 'Unknown', 'Denied'] as const;

/** "<namespace>/<name>" of the ExternalBackend a probe target ("<ns>/<name>/<ip>") belongs to. */
function backendKeyOfTarget(target: string): string {
  return target.slice(0, target.lastIndexOf('/'));
}

function controllerOwner(obj: {
  metadata?: {
    ownerReferences?: readonly { kind: string; name: string; controller?: boolean }[];
  };
}): { kind: string; name: string } | undefined {
  return obj.metadata?.ownerReferences?.find((o) => o.controller === true);
}

export class ExternalBackendController {
  readonly controller: Controller;
  readonly scheduler: ProbeScheduler;
  readonly resolver: NameResolver;
  private readonly o: ExternalBackendControllerOptions;
  private readonly now: () => Date;
  /**
   * The status we last wrote and the resourceVersion it replaced: while the cache still shows that
   * version, ours is the truth (no duplicate Events or writes from a lagging cache).
   */
  private readonly written = new Map<string, { before: string; status: ExternalBackendStatus }>();
  /** What checks made of the labelled Secrets and ConfigMaps they name, per cached version. */
  private readonly parsedRefs = new ParsedRefs();
  /**
   * Per backend key, per object it owns ("<kind>/<name>"): outrigger's last apply of it, while
   * the cache may not have seen it yet (see known()).
   */
  private readonly applied = new Map<string, Map<string, AppliedMemo>>();
  /** Backends with addresses left unchecked by the namespace's probe-target limit. */
  private readonly limited = new Set<string>();
  /** When each backend's status was last written (ms). */
  private readonly statusWrittenAt = new Map<string, number>();
  /** The Ready series of outrigger_backend_ready_status each backend shows, to remove on change. */
  private readonly readySeries = new Map<
    string,
    { namespace: string; name: string; status: string; reason: string }
  >();
  /** Each backend's probe targets, and how many each namespace has (its limit's count). */
  private readonly targets = new Map<string, Set<string>>();
  private readonly targetsPerNamespace = new Map<string, number>();

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

    this.resolver = new NameResolver({
      ...o.dns,
      onChange: (_name, owners) => {
        for (const owner of owners) q.add(owner);
      },
      onLookup: (outcome, seconds) => {
        const result =
          outcome.ips.length > 0 && outcome.errors.length === 0 ? 'success' : 'failure';
        o.metrics.dnsLookups.inc({ result });
        o.metrics.dnsLookupDuration.observe(seconds);
      },
      onError: (_name, err) => {
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
    const byOwner = (obj: CachedService | V1Endpoints | V1EndpointSlice): void => {
      const owner = controllerOwner(obj);
      const ns = obj.metadata?.namespace ?? '';
      if (owner?.kind === kind && o.inScope(ns)) q.add(`${ns}/${owner.name}`);
    };
    /** Handlers for an object related to backends by owner and by the Service it belongs to. */
    const related = <T extends CachedService | V1Endpoints | V1EndpointSlice>(
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
    const onPod = (pods: readonly (CachedPod | undefined)[]): void => {
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
    // A Secret or ConfigMap a check names: the backends of its namespace that name it.
    const onSource =
      (k: ProbeRef['kind']) =>
      (obj: CachedProbeSource): void => {
        const ns = obj.metadata?.namespace ?? '';
        const n = obj.metadata?.name;
        if (!o.inScope(ns)) return;
        for (const xb of o.backends.list(ns))
          if (this.probeRefs(xb).some((r) => r.kind === k && r.name === n)) q.add(objectKey(xb));
      };
    for (const [inf, k] of [
      [o.secrets, 'Secret'],
      [o.configMaps, 'ConfigMap'],
    ] as const) {
      const on = onSource(k);
      // A namespace's list starting or ceasing to fail (a grant made or withdrawn): its backends
      // that read this kind say so (see sourcesLost and notGranted).
      inf.onFailureChange((ns) => {
        for (const xb of o.backends.list(ns))
          if (
            o.inScope(xb.metadata?.namespace ?? '') &&
            this.probeRefs(xb).some((r) => r.kind === k)
          )
            q.add(objectKey(xb));
      });
      inf.addHandlers({
        add: on,
        update: (_old, obj) => {
          on(obj);
        },
        delete: on,
      });
    }
    o.pods?.addHandlers({
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
    return this.controller.run(async (key) => {
      await this.reconcile(key);
      return done;
    });
  }

  /** Queues every backend in scope: something they all depend on (the deny list) changed. */
  enqueueAll(): void {
    for (const xb of this.o.backends.list())
      if (this.o.inScope(xb.metadata?.namespace ?? '')) this.controller.queue.add(objectKey(xb));
  }

  async shutDown(): Promise<void> {
    this.controller.shutDown();
    await Promise.all([this.scheduler.stop(), this.resolver.stop()]);
  }

  private spec(xb: CachedExternalBackend): ParsedSpec {
    return parsedSpec(xb);
  }

  /** The Secret and ConfigMap keys the backend's health check names. */
  private probeRefs(xb: CachedExternalBackend): readonly ProbeRef[] {
    const p = this.spec(xb);
    return p.success && p.data.healthCheck !== undefined ? probeRefsOf(p.data.healthCheck) : [];
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
    const now = this.now();

    const parsed = this.spec(xb);
    if (!parsed.success) {
      this.applyProbes(key, []);
      this.resolver.want(key, []);
      const issue = parsed.error.issues[0];
      const message = `spec is invalid at ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`;
      await this.finish(xb, key, {
        generation,
        previous,
        views: [],
        counts: { ready: 0, total: 0 },
        failOpen: false,
        problem: { reason: 'InvalidSpec', message },
        now,
      });
      return;
    }
    if (parsed.data.podSelector !== undefined && !this.podSelectorServed()) {
      // Admission refuses podSelector in such an install; one that got past it (created before
      // the switch, or with the admission policy off) is held as it is, neither published anew
      // nor withdrawn, and says why: outrigger holds no permission to read pods.
      this.applyProbes(key, []);
      this.resolver.want(key, []);
      await this.finish(xb, key, {
        generation,
        previous,
        views: [],
        counts: { ready: 0, total: 0 },
        failOpen: false,
        problem: {
          reason: 'PodSelectorDisabled',
          message:
            'spec.podSelector is not enabled in this installation (outrigger runs with --pod-selector=false, chart value podSelector.enabled, and may not read pods): remove podSelector, or ask the platform team to enable it; what was published before stays as it is',
        },
        now,
      });
      return;
    }
    if (!this.cachesCover(namespace, parsed.data, this.probeRefs(xb))) {
      // The namespace has only just started being watched (its first backend): publishing now
      // would publish without the pods or the Service, so wait for its caches.
      this.controller.queue.addAfter(key, cacheWaitMs);
      return;
    }
    const plan = planBackend(this.gather(key, ref, xb, parsed.data, previous, now));
    const outcome = await this.apply(key, ref, plan);
    await this.finish(xb, key, {
      generation,
      service: serviceName(ref, parsed.data),
      previous,
      views: plan.views,
      counts: plan.counts,
      failOpen: plan.failOpen,
      names: plan.resolutions,
      drainUnmatched: plan.drainUnmatched,
      leftOut: plan.leftOut,
      checkRefused: plan.checkRefused,
      checkSourcesLost: this.sourcesLost(namespace, this.probeRefs(xb)),
      policyFrozen: plan.policyFrozen,
      nodeGrants: plan.nodeGrants,
      foreignEndpoints: plan.foreignEndpoints,
      problem: outcome.problem,
      now,
    });
    if (outcome.failure !== undefined)
      throw outcome.failure instanceof Error
        ? outcome.failure
        : new Error(errorMessage(outcome.failure));
  }

  private podSelectorServed(): boolean {
    return this.o.pods !== undefined && this.o.podSelector !== false;
  }

  private cachesCover(
    namespace: string,
    spec: ExternalBackendSpec,
    refs: readonly ProbeRef[],
  ): boolean {
    // A Secret or ConfigMap cache that cannot list in this namespace does not hold the backend
    // back for long: its checks fail saying why instead (see refsOf).
    const refsCovered = (inf: Informer<CachedProbeSource>, k: ProbeRef['kind']): boolean =>
      !refs.some((r) => r.kind === k) ||
      inf.hasSyncedNamespace(namespace) ||
      this.listFailure(inf, namespace) !== undefined;
    return (
      this.o.services.hasSyncedNamespace(namespace) &&
      this.o.endpoints.hasSyncedNamespace(namespace) &&
      (spec.podSelector === undefined || this.o.pods?.hasSyncedNamespace(namespace) === true) &&
      refsCovered(this.o.secrets, 'Secret') &&
      refsCovered(this.o.configMaps, 'ConfigMap')
    );
  }

  /**
   * Why a namespace's Secrets or ConfigMaps cannot be listed, once that stands in for the cache:
   * at once when the API server refuses for good (no RBAC), after cacheFailureGraceMs of any
   * other failure (one Secret the API server cannot decrypt fails the whole list until removed).
   */
  private listFailure(
    inf: Informer<CachedProbeSource>,
    namespace: string,
  ): ListFailure | undefined {
    const f = inf.failure(namespace);
    if (f === undefined) return undefined;
    return isPermanent(f) || this.now().getTime() - f.since >= cacheFailureGraceMs ? f : undefined;
  }

  /**
   * Why the Secrets or ConfigMaps a check has already read can no longer be listed (403: the
   * namespace's grant was withdrawn, or an upgrade stopped reading them cluster-wide). The cache
   * keeps what it read, so the check goes on unchanged; status says so before a restart would
   * turn it into a check that cannot run.
   */
  private sourcesLost(namespace: string, refs: readonly ProbeRef[]): string | undefined {
    for (const r of refs) {
      const inf = r.kind === 'Secret' ? this.o.secrets : this.o.configMaps;
      const f = inf.failure(namespace);
      if (f?.code === 403 && inf.get(namespace, r.name) !== undefined)
        return `${r.kind} ${r.name}: ${notGranted(r.kind, namespace, f, this.o.healthCheckReaderRole, this.o.serviceAccount)}`;
    }
    return undefined;
  }

  /** What the backend's checks read, from the labelled Secrets and ConfigMaps of its namespace. */
  private refsOf(namespace: string): ProbeRefs {
    const cache = (r: ProbeRef): Informer<CachedProbeSource> =>
      r.kind === 'Secret' ? this.o.secrets : this.o.configMaps;
    return {
      read: (r) => cache(r).get(namespace, r.name)?.data[r.key],
      parsed: (r, parse) => {
        const source = cache(r).get(namespace, r.name);
        const value = source?.data[r.key];
        return source === undefined || value === undefined
          ? undefined
          : this.parsedRefs.get(source, r.key, value, parse);
      },
      unavailable: (r) => {
        const inf = cache(r);
        if (inf.get(namespace, r.name)?.oversized?.includes(r.key) === true)
          return `key ${r.key} is larger than ${String(maxProbeSourceValueBytes / 1024)} KiB, more than any check reads`;
        if (inf.hasSyncedNamespace(namespace)) return undefined;
        const f = this.listFailure(inf, namespace);
        if (f === undefined) return undefined;
        if (f.code === 403)
          return notGranted(
            r.kind,
            namespace,
            f,
            this.o.healthCheckReaderRole,
            this.o.serviceAccount,
          );
        return `${r.kind}s cannot be listed: ${f.message}`;
      },
    };
  }

  /** Reads everything one reconcile depends on from the caches and the scheduler; no side effects. */
  private gather(
    key: string,
    ref: BackendRef,
    xb: CachedExternalBackend,
    spec: ExternalBackendSpec,
    previous: ExternalBackendStatus | undefined,
    now: Date,
  ): BackendWorld {
    const { namespace } = ref;
    const svcName = serviceName(ref, spec);
    const mine = this.targets.get(key) ?? new Set<string>();
    const health = new Map<string, AddressHealth>();
    for (const k of mine) {
      const h = this.scheduler.health(k);
      if (h !== undefined) health.set(k, h);
    }
    const neighbours = (this.targetsPerNamespace.get(namespace) ?? 0) - mine.size;
    const cachedEp = this.o.endpoints.get(namespace, svcName);
    const slices = this.o.slices
      .list(namespace)
      .map((s) => this.known(ref, 'EndpointSlice', s) ?? s);
    const resolutions = new Map<string, Resolution>();
    for (const n of spec.dnsNames) {
      const r = this.resolver.get(n.name);
      if (r !== undefined) resolutions.set(n.name, r);
    }
    return {
      ref,
      spec,
      previous,
      resolutions,
      drainEntries: parseDrainAnnotation(xb.metadata?.annotations?.[drainAnnotation]),
      ...this.judge(ref, spec, slices),
      refs: this.refsOf(namespace),
      health,
      probeRoom: Math.max(0, this.o.maxProbeTargetsPerNamespace - neighbours),
      probeLimit: this.o.maxProbeTargetsPerNamespace,
      service: this.o.services.get(namespace, svcName),
      endpoints: this.known(ref, 'Endpoints', cachedEp),
      slices,
      ownedServices: this.o.services.list(namespace).filter((s) => ownership(s, ref) === 'ours'),
      ownedEndpoints: this.o.endpoints.list(namespace).filter((e) => ownership(e, ref) === 'ours'),
      pods: spec.podSelector === undefined ? [] : (this.o.pods?.list(namespace) ?? []),
      adoptEndpoints: xb.metadata?.annotations?.[adoptEndpointsAnnotation] === 'true',
      maxEndpointsPerSlice: this.o.maxEndpointsPerSlice,
      now: now.getTime(),
    };
  }

  /**
   * The grants as cached. Unreadable grants are missing (which freezes decisions), never "no
   * rules": a lost permission during an uninstall must not withdraw every tenant's addresses.
   */
  private policy(): LoadedPolicy {
    return readPolicies(this.o.policies, this.now().getTime());
  }

  /**
   * Why an address of this backend may not be published: the deny list first, then the policy.
   * Each address is judged once per reconcile (the planner asks again for probes and views).
   */
  private judge(
    ref: BackendRef,
    spec: ExternalBackendSpec,
    slices: readonly V1EndpointSlice[],
  ): { judge: Judge; policyFrozen?: string; nodeGrants: (ip: string) => string | undefined } {
    const { namespace } = ref;
    const denied = denyListJudge(this.o.denyList);
    const ns = this.o.namespaces.hasSynced() ? this.o.namespaces.get('', namespace) : undefined;
    const published = publishedAddresses(slices, ref, spec);
    const subject = {
      namespace,
      namespaceLabels: ns?.metadata.labels ?? (ns === undefined ? undefined : {}),
      ports: backendPorts(spec),
      published,
    };
    const policy = this.policy();
    const allowed = policyJudge(policy, subject);
    const frozen = frozenBecause(policy, subject);
    const nodeGrant = nodeAddressGrant(policy, subject);
    const granted = new Map<string, string>();
    // A Node's address is denied like the rest of the cluster's space unless a rule grants Node
    // addresses for this namespace, address and every port of the backend; even then the deny
    // list is asked again with the grant, which keeps the API server's ports and every other
    // cluster range out. Admission never sees Node addresses (it judges CIDRs only, and the deny
    // list is the reconciler's alone): such an address passes it whenever a rule's CIDRs cover it.
    const nodeJudge = (ip: string, why: string): string | undefined => {
      const node = this.o.denyList.nodeAddress(ip);
      if (node === undefined) return why;
      const d = nodeGrant(ip);
      if ('denied' in d) return `${why}: ${d.denied}`;
      const still = this.o.denyList.denies(ip, { ports: subject.ports });
      if (still !== undefined) return `denied: ${still}`;
      granted.set(ip, `${node}, by ${d.by}`);
      return undefined;
    };
    const memo = new Map<string, string | undefined>();
    const judge: Judge = (ip) => {
      if (memo.has(ip)) return memo.get(ip);
      const deny = denied(ip);
      const why = deny === undefined ? allowed(ip) : nodeJudge(ip, deny);
      memo.set(ip, why);
      return why;
    };
    const nodeGrants = (ip: string): string | undefined => {
      judge(ip);
      return granted.get(ip);
    };
    return { judge, nodeGrants, ...(frozen !== undefined ? { policyFrozen: frozen } : {}) };
  }

  /**
   * Makes the scheduler run exactly these targets for the backend. Room freed under the
   * namespace's limit lets neighbours that were waiting for it check their addresses.
   */
  private applyProbes(key: string, probes: readonly Target[]): void {
    const [namespace] = splitKey(key);
    const before = this.targets.get(key) ?? new Set<string>();
    const after = new Set(probes.map((t) => t.key));
    for (const t of probes) this.scheduler.upsert(t);
    let freed = 0;
    for (const k of before)
      if (!after.has(k)) {
        this.scheduler.remove(k);
        freed++;
      }
    if (after.size > 0) this.targets.set(key, after);
    else this.targets.delete(key);
    const count = (this.targetsPerNamespace.get(namespace) ?? 0) - before.size + after.size;
    if (count > 0) this.targetsPerNamespace.set(namespace, count);
    else this.targetsPerNamespace.delete(namespace);
    if (freed > 0)
      for (const other of this.limited)
        if (other !== key && splitKey(other)[0] === namespace) this.controller.queue.add(other);
  }

  /**
   * Performs a plan: probe targets first (they feed the next reconcile's views), then the writes
   * in order Service, Endpoints, slices, deletes. Returns what stopped it from publishing.
   */
  private async apply(
    key: string,
    ref: BackendRef,
    plan: BackendPlan,
  ): Promise<{ problem?: { reason: Problem; message: string }; failure?: unknown }> {
    this.applyProbes(key, plan.probes);
    this.resolver.want(key, plan.names);
    if (plan.unchecked.size > 0) {
      this.limited.add(key);
      this.o.events.event(
        this.eventRef(ref),
        'Warning',
        'ProbeLimitReached',
        `${String(plan.unchecked.size)} addresses are not checked and are published not ready: namespace ${ref.namespace} has reached its limit of ${String(this.o.maxProbeTargetsPerNamespace)} health-check targets`,
      );
    } else this.limited.delete(key);
    if (plan.refused !== undefined) return { problem: plan.refused };
    try {
      await this.write(ref, plan);
      return {};
    } catch (err) {
      if (err instanceof CacheLagError) throw err;
      if (err instanceof ForeignObjectError) {
        this.controller.queue.addAfter(key, foreignRecheckMs);
        return { problem: { reason: 'EndpointsConflict', message: err.message } };
      }
      return { problem: { reason: 'WriteFailed', message: errorMessage(err) }, failure: err };
    }
  }

  private eventRef(ref: BackendRef) {
    return { apiVersion, kind, namespace: ref.namespace, name: ref.name, uid: ref.uid };
  }

  private async write(ref: BackendRef, plan: BackendPlan): Promise<void> {
    const w = this.o.writer;
    if (plan.service?.op === 'create') {
      await this.create('Service', plan.service.service);
      this.o.events.event(
        this.eventRef(ref),
        'Normal',
        'ServiceCreated',
        `Created selectorless Service ${plan.service.service.metadata?.name ?? ''}`,
      );
    } else if (plan.service?.op === 'ports') {
      await w.setServicePorts(ref.namespace, plan.service.name, plan.service.ports);
    }
    if (plan.endpoints?.op === 'create') await this.create('Endpoints', plan.endpoints.want);
    else if (plan.endpoints?.op === 'apply')
      await this.applyOwned(ref, 'Endpoints', plan.endpoints.want, plan.endpoints.current);
    else if (plan.endpoints?.op === 'adopt') {
      await this.applyOwned(ref, 'Endpoints', plan.endpoints.want, plan.endpoints.current, true);
      this.o.events.event(
        this.eventRef(ref),
        'Normal',
        'EndpointsAdopted',
        `Took over Endpoints ${plan.endpoints.want.metadata?.name ?? ''} in place (${adoptEndpointsAnnotation}): it is now owned by this ExternalBackend and marked skip-mirror, so the mirrored EndpointSlice goes and outrigger's slices carry the Service alone`,
      );
    }
    // Creates before updates: endpoints moving out of a slice that shrinks (a lowered
    // --max-endpoints-per-slice, a slice of 1000 from an older version) are published in their
    // new slice before they leave the old one. For a moment they are in both, which consumers
    // tolerate; never in neither.
    for (const slice of plan.sliceCreates) await this.createSlice(ref, slice);
    for (const u of plan.sliceUpdates)
      await this.applyOwned(ref, 'EndpointSlice', u.want, u.current);
    for (const d of plan.deletes) {
      await w.delete(d.kind, ref.namespace, d.name, d.uid);
      this.applied.get(`${ref.namespace}/${ref.name}`)?.delete(`${d.kind}/${d.name}`);
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
   * fail with 409 and retry from a fresh cache instead of taking the object over. `adopt` is the
   * one exception, planned only on the backend's explicit opt-in for an Endpoints nobody manages:
   * the same precondition makes it take over exactly the version the plan judged.
   */
  private async applyOwned<T extends V1Endpoints | V1EndpointSlice>(
    ref: BackendRef,
    k: 'Endpoints' | 'EndpointSlice',
    want: T,
    current: T,
    adopt = false,
  ): Promise<void> {
    const name = want.metadata?.name ?? '';
    if (!adopt && ownership(current, ref) !== 'ours')
      throw new ForeignObjectError(foreignMessage(k, name, current));
    const backend = `${ref.namespace}/${ref.name}`;
    const memos = this.applied.get(backend) ?? new Map<string, AppliedMemo>();
    this.applied.set(backend, memos);
    const memoKey = `${k}/${name}`;
    // What the cache shows (to tell when it has caught up): the version the memo replaced, if
    // `current` is the memo's.
    const cachedVersion = memos.get(memoKey)?.before ?? current.metadata?.resourceVersion;
    memos.delete(memoKey);
    const resourceVersion = current.metadata?.resourceVersion;
    try {
      let after = await this.o.writer.apply(k, {
        ...want,
        metadata: {
          ...want.metadata,
          ...(resourceVersion !== undefined ? { resourceVersion } : {}),
        },
      });
      // An annotation set by the create (a plain POST) is not the apply's to remove by leaving
      // it out: the over-capacity mark is taken off explicitly when the backend shrinks.
      if (
        k === 'Endpoints' &&
        current.metadata?.annotations?.[annotationOverCapacity] !== undefined &&
        want.metadata?.annotations?.[annotationOverCapacity] === undefined
      )
        after = await this.o.writer.removeAnnotation(
          'Endpoints',
          ref.namespace,
          name,
          annotationOverCapacity,
        );
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
      throw new ForeignObjectError(foreignMessage('EndpointSlice', name, existing));
    if (existing.metadata?.labels?.[labelSliceManagedBy] === managerName)
      throw new CacheLagError(`EndpointSlice ${name} exists but is not in the cache yet`);
    await this.applyOwned(ref, 'EndpointSlice', slice, existing);
    this.o.events.event(
      this.eventRef(ref),
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
    given: Parameters<typeof planStatus>[0],
  ): Promise<void> {
    const input = { ...given, certificateWarningMs: this.o.certificateWarningMs };
    const { namespace = '', name = '', uid = '' } = xb.metadata ?? {};
    const ref = { apiVersion, kind, namespace, name, uid };
    for (const state of addressStates) {
      this.o.metrics.backendAddresses.set(
        { namespace, name, state: state.toLowerCase() },
        input.views.filter((v) => v.state === state).length,
      );
    }
    const ready = readyCondition(input);
    const readyLabels = { namespace, name, status: ready.status, reason: ready.reason };
    const previousReady = this.readySeries.get(key);
    if (
      previousReady !== undefined &&
      (previousReady.status !== ready.status || previousReady.reason !== ready.reason)
    )
      this.o.metrics.backendReady.remove(previousReady);
    this.o.metrics.backendReady.set(readyLabels, 1);
    this.readySeries.set(key, readyLabels);
    const soonest = soonestExpiry(input.views);
    if (soonest === undefined) this.o.metrics.certificateExpiry.remove({ namespace, name });
    else this.o.metrics.certificateExpiry.set({ namespace, name }, soonest / 1000);
    // Time alone moves a certificate into the warning window: look again when it does.
    const recheck = nextCertificateCheckMs(
      input.views,
      input.now.getTime(),
      this.o.certificateWarningMs,
    );
    if (recheck !== undefined)
      this.controller.queue.addAfter(key, Math.min(recheck + 1000, maxTimerMs));
    const { events, status } = planStatus(input);
    if (status === undefined) return;
    const now = this.now().getTime();
    const wait = (this.statusWrittenAt.get(key) ?? -Infinity) + this.o.statusBatchMs - now;
    if (wait > 0 && status.observedGeneration === input.previous?.observedGeneration) {
      // Its Events wait too: the write that comes computes them again, for the whole burst.
      this.controller.queue.addAfter(key, wait);
      return;
    }
    for (const e of events) this.o.events.event(ref, e.type, e.reason, e.message);
    await this.o.writer.patchStatus(namespace, name, status);
    this.statusWrittenAt.set(key, now);
    this.written.set(key, { before: xb.metadata?.resourceVersion ?? '', status });
  }

  private forget(key: string, namespace: string, name: string): void {
    this.applyProbes(key, []);
    this.resolver.want(key, []);
    this.limited.delete(key);
    this.written.delete(key);
    this.statusWrittenAt.delete(key);
    this.applied.delete(key);
    for (const state of addressStates)
      this.o.metrics.backendAddresses.remove({ namespace, name, state: state.toLowerCase() });
    const ready = this.readySeries.get(key);
    if (ready !== undefined) this.o.metrics.backendReady.remove(ready);
    this.readySeries.delete(key);
    this.o.metrics.certificateExpiry.remove({ namespace, name });
  }
}
