// The one place that sends DNS queries: A and AAAA for a name through Node's resolver (c-ares),
// which asks the configured servers directly. It never reads /etc/hosts or applies resolv.conf's
// search list, so a name means to outrigger what DNS says it means; whatever the answer holds is
// judged (deny list, address policy) like an address written in the spec.
import { Resolver } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import type { Family, LookupOutcome } from './resolution.ts';

export interface LookupOptions {
  /** "host" or "host:port" of the DNS servers; empty: the system's (resolv.conf). */
  readonly servers: readonly string[];
  /** Per query attempt (c-ares retries once more). */
  readonly timeoutMs: number;
}

/** c-ares' codes for "the name has no such record", an answer rather than a failure. */
const noRecords = new Set(['ENODATA', 'ENOTFOUND']);

export interface Lookup {
  (name: string): Promise<LookupOutcome>;
  /** Cancels the queries in flight (they resolve as failures). */
  cancel(): void;
}

/**
 * An answer's address in the one form Endpoints and slices accept, or undefined for an AAAA record
 * that carries an IPv4 address (::ffff:a.b.c.d, ::a.b.c.d): it would land in the IPv4 slice as a
 * string no consumer reads as IPv4, and the same server can be named by an A record instead.
 */
export function canonical(address: string, family: Family): string | undefined {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address);
  } catch {
    return undefined;
  }
  if (family === 'IPv4') return parsed.kind() === 'ipv4' ? parsed.toString() : undefined;
  if (parsed.kind() !== 'ipv6') return undefined;
  const v6 = parsed as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress() || v6.match(ipaddr.IPv6.parse('::'), 96)) return undefined;
  return v6.toRFC5952String();
}

export function dnsLookup(o: LookupOptions): Lookup {
  const resolver = new Resolver({ timeout: o.timeoutMs, tries: 2 });
  if (o.servers.length > 0) resolver.setServers([...o.servers]);
  const family = async (
    name: string,
    f: Family,
  ): Promise<{ ips: string[]; ttl: number | undefined; error?: string }> => {
    try {
      const records =
        f === 'IPv4'
          ? await resolver.resolve4(name, { ttl: true })
          : await resolver.resolve6(name, { ttl: true });
      const ips = records.map((r) => canonical(r.address, f)).filter((x) => x !== undefined);
      return {
        ips,
        ttl: records.length === 0 ? undefined : Math.min(...records.map((r) => r.ttl)),
      };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      if (code !== undefined && noRecords.has(code)) return { ips: [], ttl: undefined };
      return { ips: [], ttl: undefined, error: code ?? String(err) };
    }
  };
  const lookup = async (name: string): Promise<LookupOutcome> => {
    const [v4, v6] = await Promise.all([family(name, 'IPv4'), family(name, 'IPv6')]);
    const ttls = [v4.ttl, v6.ttl].filter((t): t is number => t !== undefined);
    return {
      ips: [...v4.ips, ...v6.ips],
      ttlSeconds: ttls.length === 0 ? 0 : Math.min(...ttls),
      errors: [
        ...(v4.error !== undefined ? [{ family: 'IPv4' as const, error: v4.error }] : []),
        ...(v6.error !== undefined ? [{ family: 'IPv6' as const, error: v6.error }] : []),
      ],
    };
  };
  return Object.assign(lookup, {
    cancel: () => {
      resolver.cancel();
    },
  });
}
