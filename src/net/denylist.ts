import ipaddr from 'ipaddr.js';

/**
 * Addresses a namespace user must not be able to publish or make outrigger probe: Endpoints can
 * steer traffic (CVE-2021-25740), and the health checker is a network client users aim. The chart
 * adds the cluster's pod and service CIDRs.
 */
export const defaultDeniedCidrs: readonly string[] = [
  '0.0.0.0/8', // "this network", incl. the unspecified address
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local, incl. the cloud metadata service 169.254.169.254
  '224.0.0.0/4', // multicast
  '255.255.255.255/32', // broadcast
  '::/128', // unspecified
  '::1/128', // loopback
  'fe80::/10', // link-local
  'ff00::/8', // multicast
];

export function isValidCIDR(text: string): boolean {
  try {
    ipaddr.parseCIDR(text);
    return true;
  } catch {
    return false;
  }
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

export class DenyList {
  private readonly ranges: readonly { text: string; range: Range }[];

  /** Throws with the offending entry when a CIDR is malformed. */
  constructor(cidrs: readonly string[]) {
    this.ranges = cidrs.map((text) => {
      try {
        return { text, range: ipaddr.parseCIDR(text) };
      } catch {
        throw new Error(`invalid CIDR "${text}"`);
      }
    });
  }

  /** The deny-list entry that covers `ip`, or undefined when it is allowed (or not an IP). */
  denies(ip: string): string | undefined {
    if (!ipaddr.isValid(ip)) return undefined;
    // IPv4-mapped IPv6 (::ffff:127.0.0.1) is matched as the IPv4 address it is.
    const addr = ipaddr.process(ip);
    for (const { text, range } of this.ranges) {
      if (addr.kind() === range[0].kind() && addr.match(range)) return text;
    }
    return undefined;
  }
}
