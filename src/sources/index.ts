// The address sources outrigger knows. To add one: write a module like static.ts or dns.ts, add its
// spec field to the schema, list it in `addressSources`, and extend SourceInput with what it needs
// to read (dns.ts reads the resolver's answers); judging, probing and publishing follow.
import type { Resolution } from '../dns/resolution.ts';
import type { Candidate, SourceInput } from './source.ts';
import { backupDnsAddresses, dnsAddresses } from './dns.ts';
import { backupStaticAddresses, staticAddresses } from './static.ts';

export type { Candidate, SourceInput } from './source.ts';

// Primaries first: an IP that is both a primary and a backup is a primary (the first source wins).
export const addressSources = [
  staticAddresses,
  dnsAddresses,
  backupStaticAddresses,
  backupDnsAddresses,
] as const;

/** For callers with no DNS answers (tests, a backend without names). */
export const noResolutions: ReadonlyMap<string, Resolution> = new Map<string, Resolution>();

/**
 * Every source's candidates, in source order, each IP once: an IP that two sources name is
 * published once, with the first source's details (and drained if either drains it).
 */
export function candidateAddresses(input: SourceInput): Candidate[] {
  const seen = new Map<string, number>();
  const out: Candidate[] = [];
  for (const source of addressSources)
    for (const c of source.addresses(input)) {
      const at = seen.get(c.ip);
      if (at === undefined) {
        seen.set(c.ip, out.length);
        out.push(c);
      } else if (c.drain === true && out[at]?.drain !== true) {
        // Drained by any source that names it: maintenance must not depend on which came first.
        out[at] = { ...(out[at] ?? c), drain: true };
      }
    }
  return out;
}
