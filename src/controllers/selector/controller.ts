// Selector mode: outrigger's endpoints controller, behaving as kube-controller-manager's
// endpoints-controller does (see docs/selector-mode.md, "Differences from the built-in
// controller").
import { labelEndpointsManagedBy, managerName } from '../../api/names.ts';
import {
  ApiException,
  CoreV1Api,
  type KubeConfig,
  type V1Endpoints,
} from '@kubernetes/client-node';
import type { CachedEndpoints, CachedPod, CachedService } from '../../runtime/cached.ts';
import { MutationCache } from '../../runtime/mutationcache.ts';
import { isSelectorService, planEndpoints } from '../../endpoints/desired.ts';
import {
  decideContest,
  initialState,
  maxHoldMs,
  wrote,
  type ContestState,
} from '../../endpoints/conflict.ts';
import { servicesForPodEvent } from '../../endpoints/selector.ts';
import { selectorMatches } from '../../runtime/labels.ts';
import { TriggerTimeTracker } from '../../endpoints/triggertime.ts';
import { Controller, done, type ReconcileResult } from '../../runtime/runner.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { Throttle } from '../../runtime/throttle.ts';
import type { Informer } from '../../runtime/informer.ts';
import { objectKey, splitKey } from '../../runtime/informer.ts';
import type { Logger } from '../../runtime/log.ts';
import type { Metrics } from '../../runtime/metrics.ts';

export const controllerName = 'endpoints';

/** The API calls the controller makes; the real one is endpointsWriter(), tests may wrap it. */
export interface EndpointsWriter {
  create(ep: V1Endpoints): Promise<V1Endpoints>;
  update(ep: V1Endpoints): Promise<V1Endpoints>;
  /** Resolves false when there was nothing to delete. */
  delete(namespace: string, name: string): Promise<boolean>;
}

export function endpointsWriter(
  kc: KubeConfig,
  metrics: Metrics,
  throttle: Throttle,
): EndpointsWriter {
  const core = kc.makeApiClient(CoreV1Api);
  const count = async (operation: string): Promise<void> => {
    await throttle.acquire();
    metrics.endpointWrites.inc({ kind: 'Endpoints', operation });
  };
  return {
    async create(ep) {
      await count('create');
      return core.createNamespacedEndpoints({ namespace: ep.metadata?.namespace ?? '', body: ep });
    },
    async update(ep) {
      await count('update');
      return core.replaceNamespacedEndpoints({
        name: ep.metadata?.name ?? '',
        namespace: ep.metadata?.namespace ?? '',
        body: ep,
      });
    },
    async delete(namespace, name) {
      await count('delete');
      try {
        await core.deleteNamespacedEndpoints({ name, namespace });
        return true;
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return false;
        throw err;
      }
    },
  };
}

export interface EndpointsControllerOptions {
  readonly services: Informer<CachedService>;
  readonly pods: Informer<CachedPod>;
  readonly endpoints: Informer<V1Endpoints>;
  readonly writer: EndpointsWriter;
  readonly events: EventRecorder;
  /** Whether selector mode covers this namespace. */
  readonly inScope: (namespace: string) => boolean;
  readonly workers: number;
  /** Delay for pod-triggered syncs so that a burst of pod changes becomes one write (upstream flag). */
  readonly batchPeriodMs: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Clock for the hold after a conflict; tests may replace it. */
  readonly now?: () => number;
}

export class StaleCacheError extends Error {
  override name = 'StaleCacheError';
}

function isForbiddenNamespaceTerminating(err: unknown): boolean {
  if (!(err instanceof ApiException) || err.code !== 403) return false;
  return String(err.body).includes('NamespaceTerminating');
}

export class EndpointsController {
  readonly controller: Controller;
  private readonly o: EndpointsControllerOptions;
  private readonly triggerTimes = new TriggerTimeTracker();
  /** Endpoints resourceVersions we have replaced, so a lagging cache is not mistaken for truth. */
  /** Endpoints outrigger wrote that the cache does not show yet. */
  private readonly writes: MutationCache<CachedEndpoints>;
  /** Services whose deletion we saw: their Endpoints go, whoever wrote them (as upstream). */
  private readonly deletedServices = new Set<string>();
  /** Per Service: whether our write is the last one, and the hold after a conflict (conflict.ts). */
  private readonly contest = new Map<string, ContestState>();
  /** Services whose Endpoints we are holding off, for the gauge. */
  private readonly holding = new Set<string>();

  constructor(o: EndpointsControllerOptions) {
    this.o = o;
    this.writes = new MutationCache(o.endpoints);
    this.controller = new Controller({
      name: controllerName,
      workers: o.workers,
      maxRetries: 15,
      log: o.log,
      metrics: o.metrics,
    });
    const q = this.controller.queue;
    const enqueueService = (svc: CachedService): void => {
      if (o.inScope(svc.metadata?.namespace ?? '')) q.add(objectKey(svc));
    };
    o.services.addHandlers({
      add: enqueueService,
      update: (_old, svc) => {
        enqueueService(svc);
      },
      delete: (svc) => {
        if (!o.inScope(svc.metadata?.namespace ?? '')) return;
        this.deletedServices.add(objectKey(svc));
        q.add(objectKey(svc));
      },
    });
    const onPod = (oldPod: CachedPod | undefined, newPod: CachedPod | undefined): void => {
      const ns = (newPod ?? oldPod)?.metadata?.namespace ?? '';
      if (!o.inScope(ns)) return;
      for (const name of servicesForPodEvent(o.services.list(ns), oldPod, newPod)) {
        q.addAfter(`${ns}/${name}`, o.batchPeriodMs);
      }
    };
    o.pods.addHandlers({
      add: (p) => {
        onPod(undefined, p);
      },
      update: onPod,
      delete: (p) => {
        onPod(p, undefined);
      },
    });
    // As upstream, deletions of Endpoints trigger a sync (to recreate them). Unlike upstream, so
    // does another writer replacing our managed-by label: that is how a second endpoints
    // controller shows itself (see endpoints/conflict.ts), and reconcile decides what it means.
    o.endpoints.addHandlers({
      update: (old, ep) => {
        if (
          old.metadata?.labels?.[labelEndpointsManagedBy] === managerName &&
          ep.metadata?.labels?.[labelEndpointsManagedBy] !== managerName &&
          o.inScope(ep.metadata?.namespace ?? '')
        )
          q.add(objectKey(ep));
      },
      delete: (ep) => {
        if (o.inScope(ep.metadata?.namespace ?? '')) q.add(objectKey(ep));
      },
    });
  }

  /** Runs until shutDown(); call once the informers have synced. */
  run(): Promise<void> {
    // Start-up clean-up of Endpoints we manage whose Service is gone (upstream checks every
    // Endpoints; we only touch our own).
    for (const ep of this.o.endpoints.list()) {
      if (
        ep.metadata?.labels?.[labelEndpointsManagedBy] === managerName &&
        this.o.inScope(ep.metadata.namespace ?? '')
      ) {
        this.controller.queue.add(objectKey(ep));
      }
    }
    this.warnOfOtherWriters();
    return this.controller.run((key) => this.reconcile(key));
  }

  shutDown(): void {
    this.controller.shutDown();
  }

  /**
   * Start-up check, from the cache alone: Endpoints of selector Services in scope that another
   * controller labelled. Right after selector mode is switched on that is every Endpoints (they are
   * taken over, one write each); if that controller still runs, they will be rewritten again and
   * each such fight is reported as a conflict. A warning, not a refusal: the two cases cannot be
   * told apart from here, and a refusal would stop ExternalBackends too.
   */
  private warnOfOtherWriters(): void {
    const writers = new Map<string, number>();
    for (const ep of this.o.endpoints.list()) {
      const ns = ep.metadata?.namespace ?? '';
      const by = ep.metadata?.labels?.[labelEndpointsManagedBy];
      if (by === managerName || !this.o.inScope(ns)) continue;
      const svc = this.o.services.get(ns, ep.metadata?.name ?? '');
      if (svc === undefined || !isSelectorService(svc)) continue;
      writers.set(by ?? '', (writers.get(by ?? '') ?? 0) + 1);
    }
    if (writers.size === 0) return;
    this.o.log.warn(
      { managedBy: Object.fromEntries(writers) },
      'selector mode takes over Endpoints another controller wrote; if kube-controller-manager still runs its endpoints controller for these namespaces, disable it (--controllers=*,-endpoints-controller): each Endpoints it rewrites is reported as EndpointsConflict and held off',
    );
  }

  private setContest(key: string, state: ContestState, holding: boolean): void {
    if (state === initialState) this.contest.delete(key);
    else this.contest.set(key, state);
    if (holding) this.holding.add(key);
    else this.holding.delete(key);
    this.o.metrics.endpointsContested.set(this.holding.size);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = splitKey(key);
    const svc = this.o.services.get(namespace, name);
    if (svc === undefined) {
      await this.serviceGone(key, namespace, name);
      return done;
    }
    this.deletedServices.delete(key);
    if (!isSelectorService(svc)) return done;

    const selector = svc.spec?.selector;
    const pods = this.o.pods
      .list(namespace)
      .filter((p) => selectorMatches(selector, p.metadata?.labels));
    // Computed on every sync, as upstream, so that the tracker follows no-op syncs too; committed
    // only once the sync has succeeded (see TriggerTimeTracker).
    const trigger = this.triggerTimes.compute(key, svc, pods);
    const current = this.o.endpoints.get(namespace, name);
    if (current !== undefined && this.writes.isStale(namespace, name)) {
      throw new StaleCacheError(
        `endpoints cache is out of date: resourceVersion ${current.metadata?.resourceVersion ?? ''} was already replaced`,
      );
    }

    const now = (this.o.now ?? Date.now)();
    const contest = decideContest(
      this.contest.get(key) ?? initialState,
      current === undefined
        ? { kind: 'absent' }
        : { kind: 'present', managedBy: current.metadata?.labels?.[labelEndpointsManagedBy] },
      managerName,
      now,
    );
    this.setContest(key, contest.state, contest.action !== 'write');
    if (contest.action === 'conflict') {
      this.o.metrics.endpointsConflicts.inc();
      const hold = formatDuration(contest.holdMs);
      this.o.log.warn(
        {
          service: key,
          writer: contest.writer,
          conflicts: contest.state.conflicts,
          holdMs: contest.holdMs,
        },
        'another endpoints controller rewrote Endpoints that outrigger wrote; holding off',
      );
      this.o.events.event(
        {
          kind: 'Service',
          apiVersion: 'v1',
          namespace,
          name,
          ...(svc.metadata?.uid ? { uid: svc.metadata.uid } : {}),
        },
        'Warning',
        'EndpointsConflict',
        `Endpoints ${key} was rewritten by ${contest.writer} after outrigger wrote it: two endpoints controllers serve this Service. outrigger writes nothing to it for ${hold} (conflict ${String(contest.state.conflicts)} in a row; each doubles the wait, up to ${formatDuration(maxHoldMs)}). Disable the other controller (kube-controller-manager --controllers=*,-endpoints-controller) or take this namespace out of --selector-mode.`,
      );
      return { requeueAfterMs: contest.holdMs };
    }
    if (contest.action === 'hold') {
      return { requeueAfterMs: contest.untilMs - now };
    }

    const plan = planEndpoints(svc, pods, current, trigger.time);
    if (plan.action === 'none') {
      trigger.commit();
      return done;
    }
    const ep = plan.endpoints;
    try {
      if (plan.action === 'create') {
        await this.o.writer.create(ep);
      } else {
        this.writes.record(await this.o.writer.update(ep));
      }
      this.setContest(key, wrote(contest.state), false);
      trigger.commit();
      this.o.log.debug(
        {
          service: key,
          action: plan.action,
          truncated: plan.truncated,
          triggerTime: trigger.time?.toISOString(),
        },
        'wrote endpoints',
      );
    } catch (err) {
      if (plan.action === 'create' && isForbiddenNamespaceTerminating(err)) return done;
      const ref = {
        kind: 'Endpoints',
        apiVersion: 'v1',
        namespace,
        name,
        ...(ep.metadata?.uid ? { uid: ep.metadata.uid } : {}),
      };
      if (plan.action === 'create') {
        this.o.events.event(
          ref,
          'Warning',
          'FailedToCreateEndpoint',
          `Failed to create endpoint for service ${key}: ${String(err)}`,
        );
      } else {
        this.o.events.event(
          ref,
          'Warning',
          'FailedToUpdateEndpoint',
          `Failed to update endpoint ${key}: ${String(err)}`,
        );
      }
      throw err;
    }
    return done;
  }

  private async serviceGone(key: string, namespace: string, name: string): Promise<void> {
    const ep = this.o.endpoints.get(namespace, name);
    const ours = ep?.metadata?.labels?.[labelEndpointsManagedBy] === managerName;
    if (this.deletedServices.has(key) || ours) {
      await this.o.writer.delete(namespace, name);
      this.o.log.debug({ service: key }, 'deleted endpoints of a deleted service');
    }
    this.deletedServices.delete(key);
    this.triggerTimes.delete(key);
    this.writes.forget(namespace, name);
    this.setContest(key, initialState, false);
  }
}

/** 60000 → "1m0s", as Go prints a time.Duration (kubectl users read these). */
function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const m = Math.floor(s / 60);
  return m > 0 ? `${String(m)}m${String(s % 60)}s` : `${String(s)}s`;
}
