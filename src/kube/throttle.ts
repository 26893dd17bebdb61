import { TokenBucket } from '../queue/ratelimit.ts';

/**
 * Client-side pacing of API requests, as client-go's rate limiter paces kube-controller-manager
 * (--kube-api-qps, --kube-api-burst): a storm of changes then costs the API server a bounded
 * request rate, and the work queue merges changes to a key while it waits.
 */
export class Throttle {
  private readonly bucket: TokenBucket;

  constructor(qps: number, burst: number) {
    this.bucket = new TokenBucket(qps, burst);
  }

  /** Resolves when a request may be sent (reserving its token at once). */
  async acquire(): Promise<void> {
    const wait = this.bucket.when();
    if (wait > 0) {
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
