// Authentication and authorization of /metrics scrapes, as controller-runtime's
// filters.WithAuthenticationAndAuthorization does it: the request's bearer token is reviewed by the
// API server (TokenReview), then the user it names must be allowed `get` on the non-resource URL
// (SubjectAccessReview). Prometheus then needs a token and a ClusterRole granting
// nonResourceURLs ["/metrics"], the kube-prometheus convention.
import { createHash } from 'node:crypto';
import type {
  V1SubjectAccessReview,
  V1SubjectAccessReviewSpec,
  V1TokenReview,
} from '@kubernetes/client-node';
import type { Rest } from '../runtime/rest.ts';

export interface UserInfo {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

/** The two reviews the API server answers; real in production, a fake in unit tests. */
export interface Reviewer {
  /** The user the token belongs to, or undefined when the API server does not accept it. */
  authenticate(token: string): Promise<UserInfo | undefined>;
  /** Whether `user` may `verb` the non-resource `path`. */
  authorize(user: UserInfo, verb: string, path: string): Promise<boolean>;
}

export function kubeReviewer(rest: Rest): Reviewer {
  return {
    async authenticate(token) {
      const r = await rest.request<V1TokenReview>(
        'POST',
        '/apis/authentication.k8s.io/v1/tokenreviews',
        { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } } },
      );
      const user = r.status?.user;
      if (r.status?.authenticated !== true || user?.username === undefined) return undefined;
      return {
        username: user.username,
        ...(user.uid !== undefined && { uid: user.uid }),
        ...(user.groups !== undefined && { groups: user.groups }),
        ...(user.extra !== undefined && { extra: user.extra }),
      };
    },
    async authorize(user, verb, path) {
      const spec: V1SubjectAccessReviewSpec = {
        user: user.username,
        ...(user.uid !== undefined && { uid: user.uid }),
        ...(user.groups !== undefined && { groups: [...user.groups] }),
        ...(user.extra !== undefined && {
          extra: Object.fromEntries(Object.entries(user.extra).map(([k, v]) => [k, [...v]])),
        }),
        nonResourceAttributes: { path, verb },
      };
      const r = await rest.request<V1SubjectAccessReview>(
        'POST',
        '/apis/authorization.k8s.io/v1/subjectaccessreviews',
        {
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec,
          },
        },
      );
      return r.status?.allowed === true && r.status.denied !== true;
    },
  };
}

export type Outcome = 'allowed' | 'unauthenticated' | 'forbidden' | 'throttled' | 'error';

export interface Decision {
  readonly outcome: Outcome;
  /** Whether a cached review answered (no API request was made for this scrape). */
  readonly cached: boolean;
  /** The reviewed user, when authenticated. */
  readonly user?: string;
  /** Why a review failed (outcome "error"). */
  readonly error?: unknown;
}

export interface AuthOptions {
  /**
   * How long an allowed token is trusted without asking again. A minute, as controller-runtime's
   * authenticator cache: longer than any usual scrape interval (15–60 s), so a Prometheus scraping
   * every 15 s costs the API server two reviews a minute instead of two per scrape; a revoked
   * token or grant is refused again within this time.
   */
  readonly allowTtlMs?: number;
  /**
   * How long after its answer expired an allowed token is still served while a fresh review
   * cannot be had (the review budget is spent, or the review failed). Without it, a stranger who
   * keeps the budget spent with junk tokens would lock Prometheus out once its answer expired,
   * and with it every alert; with it, a revoked grant can outlive the revocation by this much
   * during such a flood or an API outage.
   */
  readonly staleAllowedMs?: number;
  /** How long a refused token (invalid, or not granted) stays refused without asking again. */
  readonly denyTtlMs?: number;
  /** How long a failed review (API error, timeout) is repeated from memory instead of retried. */
  readonly errorTtlMs?: number;
  /** Allowed tokens remembered; only a token that passed both reviews gets in. */
  readonly maxAllowed?: number;
  /** Refused tokens remembered; anyone can fill this one, so it is separate from the allowed. */
  readonly maxDenied?: number;
  /** Reviews in flight at once; more uncached requests are refused with 429 at once. */
  readonly maxInFlight?: number;
  /** Uncached reviews started per second (sustained) and in a burst. */
  readonly reviewsPerSecond?: number;
  readonly reviewBurst?: number;
  /** A review (both calls) that takes longer than this counts as failed. */
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

interface Entry {
  readonly decision: Decision;
  readonly expires: number;
}

/** Tokens longer than this are refused unread: API servers mint tokens of 1–2 KiB. */
const maxTokenLength = 16 * 1024;

/**
 * Answers whether a scrape's Authorization header may read `path`. Every denial a stranger can
 * cause is cheap: a missing or oversized token needs no API request; a token refused once is
 * refused from memory for a while; uncached reviews are capped in flight and in rate, so a flood of
 * random tokens turns into 429s rather than a TokenReview storm that would compete with the
 * operator's own API requests. A token already allowed keeps being answered from memory during
 * such a flood, also after its answer expired (staleAllowedMs), so Prometheus's scrapes go on.
 */
export class MetricsAuthorizer {
  private readonly reviewer: Reviewer;
  private readonly allowed = new Map<string, Entry>();
  private readonly denied = new Map<string, Entry>();
  /** One review per token at a time: concurrent scrapes with the same token share it. */
  private readonly pending = new Map<string, Promise<Decision>>();
  private inFlight = 0;
  private tokens: number;
  private lastRefill: number;
  private readonly o: Required<AuthOptions>;

  constructor(reviewer: Reviewer, opts: AuthOptions = {}) {
    this.reviewer = reviewer;
    this.o = {
      allowTtlMs: 60_000,
      staleAllowedMs: 600_000,
      denyTtlMs: 10_000,
      errorTtlMs: 2_000,
      maxAllowed: 256,
      maxDenied: 4096,
      maxInFlight: 4,
      reviewsPerSecond: 10,
      reviewBurst: 20,
      timeoutMs: 5_000,
      now: Date.now,
      ...opts,
    };
    this.tokens = this.o.reviewBurst;
    this.lastRefill = this.o.now();
  }

  async review(authorization: string | undefined, verb: string, path: string): Promise<Decision> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    const token = m?.[1];
    if (token === undefined || token.length > maxTokenLength)
      return { outcome: 'unauthenticated', cached: true };
    const key = createHash('sha256').update(`${verb} ${path} ${token}`).digest('base64');
    const now = this.o.now();
    const hit = this.allowed.get(key) ?? this.denied.get(key);
    if (hit !== undefined && hit.expires > now) return { ...hit.decision, cached: true };
    const lastAllowed = this.allowed.get(key);
    const stale: Decision | undefined =
      lastAllowed !== undefined && lastAllowed.expires + this.o.staleAllowedMs > now
        ? { ...lastAllowed.decision, cached: true }
        : undefined;
    const shared = this.pending.get(key);
    if (shared !== undefined) return shared;
    if (this.inFlight >= this.o.maxInFlight || !this.takeToken(now))
      return stale ?? { outcome: 'throttled', cached: false };
    this.inFlight++;
    const p = this.ask(token, verb, path)
      .then((decision) => {
        if (decision.outcome === 'error' && stale !== undefined) return stale;
        this.remember(key, decision);
        return decision;
      })
      .finally(() => {
        this.inFlight--;
        this.pending.delete(key);
      });
    this.pending.set(key, p);
    return p;
  }

  private takeToken(now: number): boolean {
    const { reviewsPerSecond, reviewBurst } = this.o;
    this.tokens = Math.min(
      reviewBurst,
      this.tokens + ((now - this.lastRefill) / 1000) * reviewsPerSecond,
    );
    this.lastRefill = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private async ask(token: string, verb: string, path: string): Promise<Decision> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`review took over ${String(this.o.timeoutMs)} ms`));
      }, this.o.timeoutMs);
    });
    try {
      return await Promise.race([this.decide(token, verb, path), timeout]);
    } catch (error) {
      return { outcome: 'error', cached: false, error };
    } finally {
      clearTimeout(timer);
    }
  }

  private async decide(token: string, verb: string, path: string): Promise<Decision> {
    const user = await this.reviewer.authenticate(token);
    if (user === undefined) return { outcome: 'unauthenticated', cached: false };
    const ok = await this.reviewer.authorize(user, verb, path);
    return { outcome: ok ? 'allowed' : 'forbidden', cached: false, user: user.username };
  }

  private remember(key: string, decision: Decision): void {
    const { allowTtlMs, denyTtlMs, errorTtlMs, maxAllowed, maxDenied } = this.o;
    const allowedNow = decision.outcome === 'allowed';
    const map = allowedNow ? this.allowed : this.denied;
    const ttl = allowedNow ? allowTtlMs : decision.outcome === 'error' ? errorTtlMs : denyTtlMs;
    // A token's new answer replaces its old one in whichever map held it.
    this.allowed.delete(key);
    this.denied.delete(key);
    // The error itself was logged with the review that failed; repeats carry only the outcome.
    const kept: Decision = {
      outcome: decision.outcome,
      cached: false,
      ...(decision.user !== undefined && { user: decision.user }),
    };
    map.set(key, { decision: kept, expires: this.o.now() + ttl });
    // Maps iterate in insertion order: the first key is the oldest answer.
    while (map.size > (allowedNow ? maxAllowed : maxDenied)) {
      const oldest = map.keys().next().value;
      if (oldest === undefined) break;
      map.delete(oldest);
    }
  }
}
