// The leader's view of every prober: its own health checks and the standbys' fresh ProberReports,
// turned into ballots per address (quorum/vote.ts decides). Read by the ExternalBackend
// controller's gather; it only reads caches and the scheduler, and writes nothing.
import type { CachedProberReport } from '../../api/resources.ts';
import type { AddressHealth } from '../../health/state.ts';
import {
  assignProbers,
  decide,
  dissent,
  isPartitioned,
  type Ballot,
  type Dissent,
  type Verdict,
} from '../../quorum/vote.ts';

export interface ReportCache {
  list(namespace?: string): CachedProberReport[];
}

export interface QuorumViewOptions {
  readonly reports: ReportCache;
  /** This replica's name: its own report (from before it led) is not a standby's. */
  readonly self: string;
  /** --probers-per-address: the leader and this many less one standbys check a backend. */
  readonly probersPerAddress: number;
  readonly zone: () => string | undefined;
  readonly now: () => number;
  /** The leader's own checks: each backend's target keys, and a target's health. */
  readonly ownTargets: () => Iterable<readonly [backendKey: string, targets: ReadonlySet<string>]>;
  readonly ownHealth: (targetKey: string) => AddressHealth | undefined;
  /** Partitions are recomputed at most this often (they need every address's ballots). */
  readonly partitionEveryMs?: number;
  /**
   * How long a prober's view must stay implausible before it is left out, and plausible again
   * before it counts again: a prober that notices a real death a check earlier than the others
   * is alone for a moment, and is not a partition.
   */
  readonly partitionHoldMs?: number;
}

/** The default hold: longer than one check of the usual intervals, plus a report's batch. */
export const defaultPartitionHoldMs = 5000;

/** What the controller needs for one address: its decided health and how the probers voted. */
export interface Decided {
  readonly health: AddressHealth;
  readonly verdict: Verdict;
}

export class QuorumView {
  private readonly o: QuorumViewOptions;
  private partitions: { at: number; set: ReadonlySet<string>; dissent: Map<string, Dissent> } = {
    at: Number.NEGATIVE_INFINITY,
    set: new Set(),
    dissent: new Map(),
  };
  /** Since when each prober's view has disagreed with its standing (partitioned or not). */
  private readonly turning = new Map<string, number>();
  /** Each address's decided state and since when ("<backend>/<ip>"); pruned with the targets. */
  private readonly flips = new Map<string, { unhealthy: boolean; since: number }>();

  constructor(o: QuorumViewOptions) {
    this.o = o;
  }

  /** The standbys' reports that still count (renewed within their lease). */
  fresh(): CachedProberReport[] {
    const now = this.o.now();
    return this.o.reports
      .list()
      .filter(
        (r) =>
          r.metadata?.name !== this.o.self && r.report !== undefined && r.report.expiresAt > now,
      );
  }

  /**
   * The fresh reports of the standbys assigned to a backend (as they assign themselves): a report
   * that covers a backend it was not given counts for nothing, so a compromised standby votes on
   * its own backends only, and not at all on a backend that asked for the leader alone.
   */
  private assigned(
    fresh: readonly CachedProberReport[],
    backendKey: string,
    maxProbers: number | undefined,
  ): CachedProberReport[] {
    const count = Math.min(this.o.probersPerAddress, maxProbers ?? this.o.probersPerAddress) - 1;
    const names = new Set(
      assignProbers(
        backendKey,
        fresh.map((r) => r.metadata?.name ?? ''),
        count,
      ),
    );
    return fresh.filter((r) => names.has(r.metadata?.name ?? ''));
  }

  private ballots(
    fresh: readonly CachedProberReport[],
    backendKey: string,
    ip: string,
    own: AddressHealth | undefined,
    maxProbers?: number,
  ): Ballot[] {
    const out: Ballot[] = [
      { prober: this.o.self, unhealthy: own?.state === 'Unhealthy', zone: this.o.zone() },
    ];
    for (const r of this.assigned(fresh, backendKey, maxProbers)) {
      const failing = r.report?.backends.get(backendKey);
      if (failing === undefined) continue;
      out.push({
        prober: r.metadata?.name ?? '',
        unhealthy: failing.has(ip),
        zone: r.report?.zone,
      });
    }
    return out;
  }

  /** The probers left out as partitioned, with every prober's dissent (recomputed when due). */
  partitioned(): { set: ReadonlySet<string>; dissent: ReadonlyMap<string, Dissent> } {
    const now = this.o.now();
    if (now - this.partitions.at < (this.o.partitionEveryMs ?? 1000)) return this.partitions;
    const fresh = this.fresh();
    const all: Ballot[][] = [];
    const present = new Set<string>();
    for (const [backendKey, targets] of this.o.ownTargets())
      for (const t of targets) {
        present.add(t);
        all.push(this.ballots(fresh, backendKey, ipOfTarget(t), this.o.ownHealth(t)));
      }
    // A flip's key is its target's ("<namespace>/<name>/<ip>"): gone with the target.
    for (const k of this.flips.keys()) if (!present.has(k)) this.flips.delete(k);
    const d = dissent(all);
    const hold = this.o.partitionHoldMs ?? defaultPartitionHoldMs;
    const set = new Set<string>();
    for (const p of new Set([...d.keys(), ...this.partitions.set])) {
      const was = this.partitions.set.has(p);
      const x = d.get(p);
      const implausible = x !== undefined && isPartitioned(x);
      if (implausible === was) {
        this.turning.delete(p);
        if (was) set.add(p);
        continue;
      }
      const since = this.turning.get(p) ?? now;
      this.turning.set(p, since);
      // The change stands once it has held for the hold; until then the standing stays.
      if (now - since >= hold ? implausible : was) set.add(p);
      if (now - since >= hold) this.turning.delete(p);
    }
    this.partitions = { at: now, set, dissent: d };
    return this.partitions;
  }

  /**
   * The decided health of one address of a backend, or undefined while no standby reports on the
   * backend (the leader's own view decides, as with one replica).
   */
  decide(
    backendKey: string,
    ip: string,
    own: AddressHealth | undefined,
    now: number,
    maxProbers?: number,
  ): Decided | undefined {
    const fresh = this.fresh();
    const ballots = this.ballots(fresh, backendKey, ip, own, maxProbers);
    if (ballots.length < 2) return undefined;
    const verdict = decide(ballots, this.partitioned().set);
    // When the decided state last changed: the `since` of a state the leader's own checks do not
    // share (the backup hand-back counts from it, status shows it).
    const flipKey = `${backendKey}/${ip}`;
    const flip = this.flips.get(flipKey);
    if (flip?.unhealthy !== verdict.unhealthy)
      this.flips.set(flipKey, { unhealthy: verdict.unhealthy, since: now });
    const decidedSince = this.flips.get(flipKey)?.since ?? now;
    const base = own ?? {
      state: 'Unknown' as const,
      successes: 0,
      failures: 0,
      since: now,
      message: '',
    };
    if (verdict.unhealthy === (base.state === 'Unhealthy')) return { health: base, verdict };
    const total = verdict.healthy + verdict.against;
    return {
      verdict,
      health: verdict.unhealthy
        ? {
            ...base,
            since: decidedSince,
            state: 'Unhealthy',
            message: `${String(verdict.against)} of ${String(total)} probers see it fail${base.message ? ` (${base.message})` : ''}`,
          }
        : {
            ...base,
            since: base.state === 'Unhealthy' ? decidedSince : base.since,
            state: base.state === 'Unhealthy' ? 'Healthy' : base.state,
            message: `${String(verdict.healthy)} of ${String(total)} probers reach it${base.message ? `; this one fails: ${base.message}` : ''}`,
          },
    };
  }
}

/** "<namespace>/<name>/<ip>" → the IP (an IPv6 address has no slash). */
function ipOfTarget(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}
