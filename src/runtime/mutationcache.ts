import type { CachedObject } from './cached.ts';
import type { EventHandlers } from './store.ts';

/** What a mutation cache needs of an informer: reads, and to be told of every change it sees. */
export interface WatchedCache<T> {
  get(namespace: string, name: string): T | undefined;
  addHandlers(h: EventHandlers<T>): void;
}

interface Mutation<T> {
  /**
   * The versions this write (and the writes it followed) replaced. While the cache shows one of
   * them it lags the write; a resync re-delivers one of them and changes nothing.
   */
  readonly replaced: ReadonlySet<string>;
  readonly wrote: T;
}

/**
 * outrigger's memory of its own writes until its informer shows them (client-go's MutationCache
 * idea). A watch lags its writes: a reconcile that runs in between reads the version it has just
 * replaced, and would either take its own change for someone else's, write the same thing again,
 * or send a precondition that must fail.
 *
 * The rules, each tested in mutationcache.test.ts:
 * - `record(wrote, read)` remembers a write against `read`, the version the write was planned
 *   from, and only while what this cache shows is still that version (or an earlier write of
 *   ours it remembers): a cache that has moved past it, to the write itself or to someone
 *   else's later version, knows better, and nothing is remembered. A create (nothing read) is
 *   not remembered either.
 * - `get` reads through: while the cache still shows a version the write replaced, what was
 *   written; otherwise the cache's object.
 * - `isStale` says the cache shows a version outrigger has already replaced.
 * - The memory of an object ends at the informer's next event for it that is not a version the
 *   write replaced (a newer version, its deletion), when the informer drops the object's
 *   namespace, or at `forget` / `forgetWhere`. Reads never change it.
 */
export class MutationCache<T extends CachedObject> {
  private readonly cache: WatchedCache<T>;
  private readonly mutations = new Map<string, Mutation<T>>();

  constructor(cache: WatchedCache<T>) {
    this.cache = cache;
    const seen = (obj: T): void => {
      const key = keyOf(obj);
      const m = this.mutations.get(key);
      if (m !== undefined && !m.replaced.has(obj.metadata?.resourceVersion ?? '')) {
        this.mutations.delete(key);
      }
    };
    cache.addHandlers({
      add: seen,
      update: (_old, obj) => {
        seen(obj);
      },
      delete: (obj) => this.mutations.delete(keyOf(obj)),
      dropped: (namespace) => {
        this.forgetWhere((o) => namespace === undefined || o.metadata?.namespace === namespace);
      },
    });
  }

  /**
   * Remembers `wrote` (with the resourceVersion the server gave it, when known) until the cache
   * shows it. `read` is the resourceVersion of the object the write was planned from, as this
   * cache's `get` gave it: a precondition it held, or the version a patch was judged against.
   */
  record(wrote: T, read: string | undefined): void {
    const { namespace = '', name = '', resourceVersion } = wrote.metadata ?? {};
    const key = `${namespace}/${name}`;
    const shown = this.cache.get(namespace, name)?.metadata?.resourceVersion;
    const m = this.mutations.get(key);
    this.mutations.delete(key);
    if (read === undefined || shown === undefined || shown === resourceVersion) return;
    if (read === shown) {
      this.mutations.set(key, { replaced: new Set([shown]), wrote });
      return;
    }
    // Planned from our own earlier write the cache does not show yet: this one replaces both.
    const earlier = m?.wrote.metadata?.resourceVersion;
    if (m !== undefined && m.replaced.has(shown) && earlier !== undefined && earlier === read) {
      this.mutations.set(key, { replaced: new Set([...m.replaced, read]), wrote });
    }
  }

  /** The object as far as outrigger knows: its own last write while the cache lags, else cached. */
  get(namespace: string, name: string): T | undefined {
    const cached = this.cache.get(namespace, name);
    const m = this.mutations.get(`${namespace}/${name}`);
    return m !== undefined && this.lags(m, cached) ? m.wrote : cached;
  }

  /** Whether the cache shows a version of this object that outrigger's own write replaced. */
  isStale(namespace: string, name: string): boolean {
    const m = this.mutations.get(`${namespace}/${name}`);
    return m !== undefined && this.lags(m, this.cache.get(namespace, name));
  }

  forget(namespace: string, name: string): void {
    this.mutations.delete(`${namespace}/${name}`);
  }

  /** Forgets every remembered write that matches (the objects of an owner that is gone). */
  forgetWhere(matches: (wrote: T) => boolean): void {
    for (const [key, m] of this.mutations) if (matches(m.wrote)) this.mutations.delete(key);
  }

  /** How many writes the cache has not shown yet (a gauge of watch lag, and a test's witness). */
  get size(): number {
    return this.mutations.size;
  }

  private lags(m: Mutation<T>, cached: T | undefined): boolean {
    const rv = cached?.metadata?.resourceVersion;
    return rv !== undefined && m.replaced.has(rv);
  }
}

function keyOf(obj: CachedObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}
