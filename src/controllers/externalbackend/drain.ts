// The drain annotation: an on-call engineer takes addresses out of new connections with one
// `kubectl annotate xb <name> outrigger.dev/drain=192.0.2.1,db-2.example.com`, without editing a
// spec that a GitOps tool may own. Pure parsing and matching; the planner applies the result.
import type { IPv6 } from 'ipaddr.js';
import { parseIP } from '../../net/denylist.ts';
import type { Candidate } from '../../sources/index.ts';

/** At most this many entries of the annotation are read; an annotation is user input. */
export const maxDrainEntries = 5000;

/** Longer entries are neither an IP nor a DNS name, and are ignored. */
const maxEntryLength = 253;

/**
 * The entries of the annotation: IPs (in canonical form, so that "2001:db8:0::1" drains
 * 2001:db8::1) and DNS names, comma- or space-separated, each once.
 */
export function parseDrainAnnotation(value: string | undefined): ReadonlySet<string> {
  if (value === undefined) return new Set();
  return new Set(
    value
      .split(/[\s,]+/)
      .map((x) => x.trim().toLowerCase())
      .filter((x) => x !== '' && x.length <= maxEntryLength)
      .slice(0, maxDrainEntries)
      .map((x) => {
        const ip = parseIP(x);
        return ip === undefined
          ? x
          : ip.kind() === 'ipv6'
            ? (ip as IPv6).toRFC5952String()
            : ip.toString();
      }),
  );
}

/**
 * The candidates with the annotation applied (an entry drains the address with that IP, or every
 * address the DNS name resolves to, even one another source lists too), and the entries that
 * matched nothing, for status. `names` maps each of the backend's DNS names to its addresses.
 */
export function applyDrain(
  candidates: readonly Candidate[],
  entries: ReadonlySet<string>,
  names: ReadonlyMap<string, readonly string[]>,
): { candidates: Candidate[]; unmatched: string[] } {
  if (entries.size === 0) return { candidates: [...candidates], unmatched: [] };
  const drained = new Set(entries);
  for (const [name, ips] of names) if (entries.has(name)) for (const ip of ips) drained.add(ip);
  const out = candidates.map((c) =>
    c.drain !== true && drained.has(c.ip) ? { ...c, drain: true } : c,
  );
  const known = new Set([...candidates.map((c) => c.ip), ...names.keys()]);
  return { candidates: out, unmatched: [...entries].filter((e) => !known.has(e)).sort() };
}
