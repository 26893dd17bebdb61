// One watch request on the lean client's stream (rest.ts), with what a raw stream leaves to the
// caller: ERROR events and 410 told apart from a normal close, bookmarks, and why it ended.
import { inspect } from 'node:util';
import type { WatchRequest } from './rest.ts';

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
  /** Opens the watch: a ResourceClient's, for one scope. */
  readonly stream: (w: WatchRequest) => Promise<void>;
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
  let rv = o.resourceVersion;
  let events = 0;
  let errorEvent: { code: number | undefined; message: string } | undefined;
  return new Promise((resolve, reject) => {
    let finished = false;
    let healthy: NodeJS.Timeout | undefined;
    const finish = (err: unknown): void => {
      finished = true;
      clearTimeout(healthy);
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
    o.stream({
      query: {
        resourceVersion: rv,
        allowWatchBookmarks: 'true',
        // Like client-go: a random server-side timeout spreads reconnects out.
        timeoutSeconds: 300 + Math.floor(Math.random() * 300),
      },
      signal,
      stallTimeoutMs: o.stallTimeoutMs,
      onConnected: () => {
        healthy = setTimeout(() => {
          if (!finished && !signal.aborted) o.onHealthy();
        }, 1000).unref();
      },
      onEvent: (type, raw) => {
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
    }).then(() => {
      finish(null);
    }, finish);
  });
}
