// Health decided by a quorum of probers: pure functions from what each prober reports to the
// verdict the leader publishes, and to which probers are left out as partitioned. The leader is
// one prober among the others; its own view carries no more weight than a standby's, because the
// view that is wrong may be its own (its node's NIC, its zone's uplink).

/** One prober's view of one address. Unknown (not checked yet) counts as healthy, see below. */
export interface Ballot {
  readonly prober: string;
  readonly unhealthy: boolean;
  readonly zone?: string | undefined;
}

export interface Verdict {
  /** A majority of the counted probers sees it unhealthy. */
  readonly unhealthy: boolean;
  /** Counted ballots each way (partitioned probers left out). */
  readonly healthy: number;
  readonly against: number;
  /** Ballots of partitioned probers, shown but not counted. */
  readonly ignored: number;
  /** The zones of the probers that see it unhealthy, and of those that see it healthy (counted). */
  readonly zonesUnhealthy: readonly string[];
  readonly zonesHealthy: readonly string[];
}

/**
 * The verdict on one address from the ballots of the probers that report on it now.
 *
 * - Unhealthy only when strictly more counted probers see it unhealthy than healthy. A tie (two
 *   probers, one each way) keeps it healthy: all a 1–1 split says is that one vantage point cannot
 *   reach it, and withdrawing it would let any one bad view empty the Service.
 * - A prober that has not checked the address yet votes healthy, as an unchecked address is
 *   published ready by a single prober today: a new prober never tips an address either way.
 * - Ballots of partitioned probers are not counted. When every ballot is a partitioned prober's,
 *   they are counted after all: with no other view left, the decision is today's single-prober one.
 */
export function decide(ballots: readonly Ballot[], partitioned: ReadonlySet<string>): Verdict {
  const fair = ballots.filter((b) => !partitioned.has(b.prober));
  const counted = fair.length > 0 ? fair : ballots;
  const zones = (unhealthy: boolean): string[] =>
    [
      ...new Set(
        counted.filter((b) => b.unhealthy === unhealthy && b.zone !== undefined).map((b) => b.zone),
      ),
    ]
      .filter((z): z is string => z !== undefined)
      .sort();
  const against = counted.filter((b) => b.unhealthy).length;
  const healthy = counted.length - against;
  return {
    unhealthy: against > healthy,
    healthy,
    against,
    ignored: ballots.length - counted.length,
    zonesUnhealthy: zones(true),
    zonesHealthy: zones(false),
  };
}

/** How one prober's view compares with the others', over every address it shares with them. */
export interface Dissent {
  readonly prober: string;
  /** Addresses it votes on together with at least one other prober. */
  readonly shared: number;
  /** Of those, the addresses it alone sees unhealthy while every other prober sees them healthy. */
  readonly alone: number;
}

/** At least this many lone failures, and at least half of what it shares, make a prober partitioned. */
export const partitionMinAlone = 2;

/**
 * The dissent of every prober, from the ballots of every address (one list per address). A prober
 * that sees failures the others do not, on at least `partitionMinAlone` addresses and on at least
 * half of the addresses it shares with them, has an implausible view: its own path is what fails
 * (it cannot reach anything, or a large part of what everyone else reaches).
 */
export function dissent(addresses: Iterable<readonly Ballot[]>): Map<string, Dissent> {
  const out = new Map<string, { shared: number; alone: number }>();
  for (const ballots of addresses) {
    if (ballots.length < 2) continue;
    const against = ballots.filter((b) => b.unhealthy).length;
    for (const b of ballots) {
      const d = out.get(b.prober) ?? { shared: 0, alone: 0 };
      d.shared++;
      if (b.unhealthy && against === 1) d.alone++;
      out.set(b.prober, d);
    }
  }
  return new Map([...out].map(([prober, d]) => [prober, { prober, ...d }]));
}

export function isPartitioned(d: Dissent): boolean {
  return d.alone >= partitionMinAlone && 2 * d.alone >= d.shared;
}

/** The probers whose views are left out of every decision (see dissent). */
export function partitionedProbers(addresses: Iterable<readonly Ballot[]>): Set<string> {
  return new Set([...dissent(addresses).values()].filter(isPartitioned).map((d) => d.prober));
}

/**
 * The standbys that probe a backend besides the leader: the `count` with the highest rendezvous
 * score for its key (highest random weight hashing), so that each backend's probers stay where
 * they are when a replica comes or goes, except for the backends that replica probed.
 */
export function assignProbers(key: string, standbys: readonly string[], count: number): string[] {
  if (count <= 0) return [];
  return standbys
    .map((s) => ({ s, score: score(`${s}\u0000${key}`) }))
    .sort((a, b) => b.score - a.score || (a.s < b.s ? -1 : 1))
    .slice(0, count)
    .map((x) => x.s);
}

/** FNV-1a, 32 bits: stable across processes and versions, which is all the assignment needs. */
function score(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
