// What outrigger knows of one DNS name, as a pure function of the lookups so far: the addresses to
// publish, whether they are fresh, kept from an earlier answer, or gone, and when to ask again.
// resolver.ts runs the lookups; the ExternalBackend planner reads the result (sources/dns.ts).

export type NameState = 'Pending' | 'Resolved' | 'Stale' | 'Failed';

export interface Resolution {
  readonly name: string;
  readonly state: NameState;
  /** The addresses to publish (sorted, each once, at most `maxAddresses`). */
  readonly ips: readonly string[];
  /** Addresses of the answer left out because it had more than `maxAddresses`. */
  readonly leftOut: number;
  /** When the addresses in `ips` were last confirmed by an answer (ms). */
  readonly resolvedAt?: number;
  /** The answer's TTL as the records gave it (the smallest of them), in seconds. */
  readonly ttlSeconds?: number;
  /** Until when a Stale name's addresses stay published (ms). */
  readonly keptUntil?: number;
  /** The last lookup's error, for a Stale or Failed name. */
  readonly error?: string;
  /** Lookups that failed in a row. */
  readonly failures: number;
}

/** One lookup of both families: the addresses found, and the families whose query failed. */
export interface LookupOutcome {
  readonly ips: readonly string[];
  /** The smallest TTL of the records found, in seconds. */
  readonly ttlSeconds: number;
  /** Queries that got no answer (timeout, SERVFAIL, refused); "no such record" is not an error. */
  readonly errors: readonly { readonly family: Family; readonly error: string }[];
}

export type Family = 'IPv4' | 'IPv6';

export interface ResolutionLimits {
  /** Answers are asked again after their TTL, but never sooner than this nor later than maxTtlMs. */
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
  /** How long the last good answer stays published while lookups fail. */
  readonly staleMs: number;
  /** Most addresses one name contributes. */
  readonly maxAddresses: number;
}

/** Lookups that must fail in a row before a resolved name is reported Stale. */
export const staleAfterFailures = 3;

/**
 * How far status.dnsNames[].resolvedAt may lag the latest confirming lookup: it is rewritten only
 * when it is older than this, so an unchanged answer costs one status write per backend per period.
 */
export const resolvedAtRefreshMs = 10 * 60_000;

/** A Stale name whose bound has passed: Failed, its addresses withdrawn. */
export function expire(r: Resolution, now: number): Resolution {
  if (r.state !== 'Stale' || r.keptUntil === undefined || now < r.keptUntil) return r;
  return {
    name: r.name,
    state: 'Failed',
    ips: [],
    leftOut: 0,
    ...(r.resolvedAt !== undefined ? { resolvedAt: r.resolvedAt } : {}),
    ...(r.error !== undefined ? { error: r.error } : {}),
    failures: r.failures,
  };
}

export function pending(name: string): Resolution {
  return { name, state: 'Pending', ips: [], leftOut: 0, failures: 0 };
}

/**
 * The name's state after one lookup, and how long until the next. A failure (no answer, SERVFAIL,
 * or no address of either family) keeps the last good addresses for `staleMs` after they were last
 * confirmed, so that a DNS outage does not empty a Service at once; after that they are withdrawn.
 * Failures back off from the TTL floor, doubling up to the ceiling, but a stale answer is asked
 * about again by the time it would expire, so that it never outlives its bound.
 */
export function nextResolution(
  prev: Resolution,
  outcome: LookupOutcome,
  now: number,
  limits: ResolutionLimits,
): { resolution: Resolution; nextInMs: number } {
  const error = failure(prev, outcome);
  // Past the bound, a family that still gets no answer no longer holds the other one back.
  const boundPassed = prev.resolvedAt !== undefined && now >= prev.resolvedAt + limits.staleMs;
  if (error === undefined || (outcome.ips.length > 0 && boundPassed)) {
    const unique = [...new Set(outcome.ips)].sort(compareIPs);
    const ips = unique.slice(0, limits.maxAddresses);
    return {
      resolution: {
        name: prev.name,
        state: 'Resolved',
        ips,
        leftOut: unique.length - ips.length,
        resolvedAt: now,
        ttlSeconds: outcome.ttlSeconds,
        failures: 0,
      },
      nextInMs: clamp(outcome.ttlSeconds * 1000, limits.minTtlMs, limits.maxTtlMs),
    };
  }
  const failures = prev.failures + 1;
  const backoff = Math.min(limits.maxTtlMs, limits.minTtlMs * 2 ** Math.min(failures - 1, 10));
  // A failure or two in a row is not news: a name whose server fails every other query would
  // otherwise flip Resolved and Stale at every lookup, and every backend listing it would write
  // its status each time.
  if (prev.state === 'Resolved' && failures < staleAfterFailures)
    return { resolution: { ...prev, failures }, nextInMs: backoff };
  const keptUntil = prev.resolvedAt === undefined ? undefined : prev.resolvedAt + limits.staleMs;
  if (prev.ips.length > 0 && keptUntil !== undefined && now < keptUntil) {
    return {
      resolution: { ...prev, state: 'Stale', keptUntil, error, failures },
      nextInMs: Math.max(1, Math.min(backoff, keptUntil - now)),
    };
  }
  return {
    resolution: {
      name: prev.name,
      state: 'Failed',
      ips: [],
      leftOut: 0,
      ...(prev.resolvedAt !== undefined ? { resolvedAt: prev.resolvedAt } : {}),
      error,
      failures,
    },
    nextInMs: backoff,
  };
}

/**
 * Why a lookup does not count as an answer: nothing found, or a family that had addresses before
 * got no answer this time (publishing the rest would withdraw that family for a passing error). A
 * family that never had addresses may fail for good without harm, as AAAA queries do on some
 * servers, so the other family's answer stands.
 */
function failure(prev: Resolution, outcome: LookupOutcome): string | undefined {
  const errors = outcome.errors.map(
    (e) => `${e.family === 'IPv4' ? 'A' : 'AAAA'} lookup: ${e.error}`,
  );
  if (outcome.ips.length === 0)
    return errors.length > 0 ? errors.join('; ') : 'no A or AAAA records';
  const had = new Set(prev.ips.map((ip) => (ip.includes(':') ? 'IPv6' : 'IPv4')));
  const lost = outcome.errors.filter((e) => had.has(e.family));
  return lost.length > 0 ? errors.join('; ') : undefined;
}

/** Whether two resolutions publish the same and say the same (what a reconcile would see). */
export function sameResolution(a: Resolution | undefined, b: Resolution): boolean {
  return (
    a?.state === b.state &&
    a.error === b.error &&
    a.leftOut === b.leftOut &&
    a.ips.length === b.ips.length &&
    a.ips.every((ip, i) => ip === b.ips[i])
  );
}

function clamp(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, v));
}

/** IPv4 before IPv6, then as strings: a stable order for status and slices. */
function compareIPs(a: string, b: string): number {
  const fa = a.includes(':') ? 1 : 0;
  const fb = b.includes(':') ? 1 : 0;
  if (fa !== fb) return fa - fb;
  return a < b ? -1 : a > b ? 1 : 0;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** A name's state in words, as status and Events say it. */
export function nameMessage(n: Resolution): string {
  switch (n.state) {
    case 'Pending':
      return 'not looked up yet';
    case 'Resolved':
      return n.leftOut > 0
        ? `${String(n.leftOut)} more addresses left out: at most ${String(n.ips.length)} per name are published`
        : '';
    case 'Stale':
      return `lookups fail (${n.error ?? 'no answer'}); the last answer${n.resolvedAt !== undefined ? ` (${iso(n.resolvedAt)})` : ''} stays published${n.keptUntil !== undefined ? ` until ${iso(n.keptUntil)}` : ''}`;
    case 'Failed':
      return `lookups fail (${n.error ?? 'no answer'}); nothing of this name is published`;
  }
}
