// The drain annotation: an on-call engineer takes addresses out of new connections with one
// `kubectl annotate xb <name> outrigger.dev/drain=192.0.2.1,db-2.example.com`, without editing a
// spec that a GitOps tool may own. Pure parsing and matching; the planner applies the result.
import type { Candidate } from './sources/index.ts';

/** At most this many entries of the annotation are read; an annotation is user input. */
export const maxDrainEntries = 5000;

/** The entries of the annotation: IPs and DNS names, comma- or space-separated, each once. */
export function parseDrainAnnotation(value: string | undefined): ReadonlySet<string> {
  if (value === undefined) return new Set();
  return new Set(
    value
      .split(/[\s,]+/)
      .map((x) => x.trim().toLowerCase())
      .filter((x) => x !== '')
      .slice(0, maxDrainEntries),
  );
}

/**
 * The candidates with the annotation applied (an entry drains the address with that IP, or every
 * address of the DNS name), and the entries that matched nothing, for status.
 */
export function applyDrain(
  candidates: readonly Candidate[],
  entries: ReadonlySet<string>,
  dnsNames: readonly string[],
): { candidates: Candidate[]; unmatched: string[] } {
  if (entries.size === 0) return { candidates: [...candidates], unmatched: [] };
  const out = candidates.map((c) =>
    c.drain !== true && (entries.has(c.ip) || (c.dnsName !== undefined && entries.has(c.dnsName)))
      ? { ...c, drain: true }
      : c,
  );
  const known = new Set([...candidates.map((c) => c.ip), ...dnsNames]);
  return { candidates: out, unmatched: [...entries].filter((e) => !known.has(e)).sort() };
}
