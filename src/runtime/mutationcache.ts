import type { CachedObject } from './cached.ts';
import type { EventHandlers } from './store.ts';

/** What a mutation cache needs of an informer: reads, and to be told of every change it sees. */
export interface WatchedCache<T> {
  get(namespace: string, name: string): T | undefined;
  addHandlers(h: EventHandlers<T>): void;
}

interface Mutation<T> {
  /** The resourceVersion the cache showed when the write returned: the one the write replaced. */
  readonly before: string;
  readonly wrote: T;
}

/**
 * outrigger's memory of its own writes until its informer shows them (client-go's MutationCache
 * idea). A watch lags its writes: a reconcile that runs in between reads the version it has just
 * replaced, and would either take its own change for someone else's, write the same thing again,
 * or send a precondition that must fail.
 *
 * The rules, each tested in mutationcache.test.ts:
 * - `record` remembers a write against the version the cache shows at that moment; nothing is
 *   remembered when the cache already shows the write or does not hold the object at all.
 * - `get` reads through: while the cache still shows that version, what was written; otherwise
 *   the cache's object, which then knows better.
 * - `isStale` says the cache shows a version outrigger has already replaced.
 * - The memory of an object ends at the informer's next event for it (a newer version or its
 *   deletion) or at `forget`; a resync, which re-delivers the same version, does not end it. So
 *   the memory holds only the writes the watch has not yet delivered, and reads never change it.
 */
export class MutationCache<T extends CachedObject> {
  private readonly cache: WatchedCache<T>;
  private readonly mutations = new Map<string, Mutation<T>>();

  constructor(cache: WatchedCache<T>) {
    this.cache = cache;
    const seen = (obj: T): void => {
      const key = keyOf(obj);
      const m = this.mutations.get(key);
      if (m !== undefined && m.before !== obj.metadata?.resourceVersion) this.mutations.delete(key);
    };
    cache.addHandlers({
      add: seen,
      update: (_old, obj) => {
        seen(obj);
      },
      delete: (obj) => this.mutations.delete(keyOf(obj)),
    });
  }

  /** Remembers `wrote` (with the resourceVersion the server gave it, when known) until seen. */
  record(wrote: T): void {
    const { namespace = '', name = '', resourceVersion } = wrote.metadata ?? {};
    const shown = this.cache.get(namespace, name)?.metadata?.resourceVersion;
    const key = `${namespace}/${name}`;
    if (shown === undefined || shown === resourceVersion) {
      this.mutations.delete(key);
      return;
    }
    this.mutations.set(key, { before: shown, wrote });
  }

  /** The object as far as outrigger knows: its own last write while the cache lags, else cached. */
  get(namespace: string, name: string): T | undefined {
    const cached = this.cache.get(namespace, name);
    const m = this.mutations.get(`${namespace}/${name}`);
    return m !== undefined && cached?.metadata?.resourceVersion === m.before ? m.wrote : cached;
  }

  /** Whether the cache shows a version of this object that outrigger's own write replaced. */
  isStale(namespace: string, name: string): boolean {
    const m = this.mutations.get(`${namespace}/${name}`);
    return (
      m !== undefined && this.cache.get(namespace, name)?.metadata?.resourceVersion === m.before
    );
  }

  forget(namespace: string, name: string): void {
    this.mutations.delete(`${namespace}/${name}`);
  }

  /** How many writes the cache has not shown yet (a gauge of watch lag, and a test's witness). */
  get size(): number {
    return this.mutations.size;
  }
}

function keyOf(obj: CachedObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}
