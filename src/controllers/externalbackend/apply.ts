// The write half of a reconcile: executes exactly what decide.ts planned, in order, and says the
// Events of each write only once it succeeded. The one thing met here that the plan could not
// know, a slice name already taken on the server, is handed to the pure onSliceTaken.
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import { apiVersion, kind } from '../../api/externalbackend.ts';
import type { CachedExternalBackend } from '../../api/resources.ts';
import type { Target } from '../../health/scheduler.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import type { MutationCache } from '../../runtime/mutationcache.ts';
import type { ReconcilePlan } from './decide.ts';
import type { BackendRef } from './owner.ts';
import { CacheLagError, ForeignObjectError, type Finish } from './finish.ts';
import { observe } from './observe.ts';
import { onSliceTaken, type Operation, type PlannedEvent } from './operations.ts';
import type { BackendStates } from './state.ts';
import { isAlreadyExists, isConflict, type BackendWriter } from './writer.ts';

export interface ApplyTargets {
  readonly writer: BackendWriter;
  readonly events: EventRecorder;
  readonly metrics: Pick<
    Metrics,
    'backendAddresses' | 'backendReady' | 'certificateExpiry' | 'backupsActive'
  >;
  readonly backends: MutationCache<CachedExternalBackend>;
  readonly endpointWrites: MutationCache<V1Endpoints>;
  readonly sliceWrites: MutationCache<V1EndpointSlice>;
  readonly probes: { upsert(t: Target): void; remove(key: string): void };
  readonly names: { want(owner: string, names: readonly string[]): void };
  readonly states: BackendStates;
  readonly now: () => number;
  /** Probe targets of a namespace were freed: its backends waiting for room may use it. */
  readonly roomFreed: (key: string) => void;
}

function say(t: ApplyTargets, ref: BackendRef, events: readonly PlannedEvent[]): void {
  const object = { apiVersion, kind, namespace: ref.namespace, name: ref.name, uid: ref.uid };
  for (const e of events) t.events.event(object, e.type, e.reason, e.message);
}

/** Makes the scheduler and resolver run exactly what the plan keeps for the backend. */
export function applyKeep(
  t: ApplyTargets,
  key: string,
  ref: BackendRef,
  keep: NonNullable<ReconcilePlan['keep']>,
): void {
  const before = t.states.get(key).targets;
  const after = new Set(keep.probes.map((p) => p.key));
  for (const p of keep.probes) t.probes.upsert(p);
  let freed = 0;
  for (const k of before)
    if (!after.has(k)) {
      t.probes.remove(k);
      freed++;
    }
  t.states.update(key, { targets: after, limited: keep.limited });
  t.names.want(key, keep.names);
  say(t, ref, keep.events);
  if (freed > 0) t.roomFreed(key);
}

/** Runs the operations in order; the first failure stops them and is returned. */
export async function applyOperations(
  t: ApplyTargets,
  ref: BackendRef,
  ops: readonly Operation[],
): Promise<unknown> {
  try {
    for (const op of ops) await run(t, ref, op);
    return undefined;
  } catch (err) {
    return err ?? new Error('write failed');
  }
}

async function run(t: ApplyTargets, ref: BackendRef, op: Operation): Promise<void> {
  const w = t.writer;
  switch (op.op) {
    case 'create': {
      const name = op.obj.metadata?.name ?? '';
      try {
        await w.create(op.kind, op.obj);
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        if (op.kind !== 'EndpointSlice')
          throw new CacheLagError(`${op.kind} ${name} exists but is not in the cache yet`);
        const taken = onSliceTaken(ref, op.obj, await w.findSlice(ref.namespace, name));
        if (taken.next === 'retry') throw new CacheLagError(taken.message);
        if (taken.next === 'refuse') throw new ForeignObjectError(taken.message);
        await run(t, ref, taken.operation);
        return;
      }
      say(t, ref, op.events);
      return;
    }
    case 'apply': {
      const name = op.obj.metadata?.name ?? '';
      let after: string | undefined;
      try {
        after = await w.apply(op.kind, op.obj);
        if (op.kind === 'Endpoints')
          for (const a of op.dropAnnotations)
            after = await w.removeAnnotation('Endpoints', ref.namespace, name, a);
      } catch (err) {
        if (isConflict(err))
          throw new CacheLagError(
            `${op.kind} ${name} was changed by someone else since it was read`,
          );
        throw err;
      }
      if (after !== undefined) {
        // The precondition held, so the write replaced exactly the version the plan read.
        const read = op.obj.metadata?.resourceVersion;
        const wrote = { ...op.obj, metadata: { ...op.obj.metadata, resourceVersion: after } };
        if (op.kind === 'Endpoints') t.endpointWrites.record(wrote, read);
        else t.sliceWrites.record(wrote as V1EndpointSlice, read);
      }
      say(t, ref, op.events);
      return;
    }
    case 'ports':
      await w.setServicePorts(ref.namespace, op.name, op.ports);
      return;
    case 'delete':
      await w.delete(op.kind, ref.namespace, op.name, op.uid);
      if (op.kind === 'Endpoints') t.endpointWrites.forget(ref.namespace, op.name);
      if (op.kind === 'EndpointSlice') t.sliceWrites.forget(ref.namespace, op.name);
      return;
  }
}

/**
 * Sets the backend's metrics, then writes its status when the plan has one; its Events follow the
 * write, so a write that fails says nothing (the retry plans them again).
 */
export async function applyFinish(
  t: ApplyTargets,
  key: string,
  ref: BackendRef,
  finish: Finish,
  read: string | undefined,
): Promise<void> {
  const state = t.states.get(key);
  t.states.update(key, {
    readySeries: observe(t.metrics, ref.namespace, ref.name, state.readySeries, finish.observed),
  });
  if (finish.status === undefined) return;
  const at = t.now();
  const rv = await t.writer.patchStatus(ref.namespace, ref.name, finish.status);
  t.states.update(key, { statusWrittenAt: at });
  // The status was judged against the version gather read; a backend changed since is not ours
  // to paper over, and the mutation cache would refuse it anyway.
  const current = t.backends.get(ref.namespace, ref.name);
  if (current !== undefined && current.metadata?.resourceVersion === read) {
    // The version the write made, which the watch will deliver; unknown, none (never the old one).
    const metadata = { ...current.metadata };
    delete metadata.resourceVersion;
    if (rv !== undefined) metadata.resourceVersion = rv;
    t.backends.record({ ...current, status: finish.status, metadata }, read);
  }
  say(t, ref, finish.events);
}
