import { realClock, sleep, type Clock } from './clock.ts';
import { TokenBucket } from './ratelimit.ts';

/**
 * Client-side pacing of API requests, as client-go's rate limiter paces kube-controller-manager
 * (--kube-api-qps, --kube-api-burst): a storm of changes then costs the API server a bounded
 * request rate, and the work queue merges changes to a key while it waits.
 */
export class Throttle {
  private readonly bucket: TokenBucket;
  private readonly mayWrite: () => boolean;
  private readonly clock: Clock;

  /**
   * `mayWrite` is asked right before each request is released (leader election: whether the lease
   * is still held), so that no write leaves a replica that has lost its lease.
   */
  constructor(
    qps: number,
    burst: number,
    mayWrite: () => boolean = () => true,
    clock: Clock = realClock,
  ) {
    this.bucket = new TokenBucket(qps, burst, () => clock.now());
    this.mayWrite = mayWrite;
    this.clock = clock;
  }

  /** Resolves when a request may be sent (reserving its token at once); throws NotLeaderError. */
  async acquire(): Promise<void> {
    const wait = this.bucket.when();
    if (wait > 0) await sleep(this.clock, wait);
    if (!this.mayWrite()) throw new NotLeaderError('not the leader: this replica may not write');
  }
}

export class NotLeaderError extends Error {
  override name = 'NotLeaderError';
}
