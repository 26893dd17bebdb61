import { inspect } from 'node:util';
import { Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { withConcern, type ErrorSource } from '../errors.ts';
import type { Logger } from '../log.ts';
import { isAborted, sleep } from '../signals.ts';

/**
 * A list+watch cache written on client-node's streaming `Watch` rather than its `ListWatch`, which
 * keeps whole objects (no transform hook), stops for good on any error but 410, keys deletions by
 * name only and gives update handlers no old object. This one:
 * - transforms every object before caching it (drop what no reconciler reads) and freezes it;
 * - lists in pages, watches with bookmarks and a server-side timeout, relists after 410 Gone;
 * - restarts after any other error with jittered exponential backoff (0.8 s … 30 s);
 * - treats a watch with no bytes for `stallTimeoutMs` as stalled and reconnects (bookmarks arrive
 *   about once a minute, so a healthy quiet watch is never cut);
 * - calls handlers with (old, new) after the cache is updated. Handlers must only enqueue keys.
 */

export interface ListPage<T> {
  readonly items: readonly T[];
  readonly resourceVersion: string;
  readonly continueToken: string | undefined;
}

export interface ResourceClient<T> {
  /** Lists one page, cluster-wide when `namespace` is undefined. */
  list(
    namespace: string | undefined,
    limit: number,
    continueToken: string | undefined,
  ): Promise<ListPage<T>>;
  /** The watch URL path, e.g. /api/v1/pods or /api/v1/namespaces/ns/pods. */
  watchPath(namespace: string | undefined): string;
  /** Extra watch query parameters, e.g. the labelSelector the list uses too. */
  readonly watchQuery?: Readonly<Record<string, string>>;
}

export interface EventHandlers<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
}

export interface InformerOptions<T> {
  readonly name: string;
  readonly kubeConfig: KubeConfig;
  readonly client: ResourceClient<unknown>;
  /** Project a raw API object (typed list item or watch JSON) to what the cache keeps. */
  readonly transform: (raw: unknown) => T;
  /** Namespaces to watch, each with its own list+watch; undefined watches the whole cluster. */
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
}

export interface ListFailure {
  /** The HTTP status, when the API server answered (403 Forbidden, 404 Not Found, ...). */
  readonly code?: number;
  readonly message: string;
}

export type WatchEndReason = 'closed' | 'stalled' | 'expired' | 'error';

export function objectKey(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${obj.metadata?.name ?? ''}` : (obj.metadata?.name ?? '');
}

/** The inverse of objectKey for namespaced objects: [namespace, name]. */
export function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

class GoneError extends Error {
  override name = 'GoneError';
}

export class Informer<T extends KubernetesObject> {
  private readonly byNamespace = new Map<string, Map<string, T>>();
  private readonly handlers: EventHandlers<T>[] = [];
  private readonly syncedScopes = new Set<string>();
  private lastFailure: ListFailure | undefined;
  private readonly scopes: readonly (string | undefined)[];
  private readonly opts: InformerOptions<T>;

  constructor(opts: InformerOptions<T>) {
    this.opts = opts;
    this.scopes = opts.namespaces ?? [undefined];
  }

  get name(): string {
    return this.opts.name;
  }

  addHandlers(h: EventHandlers<T>): void {
    this.handlers.push(h);
  }

  /** Why the last list or watch failed, until a list succeeds again. */
  failure(): ListFailure | undefined {
    return this.lastFailure;
  }

  hasSynced(): boolean {
    return this.syncedScopes.size === this.scopes.length;
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

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all(this.scopes.map((ns) => this.runScope(ns, signal)));
  }

  async waitForSync(signal: AbortSignal): Promise<boolean> {
    while (!this.hasSynced() && !signal.aborted) await sleep(20, signal);
    return this.hasSynced();
  }

  private async runScope(namespace: string | undefined, signal: AbortSignal): Promise<void> {
    const scope = namespace ?? '*';
    let backoffMs = 800;
    while (!signal.aborted) {
      try {
        let rv = await this.relist(namespace);
        this.syncedScopes.add(scope);
        this.lastFailure = undefined;
        backoffMs = 800;
        for (;;) {
          if (isAborted(signal)) return;
          rv = await this.watch(namespace, rv, signal);
        }
      } catch (err) {
        if (isAborted(signal)) return;
        if (err instanceof GoneError) {
          this.opts.log.debug({ informer: this.name, namespace }, 'watch expired; relisting');
          continue;
        }
        const code = (err as { code?: unknown; statusCode?: unknown } | null) ?? {};
        const status = typeof code.code === 'number' ? code.code : code.statusCode;
        this.lastFailure = {
          ...(typeof status === 'number' ? { code: status } : {}),
          message: err instanceof Error ? err.message : String(err),
        };
        const wait = backoffMs * (0.5 + Math.random());
        this.opts.log.warn(
          { informer: this.name, namespace, err: String(err), retryInMs: Math.round(wait) },
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

  /** Lists everything in scope and replaces the cached scope, firing add/update/delete. */
  private async relist(namespace: string | undefined): Promise<string> {
    const fresh = new Map<string, T>();
    let token: string | undefined;
    let rv: string;
    do {
      const page = await this.opts.client.list(namespace, this.opts.pageSize ?? 500, token);
      for (const raw of page.items) {
        const obj = this.project(raw);
        if (obj !== undefined) fresh.set(objectKey(obj), obj);
      }
      token = page.continueToken;
      rv = page.resourceVersion;
    } while (token);

    for (const existing of this.list(namespace)) {
      if (this.inScope(existing, namespace) && !fresh.has(objectKey(existing)))
        this.remove(existing);
    }
    for (const obj of fresh.values()) this.upsert(obj);
    return rv;
  }

  /** One watch request; resolves with the last resourceVersion when the server closes it. */
  private watch(
    namespace: string | undefined,
    resourceVersion: string,
    signal: AbortSignal,
  ): Promise<string> {
    const w = new Watch(this.opts.kubeConfig);
    // Watch's inactivity timer (reset on every byte) is our stall watchdog; the field is declared
    // private in the typings but is the library's only knob for it.
    (w as unknown as { requestTimeoutMs: number }).requestTimeoutMs =
      this.opts.stallTimeoutMs ?? 90_000;
    let rv = resourceVersion;
    let gone = false;
    return new Promise<string>((resolve, reject) => {
      let request: AbortController | undefined;
      const onAbort = (): void => request?.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      const finish = (err: unknown): void => {
        signal.removeEventListener('abort', onAbort);
        const status = (err as { statusCode?: number } | null)?.statusCode;
        const stalled = (err as { name?: string } | null)?.name === 'TimeoutError';
        const reason: WatchEndReason =
          gone || status === 410
            ? 'expired'
            : stalled
              ? 'stalled'
              : err == null
                ? 'closed'
                : 'error';
        if (!signal.aborted) this.opts.onWatchEnd?.(reason);
        if (gone || status === 410) reject(new GoneError('resource version too old'));
        else if (err == null || stalled || signal.aborted) resolve(rv);
        else reject(err instanceof Error ? err : new Error(inspect(err)));
      };
      w.watch(
        this.opts.client.watchPath(namespace),
        {
          ...this.opts.client.watchQuery,
          resourceVersion: rv,
          allowWatchBookmarks: true,
          // Like client-go: a random server-side timeout spreads reconnects out.
          timeoutSeconds: 300 + Math.floor(Math.random() * 300),
        },
        (type: string, raw: unknown) => {
          if (type === 'ERROR') {
            if ((raw as { code?: number } | null)?.code === 410) gone = true;
            return;
          }
          const meta = (raw as { metadata?: { resourceVersion?: string } } | null)?.metadata;
          if (type !== 'BOOKMARK') {
            const obj = this.project(raw);
            if (obj !== undefined && type === 'DELETED') this.remove(obj);
            else if (obj !== undefined) this.upsert(obj);
          }
          if (meta?.resourceVersion) rv = meta.resourceVersion;
        },
        finish,
      ).then((controller) => {
        request = controller;
        if (signal.aborted) controller.abort();
      }, finish);
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

  /** Calls every handler; one that throws is reported and does not stop the others. */
  private notify(obj: T, call: (h: EventHandlers<T>) => void): void {
    withConcern({ informer: this.name, object: objectKey(obj) }, () => {
      for (const h of this.handlers) {
        try {
          call(h);
        } catch (err) {
          this.opts.onError?.('informer-handler', err);
        }
      }
    });
  }

  private upsert(obj: T): void {
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

  private remove(obj: T): void {
    const ns = obj.metadata?.namespace ?? '';
    const m = this.byNamespace.get(ns);
    const old = m?.get(obj.metadata?.name ?? '');
    if (m === undefined || old === undefined) return;
    m.delete(obj.metadata?.name ?? '');
    if (m.size === 0) this.byNamespace.delete(ns);
    this.notify(obj, (h) => h.delete?.(obj));
  }
}
