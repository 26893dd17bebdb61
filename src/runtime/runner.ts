import { realClock, type Clock } from './clock.ts';
import { withConcern } from './errors.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { RateLimiter } from './ratelimit.ts';
import { WorkQueue } from './workqueue.ts';

/**
 * What a reconcile asks of the loop: to look at the key again after a while (a hold-off ending,
 * a certificate nearing its warning window, a batched status write), as controller-runtime's
 * Result.RequeueAfter. The runner alone puts keys back on the queue.
 *
 * `error` is a failure the reconcile planned around (one write failed, the rest of the plan was
 * applied): the key is retried with backoff like a thrown error, and the planned look comes
 * too, whichever is sooner. controller-runtime drops the result of a failed reconcile; here the
 * planned look survives, because a key that fails maxRetries times is dropped from backoff and a
 * certificate warning or a hold-off ending would otherwise wait for an unrelated event.
 */
export interface ReconcileResult {
  readonly requeueAfterMs?: number | undefined;
  readonly error?: unknown;
}

/** Nothing to look at again until the next event. */
export const done: ReconcileResult = Object.freeze({});

export type Reconcile = (key: string) => Promise<ReconcileResult>;

export interface ControllerOptions {
  readonly name: string;
  readonly workers: number;
  /** After this many consecutive failures a key is dropped until its next event (upstream: 15). */
  readonly maxRetries: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Times requeues, backoff and how long a reconcile has been running; the real clock by default. */
  readonly clock?: Clock;
  /** Retry delays of failing keys; client-go's default controller rate limiter by default. */
  readonly rateLimiter?: RateLimiter;
}

/**
 * The level-based loop of controller-runtime: a key comes off the queue, `reconcile` reads the world
 * for it, and a failure requeues it with per-key backoff until maxRetries.
 */
export class Controller {
  readonly queue: WorkQueue;
  private readonly opts: ControllerOptions;
  private readonly clock: Clock;
  private active = 0;

  constructor(opts: ControllerOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? realClock;
    const queue: WorkQueue = new WorkQueue({
      clock: this.clock,
      ...(opts.rateLimiter === undefined ? {} : { rateLimiter: opts.rateLimiter }),
      // Turns by namespace: a namespace with thousands of objects changing at once cannot make
      // another's one change wait behind all of them (keys are "namespace/name").
      ownerOf: (key) => key.slice(0, Math.max(0, key.indexOf('/'))),
      metrics: opts.metrics.queue(opts.name, () => queue.inFlightSince()),
      onHandlerError: (key, err) => {
        opts.log.error({ key, err: String(err) }, 'reconcile handler threw');
      },
    });
    this.queue = queue;
    opts.metrics.maxConcurrentReconciles.set({ controller: opts.name }, opts.workers);
  }

  /** Milliseconds the oldest in-flight reconcile has been running (0 when idle). */
  stuckForMs(): number {
    const since = this.queue.inFlightSince();
    return since.length === 0 ? 0 : this.clock.now() - Math.min(...since);
  }

  run(reconcile: Reconcile): Promise<void> {
    const { name, metrics } = this.opts;
    return this.queue.run(this.opts.workers, async (key) => {
      this.active++;
      metrics.activeWorkers.set({ controller: name }, this.active);
      const end = metrics.reconcileTime.startTimer({ controller: name });
      let result: ReconcileResult;
      try {
        result = await withConcern({ controller: name, object: key }, () => reconcile(key));
      } catch (err) {
        result = { error: err ?? new Error('reconcile threw without a reason') };
      }
      try {
        if (result.error === undefined) {
          this.queue.forget(key);
          metrics.reconcileTotal.inc({ controller: name, result: 'success' });
        } else {
          this.failed(key, result.error);
        }
        // After the backoff's add: the queue keeps whichever of the two comes sooner.
        if (result.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
      } finally {
        end();
        this.active--;
        metrics.activeWorkers.set({ controller: name }, this.active);
      }
    });
  }

  shutDown(): void {
    this.queue.shutDown();
  }

  /** Counts a failure and retries the key with backoff, or drops it after maxRetries. */
  private failed(key: string, err: unknown): void {
    const { name, metrics, log, maxRetries } = this.opts;
    metrics.reconcileTotal.inc({ controller: name, result: 'error' });
    metrics.reconcileErrors.inc({ controller: name });
    if (isProgrammingError(err)) metrics.reconcilePanics.inc({ controller: name });
    const retries = this.queue.numRequeues(key);
    if (retries < maxRetries) {
      log.info(
        { controller: name, key, err: errorMessage(err), retries },
        'reconcile failed; retrying',
      );
      this.queue.addRateLimited(key);
    } else {
      log.error(
        { controller: name, key, err: errorMessage(err), retries },
        'reconcile failed too often; dropping the key until its next change',
      );
      this.queue.forget(key);
      metrics.terminalReconcileErrors.inc({ controller: name });
    }
  }
}

export function errorMessage(err: unknown): string {
  if (err !== null && typeof err === 'object' && 'body' in err) {
    const body = (err as { body?: unknown }).body;
    try {
      const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as {
        message?: unknown;
      } | null;
      if (typeof parsed?.message === 'string') return parsed.message;
    } catch {
      // Not JSON; fall through.
    }
  }
  return err instanceof Error ? err.message : String(err);
}

/** What a Go controller would call a panic: an error of the code itself, not of the world. */
export function isProgrammingError(err: unknown): boolean {
  return err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError;
}
