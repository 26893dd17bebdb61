import type { CachedObject } from './cached.ts';
import type { EventHandlers, InformerView } from './store.ts';
import type { ListFailure } from './informer.ts';

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

const keyOf = (namespace: string, name: string): string => `${namespace}/${name}`;

/**
 * An informer's cache that a unit test moves by hand, standing in for a watch: `set` and `remove`
 * change the cache first and then call the handlers, with the old object on update, as the
 * Informer does. Nothing changes unless the test says so, which is how a test makes the cache lag
 * a write: it does not deliver the written object yet.
 *
 * Objects are frozen as the Informer freezes them, so a controller that writes to what it read
 * fails here as it would in production. Unlike the Informer, a handler that throws is not caught:
 * in a test that is a failure to see.
 */
export class FakeInformer<T extends CachedObject> implements InformerView<T> {
  private readonly objects = new Map<string, T>();
  private readonly handlers: EventHandlers<T>[] = [];
  private readonly failures = new Map<string | undefined, ListFailure>();
  private synced = true;

  constructor(objects: readonly T[] = []) {
    for (const obj of objects) this.objects.set(this.keyOf(obj), deepFreeze(obj));
  }

  get(namespace: string, name: string): T | undefined {
    return this.objects.get(keyOf(namespace, name));
  }

  list(namespace?: string): T[] {
    const all = [...this.objects.values()];
    return namespace === undefined
      ? all
      : all.filter((o) => (o.metadata?.namespace ?? '') === namespace);
  }

  addHandlers(h: EventHandlers<T>): void {
    this.handlers.push(h);
  }

  /**
   * Puts `obj` in the cache and tells the handlers: add when the name is new, update (old, new)
   * otherwise, and delete then add when the name now holds another object (a new uid).
   */
  set(obj: T): void {
    const key = this.keyOf(obj);
    const old = this.objects.get(key);
    this.objects.set(key, deepFreeze(obj));
    if (old === undefined) {
      for (const h of this.handlers) h.add?.(obj);
    } else if (old.metadata?.uid !== obj.metadata?.uid) {
      for (const h of this.handlers) h.delete?.(old);
      for (const h of this.handlers) h.add?.(obj);
    } else {
      for (const h of this.handlers) h.update?.(old, obj);
    }
  }

  /** Removes the object and tells the handlers; nothing happens when it is not cached. */
  remove(namespace: string, name: string): void {
    const old = this.objects.get(keyOf(namespace, name));
    if (old === undefined) return;
    this.objects.delete(keyOf(namespace, name));
    for (const h of this.handlers) h.delete?.(old);
  }

  /** Hands every object to the update handlers again, old and new the same (a resync). */
  resync(): void {
    for (const obj of this.objects.values()) for (const h of this.handlers) h.update?.(obj, obj);
  }

  // The failure and sync state the Informer reports, for controllers that read it.

  /** Makes `failure(namespace)` report `f` (undefined namespace: the whole cluster's scope). */
  setFailure(namespace: string | undefined, f: ListFailure | undefined): void {
    if (f === undefined) this.failures.delete(namespace);
    else this.failures.set(namespace, f);
  }

  failure(namespace?: string): ListFailure | undefined {
    if (namespace !== undefined)
      return this.failures.get(namespace) ?? this.failures.get(undefined);
    let latest: ListFailure | undefined;
    for (const f of this.failures.values()) latest = f;
    return latest;
  }

  setSynced(synced: boolean): void {
    this.synced = synced;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  hasSyncedNamespace(_namespace: string): boolean {
    return this.synced;
  }

  private keyOf(obj: T): string {
    return keyOf(obj.metadata?.namespace ?? '', obj.metadata?.name ?? '');
  }
}
