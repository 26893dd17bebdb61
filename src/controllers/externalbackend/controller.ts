// The ExternalBackend controller: wires watch events to its queue (through the pure key mappings
// of keys.ts) and runs one reconcile per key: gather (read-only) → planReconcile (pure, every
// decision) → apply (exactly the plan, Events after the writes they describe).
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import type { CachedPod, CachedProbeSource, CachedService } from '../../runtime/cached.ts';
import { ParsedRefs } from '../../health/kinds/index.ts';
import { Controller, done, type ReconcileResult } from '../../runtime/runner.ts';
import { realClock } from '../../runtime/clock.ts';
import { objectKey, splitKey } from '../../runtime/keys.ts';
import type { CachedExternalBackend } from '../../api/resources.ts';
import { kind } from '../../api/externalbackend.ts';
import { MutationCache } from '../../runtime/mutationcache.ts';
import { applyFinish, applyKeep, applyOperations, type ApplyTargets } from './apply.ts';
import { planAfterFailure, planReconcile } from './decide.ts';
import { classifyFailure } from './finish.ts';
import { gather, type Gathered, type GatherSources } from './gather.ts';
import {
  keysForFreedRoom,
  keysForNamespace,
  keysForPods,
  keysForRelated,
  keysForSource,
  keysForSourceFailure,
  serviceOfSlice,
} from './keys.ts';
import { unobserve } from './observe.ts';
import { BackendStates } from './state.ts';
import type {
  ExternalBackendControllerOptions,
  Names,
  ProbeTargets,
  StandbyRole,
} from './options.ts';
import type { ExternalBackendStatus } from '../../api/externalbackendstatus.ts';
import type { Resolution } from '../../dns/resolution.ts';
import type { AddressHealth } from '../../health/state.ts';

export type { ExternalBackendControllerOptions } from './options.ts';

export const controllerName = 'externalbackend';

export class ExternalBackendController {
  readonly controller: Controller;
  private readonly scheduler: ProbeTargets;
  private readonly resolver: Names;
  private readonly o: ExternalBackendControllerOptions;
  /** Everything kept per backend between reconciles (forget drops one entry). */
  private readonly states = new BackendStates();
  private readonly sources: GatherSources;
  private readonly targets: ApplyTargets;
  private readonly now: () => number;

  constructor(o: ExternalBackendControllerOptions) {
    this.o = o;
    const clock = o.clock ?? realClock;
    this.controller = new Controller({
      name: controllerName,
      workers: o.workers,
      maxRetries: 15,
      log: o.log,
      metrics: o.metrics,
      clock,
    });
    const q = this.controller.queue;
    this.scheduler = o.scheduler;
    this.resolver = o.resolver;
    const backends = new MutationCache(o.backends);
    const endpointWrites = new MutationCache(o.endpoints);
    const sliceWrites = new MutationCache(o.slices);
    this.sources = {
      ...o,
      backends,
      endpointWrites,
      sliceWrites,
      parsedRefs: new ParsedRefs(),
      podSelector: o.podSelector !== false,
      health: (t) => this.scheduler.health(t),
      // A standby checks the addresses the leader resolved (its status), never its own answers.
      resolution: o.standby === undefined ? (n) => this.resolver.get(n) : statusResolution,
      ...(o.quorum !== undefined ? { quorum: o.quorum } : {}),
      states: this.states,
      settings: o,
    };
    this.targets = {
      ...o,
      backends,
      endpointWrites,
      sliceWrites,
      probes: this.scheduler,
      names: this.resolver,
      states: this.states,
      now: () => clock.now(),
      roomFreed: (key) => {
        for (const k of keysForFreedRoom(key, this.states.limited())) q.add(k);
      },
    };
    this.now = () => clock.now();
    this.watch();
  }

  /** Queues what each watch event concerns (see keys.ts), in the namespaces in scope. */
  private watch(): void {
    const o = this.o;
    const q = this.controller.queue;
    const inNamespace = (
      ns: string | undefined,
      keys: (b: CachedExternalBackend[]) => string[],
    ) => {
      if (ns !== undefined && o.inScope(ns)) for (const k of keys(o.backends.list(ns))) q.add(k);
    };
    const on = <T>(handler: (obj: T, old?: T) => void) => ({
      add: (obj: T) => {
        handler(obj);
      },
      update: (old: T, obj: T) => {
        handler(obj, old);
      },
      delete: (obj: T) => {
        handler(obj);
      },
    });
    o.backends.addHandlers(
      on((xb: CachedExternalBackend) => {
        if (o.inScope(xb.metadata?.namespace ?? '')) q.add(objectKey(xb));
      }),
    );
    const related =
      <T extends CachedService | V1Endpoints | V1EndpointSlice>(
        service: (obj: T) => string | undefined,
      ) =>
      (obj: T): void => {
        const ns = obj.metadata?.namespace ?? '';
        inNamespace(ns, (b) => keysForRelated(obj, service(obj), b));
      };
    o.services.addHandlers(on(related((s: CachedService) => s.metadata?.name)));
    o.endpoints.addHandlers(on(related((e: V1Endpoints) => e.metadata?.name)));
    o.slices.addHandlers(on(related(serviceOfSlice)));
    o.pods?.addHandlers(
      on((pod: CachedPod, old?: CachedPod) => {
        inNamespace(pod.metadata?.namespace ?? '', (b) => keysForPods([old, pod], b));
      }),
    );
    // Every backend depends on the policy; a namespace's backends on its labels.
    o.policies.addHandlers(
      on(() => {
        this.enqueueAll();
      }),
    );
    o.namespaces.addHandlers({
      add: (n) => {
        inNamespace(n.metadata.name ?? '', (b) => keysForNamespace(undefined, n, b));
      },
      update: (before, after) => {
        inNamespace(after.metadata.name ?? '', (b) => keysForNamespace(before, after, b));
      },
      delete: (n) => {
        inNamespace(n.metadata.name ?? '', (b) => keysForNamespace(undefined, n, b));
      },
    });
    for (const [inf, k] of [
      [o.secrets, 'Secret'],
      [o.configMaps, 'ConfigMap'],
    ] as const) {
      // A cluster-wide list (no namespace) failing concerns the backends of every namespace.
      inf.onFailureChange((ns) => {
        const inScope = o.backends.list(ns).filter((xb) => o.inScope(xb.metadata?.namespace ?? ''));
        for (const key of keysForSourceFailure(k, inScope)) q.add(key);
      });
      inf.addHandlers(
        on((obj: CachedProbeSource) => {
          inNamespace(obj.metadata?.namespace ?? '', (b) =>
            keysForSource(k, obj.metadata?.name, b),
          );
        }),
      );
    }
  }

  run(): Promise<void> {
    return this.controller.run((key) => this.reconcile(key));
  }

  /** Queues every backend in scope: something they all depend on (the deny list) changed. */
  enqueueAll(): void {
    for (const xb of this.o.backends.list())
      if (this.o.inScope(xb.metadata?.namespace ?? '')) this.controller.queue.add(objectKey(xb));
  }

  /** What this replica's own checks cover and see (the quorum reads them). */
  ownTargets(): Iterable<readonly [string, ReadonlySet<string>]> {
    return this.states.targets();
  }

  ownHealth(target: string): AddressHealth | undefined {
    return this.scheduler.health(target);
  }

  /** outrigger's own writes its caches do not show yet (backends, Endpoints, slices). */
  get unseenWrites(): number {
    const s = this.sources;
    return s.backends.size + s.endpointWrites.size + s.sliceWrites.size;
  }

  async shutDown(): Promise<void> {
    this.controller.shutDown();
    await Promise.all([this.scheduler.stop(), this.resolver.stop()]);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const g = gather(this.sources, key, this.now());
    if (this.o.standby !== undefined) return this.reconcileStandby(key, g, this.o.standby);
    let plan = planReconcile(g);
    const ref = g.backend?.ref;
    if (plan.forget || ref === undefined) {
      this.forget(key);
      return done;
    }
    if (plan.keep !== undefined) applyKeep(this.targets, key, ref, plan.keep);
    const failed = await applyOperations(this.targets, ref, plan.operations);
    const failure = failed === undefined ? undefined : classifyFailure(failed);
    if (failure !== undefined) plan = planAfterFailure(g, plan, failure);
    if (plan.finish !== undefined) {
      await applyFinish(this.targets, key, ref, plan.finish, g.backend?.resourceVersion);
    }
    return { requeueAfterMs: plan.requeueAfterMs, error: failure?.retry };
  }

  /**
   * A standby's reconcile: the same plan as the leader's, of which only the probe targets are
   * kept (for an assigned backend), and what the checks see is reported. Nothing is written.
   */
  private reconcileStandby(key: string, g: Gathered, role: StandbyRole): ReconcileResult {
    const plan = planReconcile(g);
    const ref = g.backend?.ref;
    if (plan.forget || ref === undefined) {
      this.forget(key);
      role.report(key, undefined);
      return done;
    }
    if (plan.keep === undefined) return { requeueAfterMs: plan.requeueAfterMs };
    const spec = g.backend?.spec;
    const mine = role.assigned(
      key,
      spec?.success === true ? spec.data.healthCheck?.maxProbers : undefined,
    );
    applyKeep(this.targets, key, ref, {
      ...plan.keep,
      probes: mine ? plan.keep.probes : [],
      names: [],
      events: [],
    });
    if (!mine) {
      role.report(key, undefined);
      return done;
    }
    const failing: string[] = [];
    for (const t of this.states.get(key).targets)
      if (this.scheduler.health(t)?.state === 'Unhealthy')
        failing.push(t.slice(t.lastIndexOf('/') + 1));
    role.report(key, failing);
    return done;
  }

  /** Drops everything kept for a backend that is gone. */
  private forget(key: string): void {
    const [namespace, name] = splitKey(key);
    const was = this.states.forget(key);
    for (const t of was.targets) this.scheduler.remove(t);
    if (was.targets.size > 0) this.targets.roomFreed(key);
    this.resolver.want(key, []);
    unobserve(this.o.metrics, namespace, name, was.readySeries);
    this.sources.backends.forget(namespace, name);
    // Its Endpoints and slices go with it (garbage collection), but their deletions may never
    // be watched (a namespace going out of scope): the memory of its writes ends here.
    const owned = (o: V1Endpoints | V1EndpointSlice): boolean =>
      o.metadata?.namespace === namespace &&
      o.metadata.ownerReferences?.some((r) => r.kind === kind && r.name === name) === true;
    this.sources.endpointWrites.forgetWhere(owned);
    this.sources.sliceWrites.forgetWhere(owned);
  }
}

/** A name's addresses as the leader's status lists them (what a standby checks). */
function statusResolution(
  name: string,
  status: ExternalBackendStatus | undefined,
): Resolution | undefined {
  const n = status?.dnsNames?.find((x) => x.name === name);
  if (n === undefined) return undefined;
  return { name, state: n.state, ips: n.addresses ?? [], leftOut: 0, failures: 0 };
}
