// In-memory stand-ins for what the ExternalBackend controller talks to, for unit tests that build
// the controller itself: caches whose watch delivers only when told (so a test decides how far
// they lag), a writer that records every call and fails on demand, a scheduler, a resolver and an
// event recorder. One log of writes and Events shows their order.
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import type { ExternalBackendStatus } from '../../api/externalbackendstatus.ts';
import type { Resolution } from '../../dns/resolution.ts';
import type { Target } from '../../health/scheduler.ts';
import type { AddressHealth } from '../../health/state.ts';
import type { CachedObject } from '../../runtime/cached.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { EventHandlers } from '../../runtime/store.ts';
import type { ListFailure } from '../../runtime/informer.ts';
import type { Cache, Names, ProbeTargets } from './options.ts';
import type { BackendWriter, OwnedKind } from './writer.ts';
import { ApiError } from '../../runtime/rest.ts';

export class FakeCache<T extends CachedObject> implements Cache<T> {
  synced = true;
  private readonly objects = new Map<string, T>();
  private readonly handlers: EventHandlers<T>[] = [];
  private readonly failures = new Map<string | undefined, ListFailure>();
  private readonly failureHandlers: ((namespace: string | undefined) => void)[] = [];

  get(namespace: string, name: string): T | undefined {
    return this.objects.get(`${namespace}/${name}`);
  }

  list(namespace?: string): T[] {
    return [...this.objects.values()].filter(
      (o) => namespace === undefined || (o.metadata?.namespace ?? '') === namespace,
    );
  }

  addHandlers(h: EventHandlers<T>): void {
    this.handlers.push(h);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  hasSyncedNamespace(): boolean {
    return this.synced;
  }

  failure(namespace?: string): ListFailure | undefined {
    return this.failures.get(namespace);
  }

  onFailureChange(cb: (namespace: string | undefined) => void): void {
    this.failureHandlers.push(cb);
  }

  /** The scope's list starts failing (a ListFailure) or lists again (undefined). */
  setFailure(namespace: string | undefined, f: ListFailure | undefined): void {
    if (f === undefined) this.failures.delete(namespace);
    else this.failures.set(namespace, f);
    for (const cb of this.failureHandlers) cb(namespace);
  }

  /** The watch delivers this version of the object. */
  put(obj: T): void {
    const key = `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
    const old = this.objects.get(key);
    this.objects.set(key, obj);
    for (const h of this.handlers)
      if (old === undefined) h.add?.(obj);
      else h.update?.(old, obj);
  }

  /** The watch delivers the object's deletion. */
  remove(namespace: string, name: string): void {
    const old = this.objects.get(`${namespace}/${name}`);
    if (old === undefined) return;
    this.objects.delete(`${namespace}/${name}`);
    for (const h of this.handlers) h.delete?.(old);
  }
}

export type Call =
  | { readonly call: 'create'; readonly kind: OwnedKind; readonly obj: CachedObject }
  | {
      readonly call: 'apply';
      readonly kind: OwnedKind;
      readonly obj: V1Endpoints | V1EndpointSlice;
    }
  | { readonly call: 'ports'; readonly name: string }
  | { readonly call: 'removeAnnotation'; readonly name: string; readonly key: string }
  | { readonly call: 'delete'; readonly kind: OwnedKind; readonly name: string }
  | { readonly call: 'patchStatus'; readonly name: string; readonly status: ExternalBackendStatus }
  | { readonly call: 'findSlice'; readonly name: string };

export function apiError(code: number, message = `HTTP ${String(code)}`): ApiError {
  return new ApiError(code, message, JSON.stringify({ message }), {});
}

/**
 * Records every call in `calls` (and, as "<call> <kind> <name>", in the shared `log`). `fail`
 * decides, per call, an error to throw instead; resourceVersions are handed out in order from 100.
 */
export class FakeWriter implements BackendWriter {
  readonly calls: Call[] = [];
  /** The resourceVersion each call gave its object (undefined where it failed). */
  readonly versions: (string | undefined)[] = [];
  fail: (c: Call) => Error | undefined = () => undefined;
  /** What findSlice answers: the slices the API server has that the slice cache does not. */
  readonly serverSlices = new Map<string, V1EndpointSlice>();
  private rv = 100;
  private readonly log: string[];

  constructor(log: string[]) {
    this.log = log;
  }

  private do(c: Call): string {
    this.calls.push(c);
    const what =
      'kind' in c ? `${c.kind} ${'obj' in c ? (c.obj.metadata?.name ?? '') : c.name}` : c.name;
    const err = this.fail(c);
    if (err !== undefined) {
      this.versions.push(undefined);
      this.log.push(`failed ${c.call} ${what}`);
      throw err;
    }
    const rv = String(this.rv++);
    this.versions.push(rv);
    this.log.push(`${c.call} ${what}`);
    return rv;
  }

  create(kind: OwnedKind, obj: CachedObject): Promise<void> {
    this.do({ call: 'create', kind, obj });
    return Promise.resolve();
  }

  apply(kind: 'Endpoints' | 'EndpointSlice', obj: V1Endpoints | V1EndpointSlice) {
    return Promise.resolve(this.do({ call: 'apply', kind, obj }));
  }

  setServicePorts(_namespace: string, name: string): Promise<void> {
    this.do({ call: 'ports', name });
    return Promise.resolve();
  }

  removeAnnotation(_kind: 'Endpoints', _namespace: string, name: string, key: string) {
    return Promise.resolve(this.do({ call: 'removeAnnotation', name, key }));
  }

  delete(kind: OwnedKind, _namespace: string, name: string): Promise<boolean> {
    this.do({ call: 'delete', kind, name });
    return Promise.resolve(true);
  }

  patchStatus(_namespace: string, name: string, status: ExternalBackendStatus) {
    return Promise.resolve(this.do({ call: 'patchStatus', name, status }));
  }

  findSlice(_namespace: string, name: string): Promise<V1EndpointSlice | undefined> {
    this.do({ call: 'findSlice', name });
    return Promise.resolve(this.serverSlices.get(name));
  }

  /** The calls of one kind ("apply", "patchStatus", ...). */
  of<C extends Call['call']>(call: C): Extract<Call, { call: C }>[] {
    return this.calls.filter((c): c is Extract<Call, { call: C }> => c.call === call);
  }
}

export interface RecordedEvent {
  readonly name: string;
  readonly type: string;
  readonly reason: string;
  readonly message: string;
}

export function fakeEvents(log: string[]): EventRecorder & { readonly recorded: RecordedEvent[] } {
  const recorded: RecordedEvent[] = [];
  return {
    recorded,
    event(object, type, reason, message) {
      recorded.push({ name: object.name ?? '', type, reason, message });
      log.push(`event ${reason}`);
    },
  };
}

export class FakeScheduler implements ProbeTargets {
  readonly targets = new Map<string, Target>();
  readonly healths = new Map<string, AddressHealth>();
  upsert(t: Target): void {
    this.targets.set(t.key, t);
  }
  remove(key: string): void {
    this.targets.delete(key);
  }
  health(key: string): AddressHealth | undefined {
    return this.healths.get(key);
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
}

export class FakeResolver implements Names {
  readonly wanted = new Map<string, readonly string[]>();
  readonly answers = new Map<string, Resolution>();
  want(owner: string, names: readonly string[]): void {
    if (names.length === 0) this.wanted.delete(owner);
    else this.wanted.set(owner, names);
  }
  get(name: string): Resolution | undefined {
    return this.answers.get(name);
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
}
