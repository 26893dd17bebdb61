import { realClock, type Clock } from './clock.ts';

/**
 * Per-key retry delays as client-go's DefaultControllerRateLimiter computes them: the larger of an
 * exponential per-key backoff (5 ms · 2^failures, capped at 1000 s) and an overall token bucket
 * (10 per second, burst 100) so that a mass failure does not hammer the API server.
 */
export interface RateLimiter {
  /** Delay in ms before `key` may be retried; counts one more failure. */
  when(key: string): number;
  forget(key: string): void;
  numRequeues(key: string): number;
}

export class ExponentialBackoff implements RateLimiter {
  private readonly failures = new Map<string, number>();
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(baseMs = 5, maxMs = 1_000_000) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return Math.min(this.baseMs * 2 ** n, this.maxMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

export class TokenBucket implements RateLimiter {
  private tokens: number;
  private last: number;
  private readonly perSecond: number;
  private readonly burst: number;
  private readonly now: () => number;

  constructor(perSecond = 10, burst = 100, now: () => number = () => realClock.now()) {
    this.perSecond = perSecond;
    this.burst = burst;
    this.now = now;
    this.tokens = burst;
    this.last = now();
  }

  /** Reserves a token and returns how long until it is available. */
  when(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.perSecond) * 1000;
  }

  forget(): void {
    // Tokens are shared; nothing is kept per key.
  }

  numRequeues(): number {
    return 0;
  }
}

export class MaxOf implements RateLimiter {
  private readonly limiters: readonly RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    return Math.max(0, ...this.limiters.map((l) => l.when(key)));
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: string): number {
    return Math.max(0, ...this.limiters.map((l) => l.numRequeues(key)));
  }
}

export function defaultControllerRateLimiter(clock: Clock = realClock): RateLimiter {
  return new MaxOf(new ExponentialBackoff(), new TokenBucket(10, 100, () => clock.now()));
}
