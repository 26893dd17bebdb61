// Keeps the DNS names that ExternalBackends list resolved: each name once however many backends
// list it, asked again when its answer's TTL runs out (within a floor and a ceiling), through a
// pool that is fair across namespaces so that one namespace's thousand names cannot delay another's.
// Like the probe scheduler, it holds state the reconciler reads (get) and tells it when to look.
import { realClock, type Clock, type Timer } from '../runtime/clock.ts';
import { withConcern } from '../runtime/errors.ts';
import { FairPool, type Tenant } from '../runtime/fairpool.ts';
import {
  expire,
  nextResolution,
  pending,
  sameResolution,
  type LookupOutcome,
  type Resolution,
  type ResolutionLimits,
} from './resolution.ts';

export interface NameResolverOptions {
  /** Asks DNS for a name's addresses; never rejects (see lookup.ts). */
  readonly lookup: (name: string) => Promise<LookupOutcome>;
  readonly limits: ResolutionLimits;
  /** Lookups in flight at once. */
  readonly concurrency: number;
  /**
   * Told when what a name publishes or says has changed, with the owners (backend keys) that list
   * it. An unchanged answer is reported again after `refreshMs`, so that status can show a recent
   * resolvedAt without a write at every TTL.
   */
  readonly onChange: (name: string, owners: readonly string[]) => void;
  readonly refreshMs: number;
  /** After every lookup, for metrics. */
  readonly onLookup?: (outcome: LookupOutcome, seconds: number) => void;
  /** An error escaped a lookup or onChange (a bug); the name keeps its schedule. */
  readonly onError?: (name: string, err: unknown) => void;
  /** Times lookups, TTLs and stale bounds; the real clock by default. */
  readonly clock?: Clock;
}

interface Entry {
  readonly name: string;
  readonly owners: Set<string>;
  /** The latest lookup's result: what the reconciler reads. */
  resolution: Resolution;
  /** The result as last reported through onChange, to tell whether the next one is news. */
  reported: Resolution;
  reportedAt: number;
  timer: Timer | undefined;
  /** Fires when a Stale answer's bound passes, whether or not a lookup has finished by then. */
  expiry: Timer | undefined;
  stopped: boolean;
}

function isStopped(e: Entry): boolean {
  return e.stopped;
}

/** [namespace, name] of a backend key, the pool's tenant. */
function tenantOf(owner: string): Tenant {
  const i = owner.indexOf('/');
  return [owner.slice(0, i), owner.slice(i + 1)];
}

export class NameResolver {
  private readonly names = new Map<string, Entry>();
  private readonly byOwner = new Map<string, ReadonlySet<string>>();
  /** Names listed per namespace, summed over its backends. */
  private readonly perNamespace = new Map<string, number>();
  private readonly pool: FairPool;
  private readonly o: NameResolverOptions;
  private readonly clock: Clock;

  constructor(o: NameResolverOptions) {
    this.o = o;
    this.pool = new FairPool({ concurrency: o.concurrency });
    this.clock = o.clock ?? realClock;
  }

  /** What is known of a name; undefined when no backend lists it. */
  get(name: string): Resolution | undefined {
    return this.names.get(name)?.resolution;
  }

  /** How many names are being kept resolved. */
  get size(): number {
    return this.names.size;
  }

  /**
   * Makes `owner` list exactly these names: new ones are looked up at once, names nobody lists
   * any more are forgotten.
   */
  want(owner: string, names: readonly string[]): void {
    const before = this.byOwner.get(owner) ?? new Set<string>();
    const after = new Set(names);
    for (const name of before) {
      if (after.has(name)) continue;
      const e = this.names.get(name);
      if (e === undefined) continue;
      e.owners.delete(owner);
      if (e.owners.size === 0) {
        this.stopOne(e);
        this.names.delete(name);
      }
    }
    for (const name of after) {
      let e = this.names.get(name);
      if (e === undefined) {
        e = {
          name,
          owners: new Set(),
          resolution: pending(name),
          reported: pending(name),
          reportedAt: this.clock.now(),
          timer: undefined,
          expiry: undefined,
          stopped: false,
        };
        this.names.set(name, e);
        this.schedule(e, 0);
      }
      e.owners.add(owner);
    }
    if (after.size > 0) this.byOwner.set(owner, after);
    else this.byOwner.delete(owner);
    const ns = tenantOf(owner)[0];
    const count = (this.perNamespace.get(ns) ?? 0) - before.size + after.size;
    if (count > 0) this.perNamespace.set(ns, count);
    else this.perNamespace.delete(ns);
  }

  async stop(): Promise<void> {
    for (const e of this.names.values()) this.stopOne(e);
    this.names.clear();
    this.byOwner.clear();
    this.perNamespace.clear();
    this.pool.clear();
    await this.pool.onIdle();
  }

  private stopOne(e: Entry): void {
    e.stopped = true;
    if (e.timer !== undefined) this.clock.clearTimeout(e.timer);
    if (e.expiry !== undefined) this.clock.clearTimeout(e.expiry);
  }

  /** Takes a new state of a name, and tells its owners when it is news (or a refresh is due). */
  private update(e: Entry, next: Resolution, now: number): void {
    const changed = !sameResolution(e.reported, next) || now - e.reportedAt >= this.o.refreshMs;
    e.resolution = next;
    if (e.expiry !== undefined) this.clock.clearTimeout(e.expiry);
    e.expiry = undefined;
    if (next.state === 'Stale' && next.keptUntil !== undefined) {
      e.expiry = this.clock.setTimeout(
        () => {
          withConcern({ dnsName: e.name }, () => {
            if (!isStopped(e))
              this.update(e, expire(e.resolution, this.clock.now()), this.clock.now());
          });
        },
        Math.max(0, next.keptUntil - now),
      );
    }
    if (!changed) return;
    e.reported = next;
    e.reportedAt = now;
    this.o.onChange(e.name, [...e.owners]);
  }

  private schedule(e: Entry, delayMs: number): void {
    e.timer = this.clock.setTimeout(() => {
      withConcern({ dnsName: e.name }, () => {
        this.dispatch(e);
      });
    }, delayMs);
  }

  /**
   * Whom a lookup is charged to in the fair pool: of the backends listing the name, the one whose
   * namespace lists the fewest names. Charging the first owner would let a namespace that lists a
   * victim's name first, next to a thousand names that never answer, queue the victim's lookups
   * behind its own.
   */
  private payer(e: Entry): string {
    let best = '/';
    let fewest = Infinity;
    for (const owner of e.owners) {
      const n = this.perNamespace.get(tenantOf(owner)[0]) ?? 0;
      if (n < fewest) {
        best = owner;
        fewest = n;
      }
    }
    return best;
  }

  private dispatch(e: Entry): void {
    const owner = this.payer(e);
    let next = this.o.limits.minTtlMs;
    this.pool
      .run(tenantOf(owner), async () => {
        if (isStopped(e)) return;
        const started = performance.now();
        const outcome = await this.o.lookup(e.name);
        this.o.onLookup?.(outcome, (performance.now() - started) / 1000);
        if (isStopped(e)) return;
        const now = this.clock.now();
        const step = nextResolution(e.resolution, outcome, now, this.o.limits);
        next = step.nextInMs;
        this.update(e, step.resolution, now);
      })
      .catch((err: unknown) => {
        this.o.onError?.(e.name, err);
      })
      .finally(() => {
        if (!isStopped(e)) this.schedule(e, next);
      });
  }
}
