// Selector mode: outrigger's endpoints controller, behaving as kube-controller-manager's
// endpoints-controller does (see docs/selector-mode.md, "Differences from the built-in
// controller").
//
// A sync of one Service key is gather (read the caches and the controller's memory of the key) →
// planSync (pure, plan.ts: every decision) → apply (the one place that writes, records Events and
// changes the memory). Which keys a watch event concerns is decided in keys.ts.
import type { CachedEndpoints, CachedPod, CachedService } from '../../runtime/cached.ts';
import { realClock, type Clock } from '../../runtime/clock.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import { splitKey } from '../../runtime/keys.ts';
import type { InformerView } from '../../runtime/store.ts';
import { LabelIndex } from '../../runtime/labelindex.ts';
import type { Logger } from '../../runtime/log.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import { MutationCache } from '../../runtime/mutationcache.ts';
import { Controller, done, type ReconcileResult } from '../../runtime/runner.ts';
import { initialState, type ContestState } from '../../endpoints/conflict.ts';
import { isSelectorService } from '../../endpoints/desired.ts';
import { TriggerTimeTracker } from '../../endpoints/triggertime.ts';
import {
  endpointsDeleteKey,
  endpointsUpdateKey,
  otherWriters,
  podEventKeys,
  serviceKey,
  startupKeys,
} from './keys.ts';
import {
  holding,
  planSync,
  writeFailure,
  type Observed,
  type PlannedEvent,
  type SelectorPlan,
} from './plan.ts';
import type { EndpointsWriter } from './writer.ts';

// Where the manager has always found the writer.

export const controllerName = 'endpoints';

export interface EndpointsControllerOptions {
  readonly services: InformerView<CachedService>;
  readonly pods: InformerView<CachedPod>;
  readonly endpoints: InformerView<CachedEndpoints>;
  readonly writer: EndpointsWriter;
  readonly events: EventRecorder;
  /** Whether selector mode covers this namespace. */
  readonly inScope: (namespace: string) => boolean;
  readonly workers: number;
  /** Delay for pod-triggered syncs so that a burst of pod changes becomes one write (upstream flag). */
  readonly batchPeriodMs: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Times the hold after a conflict and the queue's delays; the system clock by default. */
  readonly clock?: Clock;
}

export class StaleCacheError extends Error {
  override name = 'StaleCacheError';
}

export class EndpointsController {
  readonly controller: Controller;
  private readonly o: EndpointsControllerOptions;
  private readonly clock: Clock;
  private readonly triggerTimes = new TriggerTimeTracker();
  /** Endpoints outrigger wrote that the cache does not show yet. */
  private readonly writes: MutationCache<CachedEndpoints>;
  /** Services whose deletion we saw: their Endpoints go, whoever wrote them (as upstream). */
  private readonly deletedServices = new Set<string>();
  /** Per Service: whether our write is the last one, and the hold after a conflict (conflict.ts). */
  private readonly contest = new Map<string, ContestState>();
  /** Services whose Endpoints we are holding off, for the gauge. */
  private readonly holding = new Set<string>();
  /** The pods by label pair: a sync reads the pods its selector selects, not the namespace's. */
  private readonly podsByLabel: LabelIndex<CachedPod>;

  constructor(o: EndpointsControllerOptions) {
    this.o = o;
    this.clock = o.clock ?? realClock;
    this.writes = new MutationCache(o.endpoints);
    this.podsByLabel = new LabelIndex(o.pods);
    this.controller = new Controller({
      name: controllerName,
      workers: o.workers,
      maxRetries: 15,
      log: o.log,
      metrics: o.metrics,
      clock: this.clock,
    });
    const q = this.controller.queue;
    const add = (key: string | undefined): void => {
      if (key !== undefined) q.add(key);
    };
    o.services.addHandlers({
      add: (svc) => {
        add(serviceKey(svc, o.inScope));
      },
      update: (_old, svc) => {
        add(serviceKey(svc, o.inScope));
      },
      delete: (svc) => {
        const key = serviceKey(svc, o.inScope);
        if (key !== undefined) this.deletedServices.add(key);
        add(key);
      },
    });
    const onPod = (oldPod: CachedPod | undefined, newPod: CachedPod | undefined): void => {
      for (const key of podEventKeys(oldPod, newPod, o.inScope, (ns) => o.services.list(ns)))
        q.addAfter(key, o.batchPeriodMs);
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
    o.endpoints.addHandlers({
      update: (old, ep) => {
        add(endpointsUpdateKey(old, ep, o.inScope));
      },
      delete: (ep) => {
        add(endpointsDeleteKey(ep, o.inScope));
      },
    });
  }

  /** Runs until shutDown(); call once the informers have synced. */
  run(): Promise<void> {
    for (const key of startupKeys(this.o.endpoints.list(), this.o.inScope))
      this.controller.queue.add(key);
    this.warnOfOtherWriters();
    return this.controller.run((key) => this.reconcile(key));
  }

  shutDown(): void {
    this.controller.shutDown();
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const observed = this.gather(key);
    const plan = planSync(observed, this.clock.now());
    return this.apply(key, observed, plan);
  }

  /** Reads, and changes nothing: the caches, outrigger's own writes, the memory of this key. */
  private gather(key: string): Observed {
    const [namespace, name] = splitKey(key);
    const service = this.o.services.get(namespace, name);
    const selects = service !== undefined && isSelectorService(service);
    return {
      namespace,
      name,
      service,
      serviceDeleted: this.deletedServices.has(key),
      pods: selects ? this.podsByLabel.select(namespace, service.spec?.selector) : [],
      endpoints: this.o.endpoints.get(namespace, name),
      stale: this.writes.isStale(namespace, name),
      contest: this.contest.get(key) ?? initialState,
      trigger: this.triggerTimes.get(key),
    };
  }

  /** Does what the plan says, and nothing else. */
  private async apply(key: string, o: Observed, plan: SelectorPlan): Promise<ReconcileResult> {
    const { namespace, name } = o;
    if (plan.kind === 'serviceGone') {
      if (plan.deleteEndpoints) {
        await this.o.writer.delete(namespace, name);
        this.o.log.debug({ service: key }, 'deleted endpoints of a deleted service');
      }
      this.deletedServices.delete(key);
      this.triggerTimes.delete(key);
      this.writes.forget(namespace, name);
      this.setContest(key, initialState, false);
      return done;
    }
    this.deletedServices.delete(key);
    if (plan.kind === 'notSelector') return done;
    if (plan.kind === 'staleCache') throw new StaleCacheError(plan.error);

    this.setContest(key, plan.contest, holding(plan));
    switch (plan.kind) {
      case 'conflict':
        this.o.metrics.endpointsConflicts.inc();
        this.o.log.warn(
          {
            service: key,
            writer: plan.writer,
            conflicts: plan.contest.conflicts,
            holdMs: plan.holdMs,
          },
          'another endpoints controller rewrote Endpoints that outrigger wrote; holding off',
        );
        this.emit(plan.event);
        return { requeueAfterMs: plan.holdMs };
      case 'hold':
        return { requeueAfterMs: plan.requeueAfterMs };
      case 'upToDate':
        this.triggerTimes.set(key, plan.trigger);
        return done;
      case 'write':
        return this.write(key, plan);
    }
  }

  /**
   * The create or update, then what only a successful write may change: outrigger's own write
   * remembered until the watch shows it, the contest state, the trigger-time memory. A failed
   * write is reported by the one Event about it, as upstream does, and retried by the queue.
   */
  private async write(
    key: string,
    plan: Extract<SelectorPlan, { kind: 'write' }>,
  ): Promise<ReconcileResult> {
    try {
      const written =
        plan.operation === 'create'
          ? await this.o.writer.create(plan.endpoints)
          : await this.o.writer.update(plan.endpoints);
      // An update's precondition held, so it replaced exactly the version the plan read.
      this.writes.record(
        written,
        plan.operation === 'create' ? undefined : plan.endpoints.metadata?.resourceVersion,
      );
    } catch (err) {
      const failure = writeFailure(plan, err);
      if (failure === 'ignore') return done;
      this.emit(failure);
      throw err;
    }
    this.setContest(key, plan.afterWrite, false);
    this.triggerTimes.set(key, plan.trigger);
    this.o.log.debug(
      {
        service: key,
        action: plan.operation,
        truncated: plan.truncated,
        triggerTime: plan.triggerTime?.toISOString(),
      },
      'wrote endpoints',
    );
    return done;
  }

  private emit(e: PlannedEvent): void {
    this.o.events.event(e.object, e.type, e.reason, e.message);
  }

  private setContest(key: string, state: ContestState, holding: boolean): void {
    if (state === initialState) this.contest.delete(key);
    else this.contest.set(key, state);
    if (holding) this.holding.add(key);
    else this.holding.delete(key);
    this.o.metrics.endpointsContested.set(this.holding.size);
  }

  /**
   * Start-up check, from the cache alone: Endpoints of selector Services in scope that another
   * controller labelled. Right after selector mode is switched on that is every Endpoints (they are
   * taken over, one write each); if that controller still runs, they will be rewritten again and
   * each such fight is reported as a conflict. A warning, not a refusal: the two cases cannot be
   * told apart from here, and a refusal would stop ExternalBackends too.
   */
  private warnOfOtherWriters(): void {
    const writers = otherWriters(
      this.o.endpoints.list(),
      (ns, n) => this.o.services.get(ns, n),
      this.o.inScope,
    );
    if (writers.size === 0) return;
    this.o.log.warn(
      { managedBy: Object.fromEntries(writers) },
      'selector mode takes over Endpoints another controller wrote; if kube-controller-manager still runs its endpoints controller for these namespaces, disable it (--controllers=*,-endpoints-controller): each Endpoints it rewrites is reported as EndpointsConflict and held off',
    );
  }
}
