import type { CachedObject } from './cached.ts';
import { realClock, type Clock } from './clock.ts';
import { withConcern, type ErrorSource } from './errors.ts';
import type { Logger } from './log.ts';
import { objectKey } from './keys.ts';
import { Store, type EventHandlers, type InformerView } from './store.ts';
import type { ResourceClient } from './listers.ts';
import { isAborted, sleep, untilAborted } from './signals.ts';
import { GoneError, watchOnce, type WatchEndReason } from './watchstream.ts';

/**
 * A list+watch cache written on the lean client (rest.ts) rather than client-node's `ListWatch`, which
 * keeps whole objects (no transform hook), stops for good on any error but 410, keys deletions by
 * name only and gives update handlers no old object. This one:
 * - transforms every object before caching it (drop what no reconciler reads) and freezes it;
 * - lists in pages, watches with bookmarks and a server-side timeout, relists after 410 Gone;
 * - after any other failure (an ERROR event, 429, 5xx, a refused connection) backs off (jittered,
 *   0.8 s … 30 s) and re-watches from the last resourceVersion, as client-go does;
 * - catches what its transform and handlers throw (reported, never lost silently), and can
 *   re-deliver every object periodically (resync);
 * - treats a watch with no bytes for `stallTimeoutMs` as stalled and reconnects (bookmarks arrive
 *   about once a minute, so a healthy quiet watch is never cut);
 * - calls handlers with (old, new) after the cache is updated. Handlers must only enqueue keys.
 */

export interface InformerOptions<T> {
  readonly name: string;
  readonly client: ResourceClient<unknown>;
  /** Project a raw API object (typed list item or watch JSON) to what the cache keeps. */
  readonly transform: (raw: unknown) => T;
  /**
   * Namespaces to watch, each with its own list+watch; undefined watches the whole cluster. Can be
   * changed while running with setNamespaces().
   */
  readonly namespaces?: readonly string[] | undefined;
  readonly log: Logger;
  readonly pageSize?: number;
  readonly stallTimeoutMs?: number;
  /** Told why each watch ended: the server closed it, it stalled, it expired (410), or it failed. */
  readonly onWatchEnd?: (reason: WatchEndReason) => void;
  /**
   * Told about an exception thrown by the transform or a handler. The client library swallows
   * whatever its watch callback throws, so without this such an event would vanish unseen.
   */
  readonly onError?: (source: ErrorSource, err: unknown) => void;
  /**
   * Every this long (with ±10 % jitter), hand every cached object to the update handlers again
   * (old and new the same), so that a change lost anyway is repaired by a reconcile. 0: never.
   */
  readonly resyncPeriodMs?: number;
  /**
   * Where every timestamp the informer takes comes from (when a scope began failing, how long a
   * watch stayed up, the settle deadline): the controllers compare `ListFailure.since` with their
   * own clock, so both must be the same one. The system clock by default.
   */
  readonly clock?: Clock;
}

export interface ListFailure {
  /** The HTTP status, when the API server answered (403 Forbidden, 404 Not Found, ...). */
  readonly code?: number;
  readonly message: string;
  /** When (ms since epoch) the scope began failing, through every retry since. */
  readonly since: number;
}

/** Whether a list failure means "this will not work until someone changes RBAC or the cluster". */
export function isPermanent(f: ListFailure | undefined): boolean {
  return f?.code === 401 || f?.code === 403 || f?.code === 404;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** A scope's key: a namespace, or "*" for the whole cluster. */
const cluster = '*';

export class Informer<T extends CachedObject> implements InformerView<T> {
  private readonly store: Store<T>;
  private readonly failureHandlers: ((namespace: string | undefined) => void)[] = [];
  private readonly syncedScopes = new Set<string>();
  /** Why each scope's last list or watch failed, until it lists again; the latest last. */
  private readonly scopeFailures = new Map<string, ListFailure>();
  /** The scopes wanted, and the list+watch loop of each one running. */
  private wanted: ReadonlySet<string>;
  private readonly running = new Map<string, { stop: AbortController; done: Promise<void> }>();
  private runSignal: AbortSignal | undefined;
  private readonly opts: InformerOptions<T>;
  private readonly clock: Clock;

  constructor(opts: InformerOptions<T>) {
    this.opts = opts;
    this.clock = opts.clock ?? realClock;
    this.wanted = new Set(opts.namespaces ?? [cluster]);
    this.store = new Store(opts.name, opts.onError);
  }

  /**
   * Changes the namespaces watched (undefined: the whole cluster). New ones are listed and
   * watched; the cached objects of dropped ones are forgotten without calling handlers: whoever
   * drops a namespace no longer cares about it.
   */
  setNamespaces(namespaces: readonly string[] | undefined): void {
    const next = new Set(namespaces ?? [cluster]);
    if (next.size === this.wanted.size && [...next].every((n) => this.wanted.has(n))) return;
    this.wanted = next;
    if (this.runSignal !== undefined) this.startScopes(this.runSignal);
  }

  /** Whether the objects of this namespace are in the cache (it is watched and listed). */
  hasSyncedNamespace(namespace: string): boolean {
    return this.syncedScopes.has(cluster) || this.syncedScopes.has(namespace);
  }

  private startScopes(signal: AbortSignal): void {
    // After shutdown nothing new may start: its abort listener would never fire.
    if (signal.aborted) return;
    for (const [scope, r] of this.running) {
      if (this.wanted.has(scope)) continue;
      r.stop.abort();
      this.running.delete(scope);
      this.syncedScopes.delete(scope);
      this.scopeFailures.delete(scope);
      this.store.drop(scope === cluster ? undefined : scope);
    }
    for (const scope of this.wanted) {
      if (this.running.has(scope)) continue;
      const stop = new AbortController();
      const onAbort = (): void => {
        stop.abort();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const done = this.runScope(scope === cluster ? undefined : scope, stop.signal).finally(() => {
        signal.removeEventListener('abort', onAbort);
      });
      this.running.set(scope, { stop, done });
    }
  }

  get name(): string {
    return this.opts.name;
  }

  /**
   * Told when a scope starts failing, fails with another status, or recovers: a failure brings
   * no object event, and a cache that cannot list any more keeps what it had, so whoever reads
   * it and reports on it learns of the change here.
   */
  onFailureChange(cb: (namespace: string | undefined) => void): void {
    this.failureHandlers.push(cb);
  }

  private failureChanged(namespace: string | undefined): void {
    for (const cb of this.failureHandlers) {
      try {
        cb(namespace);
      } catch (err) {
        this.opts.onError?.('informer-handler', err);
      }
    }
  }

  private clearFailure(scope: string): void {
    if (!this.scopeFailures.delete(scope)) return;
    this.failureChanged(scope === cluster ? undefined : scope);
  }

  addHandlers(h: EventHandlers<T>): void {
    this.store.addHandlers(h);
  }

  /**
   * Why the latest failing scope's last list or watch failed, until it lists again or a watch
   * stays connected for a second; with a
   * namespace, only the failure of the scope that holds it (one namespace's 403 says nothing
   * about another's).
   */
  failure(namespace?: string): ListFailure | undefined {
    if (namespace !== undefined)
      return this.scopeFailures.get(namespace) ?? this.scopeFailures.get(cluster);
    let latest: ListFailure | undefined;
    for (const f of this.scopeFailures.values()) latest = f;
    return latest;
  }

  hasSynced(): boolean {
    for (const scope of this.wanted) if (!this.syncedScopes.has(scope)) return false;
    return true;
  }

  get(namespace: string, name: string): T | undefined {
    return this.store.get(namespace, name);
  }

  /** Objects in one namespace (the by-namespace index), or in all of them. */
  list(namespace?: string): T[] {
    return this.store.list(namespace);
  }

  size(): number {
    return this.store.size();
  }

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    this.runSignal = signal;
    this.startScopes(signal);
    await this.resync(signal);
    await untilAborted(signal);
    // Scopes started or stopped meanwhile included.
    await Promise.all([...this.running.values()].map((r) => r.done));
  }

  private async resync(signal: AbortSignal): Promise<void> {
    const period = this.opts.resyncPeriodMs ?? 0;
    if (period <= 0) return;
    while (!signal.aborted) {
      await sleep(period * (0.9 + Math.random() * 0.2), signal);
      if (isAborted(signal)) return;
      this.store.redeliver();
    }
  }

  /**
   * Waits until the cache has synced or the API server has refused it for good (see isPermanent),
   * at most `timeoutMs`; resolves whether it synced.
   */
  async waitSettled(signal: AbortSignal, timeoutMs: number): Promise<boolean> {
    const deadline = this.clock.now() + timeoutMs;
    while (!this.hasSynced() && !isPermanent(this.failure()) && this.clock.now() < deadline)
      await sleep(50, signal);
    return this.hasSynced();
  }

  async waitForSync(signal: AbortSignal): Promise<boolean> {
    while (!this.hasSynced() && !signal.aborted) await sleep(20, signal);
    return this.hasSynced();
  }

  /**
   * List once, then watch from the last resourceVersion for as long as that works, as client-go's
   * reflector does: 410 Gone (the version was compacted away) relists at once; any other failure
   * (an ERROR event, 429, 5xx, a refused connection) backs off and re-watches from the same
   * resourceVersion, so a flaky API server costs a reconnect, not a relist of every object. A watch
   * that ends by itself right away with nothing in it also backs off, so that a server closing
   * every watch at once cannot put this loop in a tight spin.
   */
  private async runScope(namespace: string | undefined, signal: AbortSignal): Promise<void> {
    const scope = namespace ?? cluster;
    let backoffMs = 800;
    let rv: string | undefined;
    while (!signal.aborted) {
      try {
        if (rv === undefined) {
          rv = await this.relist(namespace, signal);
          if (isAborted(signal)) return;
          this.syncedScopes.add(scope);
          this.clearFailure(scope);
        }
        const started = this.clock.now();
        const { resourceVersion, events } = await this.watch(namespace, rv, signal).catch(
          (err: unknown) => {
            // A watch that stayed up for a while was healthy: its failure starts a fresh backoff.
            if (this.clock.now() - started >= 1000) backoffMs = 800;
            throw err;
          },
        );
        if (isAborted(signal)) return;
        const quick = events === 0 && this.clock.now() - started < 1000 && resourceVersion === rv;
        rv = resourceVersion;
        if (!quick) {
          backoffMs = 800;
          this.clearFailure(scope);
          continue;
        }
        throw new Error('the watch ended at once with no events');
      } catch (err) {
        if (isAborted(signal)) return;
        if (err instanceof GoneError) {
          this.opts.log.debug({ informer: this.name, namespace }, 'watch expired; relisting');
          rv = undefined;
          continue;
        }
        const code = (err as { code?: unknown; statusCode?: unknown } | null) ?? {};
        const status = typeof code.code === 'number' ? code.code : code.statusCode;
        const before = this.scopeFailures.get(scope);
        const since = before?.since ?? this.clock.now();
        // Deleted first, so that the latest failure comes last (see failure()).
        this.scopeFailures.delete(scope);
        this.scopeFailures.set(scope, {
          ...(typeof status === 'number' ? { code: status } : {}),
          message: err instanceof Error ? err.message : String(err),
          since,
        });
        if (before === undefined || before.code !== status) this.failureChanged(namespace);
        const wait = backoffMs * (0.5 + Math.random());
        this.opts.log.warn(
          {
            informer: this.name,
            namespace,
            err: String(err),
            retryInMs: Math.round(wait),
            next: rv === undefined ? 'list' : `watch from ${rv}`,
          },
          'list/watch failed; retrying',
        );
        await sleep(wait, signal);
        backoffMs = Math.min(backoffMs * 2, 30_000);
      }
    }
  }

  private inScope(obj: T, namespace: string | undefined): boolean {
    return namespace === undefined || obj.metadata?.namespace === namespace;
  }

  /**
   * Lists everything in scope and replaces the cached scope, firing add/update/delete. Each page
   * goes into the cache as it arrives, so a relist holds one page and the names seen, never a
   * second copy of the whole scope.
   */
  private async relist(namespace: string | undefined, signal: AbortSignal): Promise<string> {
    const seen = new Set<string>();
    let token: string | undefined;
    let rv: string;
    do {
      const page = await this.opts.client.list(namespace, this.opts.pageSize ?? 500, token);
      // A scope dropped meanwhile: its objects must not come back into the cache.
      if (isAborted(signal)) throw new Error('informer scope stopped');
      for (const raw of page.items) {
        const obj = this.project(raw);
        if (obj === undefined) continue;
        seen.add(objectKey(obj));
        this.store.upsert(obj);
      }
      token = page.continueToken;
      rv = page.resourceVersion;
    } while (token);

    for (const existing of this.list(namespace)) {
      if (this.inScope(existing, namespace) && !seen.has(objectKey(existing)))
        this.store.remove(existing);
    }
    return rv;
  }

  /** One watch request of a scope, applying its events to the cache as they come. */
  private watch(
    namespace: string | undefined,
    resourceVersion: string,
    signal: AbortSignal,
  ): Promise<{ resourceVersion: string; events: number }> {
    return watchOnce({
      stream: (w) => this.opts.client.watch(namespace, w),
      resourceVersion,
      stallTimeoutMs: this.opts.stallTimeoutMs ?? 90_000,
      signal,
      onObject: (type, raw) => {
        const obj = this.project(raw);
        if (obj !== undefined && type === 'DELETED') this.store.remove(obj);
        else if (obj !== undefined) this.store.upsert(obj);
      },
      // Connected and up as long as a watch that is not "quick": the scope follows again from its
      // resourceVersion, missing nothing, so its failure is over. Waiting for the watch to end
      // instead would keep the failure, and its start time, for the watch's whole life (5-10
      // minutes), so that readers that give up on a scope failing for long (the address policy
      // freezes after 30 s) would give up on one that recovered.
      onHealthy: () => this.scopeFailures.delete(namespace ?? cluster),
      onEnd: (reason) => this.opts.onWatchEnd?.(reason),
    });
  }

  /** The cached form of a raw object, or undefined (logged and counted) when the transform throws. */
  private project(raw: unknown): T | undefined {
    try {
      return deepFreeze(this.opts.transform(raw));
    } catch (err) {
      const meta = (raw as { metadata?: { namespace?: string; name?: string } } | null)?.metadata;
      withConcern(
        { informer: this.name, object: `${meta?.namespace ?? ''}/${meta?.name ?? ''}` },
        () => {
          this.opts.onError?.('informer-transform', err);
        },
      );
      return undefined;
    }
  }
}
