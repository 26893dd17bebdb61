import PQueue from 'p-queue';
import { realClock, type Clock, type Timer } from './clock.ts';
import { defaultControllerRateLimiter, type RateLimiter } from './ratelimit.ts';

/** Observations a queue reports, named after client-go's workqueue metrics. */
export interface QueueMetrics {
  add(): void;
  depth(n: number): void;
  queueLatency(seconds: number): void;
  workDuration(seconds: number): void;
  retry(): void;
}

const noMetrics: QueueMetrics = {
  add: () => undefined,
  depth: () => undefined,
  queueLatency: () => undefined,
  workDuration: () => undefined,
  retry: () => undefined,
};

export interface WorkQueueOptions {
  /**
   * Whose a key is (e.g. its namespace). Waiting keys are handed out in turns across owners,
   * first come first served within one, so that one owner with many keys queued cannot make
   * another's wait behind all of them. Default: one owner, plain first come first served.
   */
  readonly ownerOf?: (key: string) => string;
  readonly rateLimiter?: RateLimiter;
  readonly metrics?: QueueMetrics;
  /** Times delays (addAfter, rate-limited adds) and the latency metrics; the real clock by default. */
  readonly clock?: Clock;
  /** Called when a handler throws; handlers are expected to catch their own errors. */
  readonly onHandlerError?: (key: string, err: unknown) => void;
}

/** A first-in first-out queue with O(1) push and shift (Array.prototype.shift is O(n)). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

/**
 * A keyed work queue with client-go's guarantees: a key waiting to be processed is queued once no
 * matter how often it is added; a key is never handed to two workers at once (an add while it is
 * being processed is remembered and runs after); delayed and rate-limited adds; per-key backoff.
 * Unlike client-go's, it can take turns across owners (see ownerOf). Bounded concurrency comes
 * from p-queue; this class decides which key may run next.
 */
export class WorkQueue {
  /** Each owner's waiting keys, and the owners with keys waiting, in the order of their turns. */
  private readonly byOwner = new Map<string, Fifo<string>>();
  private turns = new Fifo<string>();
  private waitingKeys = 0;
  private readonly ownerOf: (key: string) => string;
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, number>();
  private readonly addedAt = new Map<string, number>();
  private readonly waiting = new Map<string, { at: number; timer: Timer }>();
  private readonly rateLimiter: RateLimiter;
  private readonly metrics: QueueMetrics;
  private readonly clock: Clock;
  private readonly onHandlerError: (key: string, err: unknown) => void;
  private shuttingDown = false;
  private pool: PQueue | undefined;
  private handler: ((key: string) => Promise<void>) | undefined;

  constructor(opts: WorkQueueOptions = {}) {
    this.ownerOf = opts.ownerOf ?? (() => '');
    this.clock = opts.clock ?? realClock;
    this.rateLimiter = opts.rateLimiter ?? defaultControllerRateLimiter(this.clock);
    this.metrics = opts.metrics ?? noMetrics;
    this.onHandlerError =
      opts.onHandlerError ??
      ((key, err) => {
        process.emitWarning(`work queue handler failed for ${key}: ${String(err)}`);
      });
  }

  /** Keys waiting to be processed (not counting delayed ones or those being processed). */
  len(): number {
    return this.waitingKeys;
  }

  /** Start times (ms) of the keys being processed now, for the unfinished-work metrics. */
  inFlightSince(): number[] {
    return [...this.processing.values()];
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.metrics.add();
    this.dirty.add(key);
    this.addedAt.set(key, this.clock.now());
    if (this.processing.has(key)) return;
    this.push(key);
    this.metrics.depth(this.len());
    this.pump();
  }

  /** Adds `key` after `delayMs`; an earlier pending delay for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing !== undefined && existing.at <= at) return;
    if (existing !== undefined) this.clock.clearTimeout(existing.timer);
    const timer = this.clock.setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { at, timer });
  }

  addRateLimited(key: string): void {
    this.metrics.retry();
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Clears the key's failure history (call after a successful reconcile). */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /**
   * Processes keys with at most `workers` running at once until shutDown(); resolves when the
   * queue is shut down and the keys in flight have finished.
   */
  async run(workers: number, handler: (key: string) => Promise<void>): Promise<void> {
    if (this.pool !== undefined) throw new Error('the queue is already running');
    this.pool = new PQueue({ concurrency: workers });
    // 'next' fires once a task has finished and p-queue has freed its slot.
    this.pool.addEventListener('next', () => {
      this.pump();
    });
    this.handler = handler;
    this.pump();
    await new Promise<void>((resolve) => {
      this.onStopped = resolve;
      this.checkStopped();
    });
  }

  private onStopped: (() => void) | undefined;

  /** Stops accepting keys; keys in flight finish, queued and delayed ones are dropped. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) this.clock.clearTimeout(timer);
    this.waiting.clear();
    this.byOwner.clear();
    this.turns = new Fifo();
    this.waitingKeys = 0;
    this.dirty.clear();
    this.metrics.depth(0);
    this.checkStopped();
  }

  private checkStopped(): void {
    if (this.shuttingDown && this.processing.size === 0) this.onStopped?.();
  }

  private push(key: string): void {
    const owner = this.ownerOf(key);
    let keys = this.byOwner.get(owner);
    if (keys === undefined) {
      keys = new Fifo();
      this.byOwner.set(owner, keys);
      this.turns.push(owner);
    }
    keys.push(key);
    this.waitingKeys++;
  }

  /** The next key of the owner whose turn it is; the owner goes to the back if it has more. */
  private pop(): string | undefined {
    const owner = this.turns.shift();
    if (owner === undefined) return undefined;
    const keys = this.byOwner.get(owner);
    const key = keys?.shift();
    if (keys === undefined || key === undefined) return undefined;
    if (keys.length > 0) this.turns.push(owner);
    else this.byOwner.delete(owner);
    this.waitingKeys--;
    return key;
  }

  private pump(): void {
    const pool = this.pool;
    const handler = this.handler;
    if (pool === undefined || handler === undefined) return;
    while (!this.shuttingDown && pool.pending + pool.size < pool.concurrency) {
      const key = this.pop();
      if (key === undefined) break;
      const started = this.clock.now();
      this.metrics.queueLatency((started - (this.addedAt.get(key) ?? started)) / 1000);
      this.metrics.depth(this.len());
      this.addedAt.delete(key);
      this.dirty.delete(key);
      this.processing.set(key, started);
      pool
        .add(async () => {
          try {
            await handler(key);
          } catch (err) {
            this.onHandlerError(key, err);
          } finally {
            this.done(key, started);
          }
        })
        .catch((err: unknown) => {
          this.onHandlerError(key, err);
        });
    }
  }

  private done(key: string, started: number): void {
    this.metrics.workDuration((this.clock.now() - started) / 1000);
    this.processing.delete(key);
    if (this.dirty.has(key)) {
      this.push(key);
      this.metrics.depth(this.len());
    }
    this.checkStopped();
  }
}
