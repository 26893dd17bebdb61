// The address sources outrigger knows. To add one (a DNS name resolved to its IPs, say): write a
// module like static.ts, add its spec field to the schema, list it in `addressSources`, and extend
// SourceInput with what it needs to read; judging, probing and publishing follow.
import type { Candidate, SourceInput } from './source.ts';
import { staticAddresses } from './static.ts';

export type { Candidate, SourceInput } from './source.ts';

export const addressSources = [staticAddresses] as const;

/**
 * Every source's candidates, in source order, each IP once: an IP that two sources name is
 * published once, with the first source's details.
 */
export function candidateAddresses(input: SourceInput): Candidate[] {
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (const source of addressSources)
    for (const c of source.addresses(input)) {
      if (seen.has(c.ip)) continue;
      seen.add(c.ip);
      out.push(c);
    }
  return out;
}
