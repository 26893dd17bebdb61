// One watch request on client-node's streaming `Watch`, with what its callback API leaves to the
// caller: a stall watchdog, ERROR events and 410 told apart from a normal close, and why it ended.
import { inspect } from 'node:util';
import { Watch, type KubeConfig } from '@kubernetes/client-node';

export type WatchEndReason = 'closed' | 'stalled' | 'expired' | 'error';

/** The resourceVersion watched from is gone (410): the caller must list again. */
export class GoneError extends Error {
  override name = 'GoneError';
}

/** An ERROR event in a watch stream (other than 410, which is GoneError). */
export class WatchError extends Error {
  override name = 'WatchError';
  readonly code: number | undefined;
  constructor(code: number | undefined, message: string) {
    super(`watch error ${code === undefined ? '' : String(code)}: ${message}`);
    this.code = code;
  }
}

export interface WatchOnce {
  readonly kubeConfig: KubeConfig;
  /** The watch URL path, e.g. /api/v1/namespaces/ns/pods. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly resourceVersion: string;
  /** No byte for this long: the watch is taken for stalled and ended (bookmarks come ~1/min). */
  readonly stallTimeoutMs: number;
  readonly signal: AbortSignal;
  /** ADDED, MODIFIED or DELETED, in order; the resourceVersion advances only after it returns. */
  readonly onObject: (type: string, raw: unknown) => void;
  /** Called once the watch has stayed connected for a second. */
  readonly onHealthy: () => void;
  /** Why the watch ended, unless it was stopped by the signal. */
  readonly onEnd: (reason: WatchEndReason) => void;
}

/**
 * One watch request; resolves with the last resourceVersion (and how many events came) when the
 * server closes it, it stalls or the signal stops it; rejects with GoneError on 410 and with a
 * WatchError for an ERROR event of any other code.
 */
export function watchOnce(o: WatchOnce): Promise<{ resourceVersion: string; events: number }> {
  const { signal } = o;
  const w = new Watch(o.kubeConfig);
  // Watch's inactivity timer (reset on every byte) is our stall watchdog; the field is declared
  // private in the typings but is the library's only knob for it.
  (w as unknown as { requestTimeoutMs: number }).requestTimeoutMs = o.stallTimeoutMs;
  let rv = o.resourceVersion;
  let events = 0;
  let errorEvent: { code: number | undefined; message: string } | undefined;
  return new Promise((resolve, reject) => {
    let request: AbortController | undefined;
    let finished = false;
    let healthy: NodeJS.Timeout | undefined;
    const onAbort = (): void => request?.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const finish = (err: unknown): void => {
      finished = true;
      clearTimeout(healthy);
      signal.removeEventListener('abort', onAbort);
      const status = (err as { statusCode?: number } | null)?.statusCode;
      const stalled = (err as { name?: string } | null)?.name === 'TimeoutError';
      const gone = errorEvent?.code === 410 || status === 410;
      const reason: WatchEndReason = gone
        ? 'expired'
        : errorEvent !== undefined
          ? 'error'
          : stalled
            ? 'stalled'
            : err == null
              ? 'closed'
              : 'error';
      if (!signal.aborted) o.onEnd(reason);
      if (gone) reject(new GoneError('resource version too old'));
      else if (signal.aborted) resolve({ resourceVersion: rv, events });
      else if (errorEvent !== undefined)
        reject(new WatchError(errorEvent.code, errorEvent.message));
      else if (err == null || stalled) resolve({ resourceVersion: rv, events });
      else reject(err instanceof Error ? err : new Error(inspect(err)));
    };
    w.watch(
      o.path,
      {
        ...o.query,
        resourceVersion: rv,
        allowWatchBookmarks: true,
        // Like client-go: a random server-side timeout spreads reconnects out.
        timeoutSeconds: 300 + Math.floor(Math.random() * 300),
      },
      (type: string, raw: unknown) => {
        if (type === 'ERROR') {
          // A metav1.Status; the server closes the stream after it.
          const st = raw as { code?: unknown; message?: unknown } | null;
          errorEvent = {
            code: typeof st?.code === 'number' ? st.code : undefined,
            message: typeof st?.message === 'string' ? st.message : 'watch error',
          };
          return;
        }
        if (signal.aborted) return;
        events++;
        const meta = (raw as { metadata?: { resourceVersion?: string } } | null)?.metadata;
        if (type !== 'BOOKMARK') o.onObject(type, raw);
        // Only after the event was applied: a version is never skipped unseen.
        if (meta?.resourceVersion) rv = meta.resourceVersion;
      },
      finish,
    ).then((controller) => {
      request = controller;
      if (signal.aborted) controller.abort();
      // Connected (a refused watch has finished by now).
      if (!finished)
        healthy = setTimeout(() => {
          if (!finished && !signal.aborted) o.onHealthy();
        }, 1000).unref();
    }, finish);
  });
}
