// The cache half of an informer (client-go's indexer and its event distribution): objects by
// namespace and name, and the handlers told of every change after it is in place. The informer
// decides what goes in; this keeps it and says so.
import type { CachedObject } from './cached.ts';
import { withConcern, type ErrorSource } from './errors.ts';
import { objectKey } from './keys.ts';

export interface EventHandlers<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
  /**
   * The informer stopped watching a namespace (undefined: all of them) and forgot its objects
   * without a delete event each; memories kept per object end here.
   */
  dropped?(namespace: string | undefined): void;
}

/**
 * What a controller reads of an informer: its cache, by namespace, and its events. The Informer is
 * one; informer.test-helpers.ts has an in-memory one that unit tests move by hand.
 */
export interface InformerView<T> {
  get(namespace: string, name: string): T | undefined;
  /** Objects in one namespace, or in all of them. */
  list(namespace?: string): T[];
  addHandlers(h: EventHandlers<T>): void;
}

export class Store<T extends CachedObject> implements InformerView<T> {
  private readonly byNamespace = new Map<string, Map<string, T>>();
  private readonly handlers: EventHandlers<T>[] = [];
  private readonly name: string;
  private readonly onError: ((source: ErrorSource, err: unknown) => void) | undefined;

  constructor(name: string, onError?: (source: ErrorSource, err: unknown) => void) {
    this.name = name;
    this.onError = onError;
  }

  addHandlers(h: EventHandlers<T>): void {
    this.handlers.push(h);
  }

  get(namespace: string, name: string): T | undefined {
    return this.byNamespace.get(namespace)?.get(name);
  }

  /** Objects in one namespace (the by-namespace index), or in all of them. */
  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.byNamespace.get(namespace)?.values() ?? [])];
    const out: T[] = [];
    for (const m of this.byNamespace.values()) out.push(...m.values());
    return out;
  }

  size(): number {
    let n = 0;
    for (const m of this.byNamespace.values()) n += m.size;
    return n;
  }

  /**
   * Forgets a namespace's objects, or all (undefined), with no delete event for each: whoever
   * dropped the namespace no longer cares about them. Handlers keeping memory per object hear
   * `dropped` once.
   */
  drop(namespace: string | undefined): void {
    if (namespace === undefined) this.byNamespace.clear();
    else this.byNamespace.delete(namespace);
    for (const h of this.handlers) {
      try {
        h.dropped?.(namespace);
      } catch (err) {
        this.onError?.('informer-handler', err);
      }
    }
  }

  upsert(obj: T): void {
    const ns = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    let m = this.byNamespace.get(ns);
    if (m === undefined) {
      m = new Map();
      this.byNamespace.set(ns, m);
    }
    const old = m.get(name);
    m.set(name, obj);
    if (old !== undefined && old.metadata?.uid !== obj.metadata?.uid) {
      // Same name, new object: the old one was deleted while we were not watching.
      this.notify(old, (h) => h.delete?.(old));
      this.notify(obj, (h) => h.add?.(obj));
    } else if (old === undefined) {
      this.notify(obj, (h) => h.add?.(obj));
    } else {
      this.notify(obj, (h) => h.update?.(old, obj));
    }
  }

  remove(obj: T): void {
    const ns = obj.metadata?.namespace ?? '';
    const m = this.byNamespace.get(ns);
    const old = m?.get(obj.metadata?.name ?? '');
    if (m === undefined || old === undefined) return;
    m.delete(obj.metadata?.name ?? '');
    if (m.size === 0) this.byNamespace.delete(ns);
    this.notify(obj, (h) => h.delete?.(obj));
  }

  /** Hands every object to the update handlers again, old and new the same (a resync). */
  redeliver(): void {
    for (const obj of this.list()) this.notify(obj, (h) => h.update?.(obj, obj));
  }

  /** Calls every handler; one that throws is reported and does not stop the others. */
  private notify(obj: T, call: (h: EventHandlers<T>) => void): void {
    withConcern({ informer: this.name, object: objectKey(obj) }, () => {
      for (const h of this.handlers) {
        try {
          call(h);
        } catch (err) {
          this.onError?.('informer-handler', err);
        }
      }
    });
  }
}
