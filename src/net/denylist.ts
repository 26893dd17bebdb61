import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { CidrIndex, type Addr } from './cidrindex.ts';

/**
 * Addresses a namespace user must not be able to publish or make outrigger probe: Endpoints can
 * steer traffic (CVE-2021-25740), and the health checker is a network client users aim. This is
 * the part that needs no configuration; the cluster's own ranges are discovered by watching (see
 * policy/clusterranges.ts) and administrators add more with --denied-cidrs.
 */

/** A denied range and why, in words for status messages ("ServiceCIDR kubernetes"). */
export interface DeniedRange {
  readonly cidr: string;
  readonly source: string;
  /** A bounded name of the kind of source, for metrics. */
  readonly kind: RangeKind;
  /**
   * The ports the range serves on, for the API server's endpoints: where a Node address grant
   * applies to the same address, these ports stay denied. Absent: every port.
   */
  readonly ports?: readonly number[];
}

/**
 * An ExternalBackendPolicy rule's grant of the Node-address class (allowClusterAddresses:
 * [NodeAddresses]) for the given ports. It lifts exactly one kind of denial: an address that is a
 * Node's. Everything else that also covers the address stays denied: pod CIDRs, ServiceCIDRs,
 * the built-in list (loopback, link-local, metadata), --denied-cidrs, the fallback for ranges that
 * cannot be discovered, an IPv4 address reached through an IPv6 translation form, and the API
 * server's endpoints on the API server's ports.
 */
export interface NodeGrant {
  readonly ports: readonly number[];
}

interface Hit {
  readonly text: string;
  readonly source: string;
  readonly kind: RangeKind;
  readonly ports: readonly number[] | undefined;
}

/** "10.0.0.0/8" for "10.1.2.3/8": ranges that are the same network share one index entry. */
function networkKey(cidr: string): string {
  const [addr, len] = ipaddr.parseCIDR(cidr);
  const net =
    addr.kind() === 'ipv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(cidr)
      : ipaddr.IPv6.networkAddressFromCIDR(cidr);
  return `${net.toString()}/${String(len)}`;
}

export type RangeKind =
  'builtin' | 'flag' | 'servicecidr' | 'pod-cidr' | 'node-address' | 'apiserver' | 'fallback';

const builtin = (source: string, ...cidrs: string[]): DeniedRange[] =>
  cidrs.map((cidr) => ({ cidr, source, kind: 'builtin' }));

export const builtinDeniedRanges: readonly DeniedRange[] = [
  ...builtin('"this network" and unspecified', '0.0.0.0/8', '::/128'),
  ...builtin('loopback', '127.0.0.0/8', '::1/128'),
  ...builtin(
    'link-local, incl. the 169.254.169.254 metadata service',
    '169.254.0.0/16',
    'fe80::/10',
  ),
  ...builtin('multicast', '224.0.0.0/4', 'ff00::/8'),
  ...builtin('reserved and broadcast', '240.0.0.0/4'),
  // Instance-metadata and platform services outside the link-local ranges, as the clouds document
  // them: AWS's IPv6 metadata, DNS, NTP and pod-identity endpoints (fd00:ec2::254, ::253, ::123,
  // ::23), Azure's WireServer, Alibaba Cloud's metadata service, Oracle Cloud's IPv6 metadata
  // service and its Classic metadata address, and the IPv6 metadata addresses reported for Google
  // Cloud, Scaleway, Akamai and Alibaba Cloud.
  ...builtin('cloud metadata (AWS)', 'fd00:ec2::/32'),
  ...builtin('cloud platform service (Azure WireServer)', '168.63.129.16/32'),
  ...builtin('cloud metadata (Alibaba Cloud)', '100.100.100.200/32', 'fd00:100::100:200/128'),
  ...builtin('cloud metadata (Oracle Cloud)', 'fd00:c1::a9fe:a9fe/128', '192.0.0.192/32'),
  ...builtin('cloud metadata (Google Cloud)', 'fd20:ce::254/128'),
  ...builtin('cloud metadata (Scaleway)', 'fd00:42::42/128'),
  ...builtin('cloud metadata (Akamai)', 'fd00:a9fe:a9fe::1/128'),
  // NAT64 with an operator-chosen prefix length: where the IPv4 address sits cannot be known.
  ...builtin('local-use NAT64 (RFC 8215)', '64:ff9b:1::/48'),
];

/** The CIDRs of the built-in list, for --help and the docs (docs/guide/policy.md). */
export const defaultDeniedCidrs: readonly string[] = builtinDeniedRanges.map((r) => r.cidr);

/**
 * Denied when cluster ranges cannot be discovered (no RBAC to list Nodes or ServiceCIDRs, or an API
 * server without them): every private range, so that the unknown pod, service and node addresses
 * are covered, at the cost of refusing private external backends until discovery works.
 */
export const fallbackDeniedCidrs: readonly string[] = [
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  'fc00::/7',
];

export function isValidCIDR(text: string): boolean {
  try {
    ipaddr.parseCIDR(text);
    return true;
  } catch {
    return false;
  }
}

const v4 = (bytes: readonly number[]): ipaddr.IPv4 =>
  new ipaddr.IPv4([bytes[0] ?? 0, bytes[1] ?? 0, bytes[2] ?? 0, bytes[3] ?? 0]);

/** Parsed once: every probe of an IPv6 address asks embeddedIPv4. */
const range = (cidr: string): [ipaddr.IPv6, number] => ipaddr.IPv6.parseCIDR(cidr);
const translated = range('::ffff:0:0:0/96');
const nat64 = range('64:ff9b::/96');
const sixToFour = range('2002::/16');
const teredo = range('2001::/32');
const compatible = range('::/96');
const loopbackOrUnspecified = range('::/127');

function inRange(addr: ipaddr.IPv6, r: [ipaddr.IPv6, number]): boolean {
  return addr.match(r);
}

/**
 * IPv4 addresses an IPv6 address carries, which a translator or tunnel may deliver traffic to:
 * IPv4-mapped (::ffff:a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), IPv4-compatible (::a.b.c.d),
 * NAT64 well-known prefix (64:ff9b::/96, RFC 6052), 6to4 (2002:AABB:CCDD::/48, RFC 3056),
 * Teredo (2001::/32: the server in bits 32–63, the client XOR-ed in the last 32 bits, RFC 4380),
 * and ISATAP interface identifiers (::0:5efe:a.b.c.d, ::200:5efe:a.b.c.d, RFC 5214).
 */
export function embeddedIPv4(addr: ipaddr.IPv6): { ip: ipaddr.IPv4; via: string }[] {
  const b = addr.toByteArray();
  const last = v4(b.slice(12, 16));
  if (addr.isIPv4MappedAddress()) return [{ ip: last, via: 'IPv4-mapped' }];
  if (inRange(addr, translated)) return [{ ip: last, via: 'IPv4-translated' }];
  if (inRange(addr, nat64)) return [{ ip: last, via: 'NAT64' }];
  if (inRange(addr, sixToFour)) return [{ ip: v4(b.slice(2, 6)), via: '6to4' }];
  if (inRange(addr, teredo)) {
    const client = v4(b.slice(12, 16).map((x) => x ^ 0xff));
    return [
      { ip: client, via: 'Teredo client' },
      { ip: v4(b.slice(4, 8)), via: 'Teredo server' },
    ];
  }
  // ::a.b.c.d, but not :: or ::1, which are denied as themselves.
  if (inRange(addr, compatible) && !inRange(addr, loopbackOrUnspecified))
    return [{ ip: last, via: 'IPv4-compatible' }];
  // ISATAP (RFC 5214): an interface identifier 0000:5efe or 0200:5efe, then the IPv4 address.
  if (b[8] !== undefined && (b[8] & 0xfd) === 0 && b[9] === 0 && b[10] === 0x5e && b[11] === 0xfe)
    return [{ ip: last, via: 'ISATAP' }];
  return [];
}

/** Remembered answers of one list at most: several times the addresses one replica may check. */
const maxAnswers = 65_536;

export class DenyList {
  // Every range of the same network is kept (a Node's address is often also the API server's):
  // a Node address grant must see all of them, not just the first.
  private readonly index = new CidrIndex<Hit[]>();
  /**
   * Answers already given without a Node grant, by address ('' for allowed): the prober asks
   * about every address at every probe (1000 times a second at 10 000 addresses), and parsing it
   * and looking it up in BigInt arithmetic was a fifth of what a probe allocated. A list never
   * changes (a new range builds a new list), so nothing here goes stale; it is cleared when full
   * so that a stream of distinct addresses cannot grow it without bound.
   */
  private readonly answers = new Map<string, string>();

  /** Throws with the offending entry when a CIDR is malformed. Plain strings are "--denied-cidrs". */
  constructor(entries: readonly (string | DeniedRange)[]) {
    const groups = new Map<string, Hit[]>();
    for (const e of entries) {
      const r: DeniedRange =
        typeof e === 'string' ? { cidr: e, source: '--denied-cidrs', kind: 'flag' } : e;
      let key: string;
      try {
        key = networkKey(r.cidr);
      } catch {
        throw new Error(`invalid CIDR "${r.cidr}"`);
      }
      const hit = { text: r.cidr, source: r.source, kind: r.kind, ports: r.ports };
      const group = groups.get(key);
      if (group !== undefined) group.push(hit);
      else {
        const fresh = [hit];
        groups.set(key, fresh);
        this.index.add(r.cidr, fresh);
      }
    }
  }

  /**
   * Why `ip` is denied ("in 10.96.0.0/16 (ServiceCIDR kubernetes)"), or undefined when it is
   * allowed. Anything that is not a literal IP address is denied (outrigger never resolves names),
   * and so is an IPv6 address with a zone ("fe80::1%eth0"): a zone names an interface of this
   * host. With `nodeGrant`, a Node's address is allowed on the grant's ports unless something
   * else denies it too (see NodeGrant). Never throws.
   */
  denies(ip: string, nodeGrant?: NodeGrant): string | undefined {
    if (nodeGrant !== undefined) return this.decide(ip, nodeGrant);
    let answer = this.answers.get(ip);
    if (answer === undefined) {
      if (this.answers.size >= maxAnswers) this.answers.clear();
      answer = this.decide(ip) ?? '';
      this.answers.set(ip, answer);
    }
    return answer === '' ? undefined : answer;
  }

  private decide(ip: string, nodeGrant?: NodeGrant): string | undefined {
    const addr = parseIP(ip);
    if (addr === undefined) return 'not an IP address (names are never resolved)';
    const hits = this.index.lookupAll(addr).flat();
    const first = hits[0];
    if (first !== undefined) {
      if (nodeGrant === undefined || !hits.some((h) => h.kind === 'node-address'))
        return `in ${first.text} (${first.source})`;
      for (const h of hits) {
        if (h.kind === 'node-address') continue;
        if (h.kind === 'apiserver') {
          const onPorts =
            h.ports === undefined || h.ports.length === 0
              ? nodeGrant.ports
              : nodeGrant.ports.filter((p) => h.ports?.includes(p) === true);
          if (onPorts.length > 0)
            return `in ${h.text} (${h.source}) on port ${onPorts.join(', ')}: the API server's ${h.ports === undefined || h.ports.length === 0 ? 'ports are not known, so every port is' : 'port is'} never granted`;
          continue;
        }
        return `in ${h.text} (${h.source})`;
      }
    }
    if (addr.kind() === 'ipv6') {
      // Never granted through a translation form: a grant names the Node's own address.
      for (const { ip: inner, via } of embeddedIPv4(addr as ipaddr.IPv6)) {
        const hit = this.index.lookup(inner)?.[0];
        if (hit !== undefined)
          return `carries ${inner.toString()} (${via}), in ${hit.text} (${hit.source})`;
      }
    }
    return undefined;
  }

  /** Which Node `ip` is an address of ("address of Node n1"), or undefined. */
  nodeAddress(ip: string): string | undefined {
    const addr = parseIP(ip);
    if (addr === undefined) return undefined;
    return this.index
      .lookupAll(addr)
      .flat()
      .find((h) => h.kind === 'node-address')?.source;
  }
}

/**
 * A literal IPv4 or IPv6 address without a zone, or undefined. Node's check is strict (ipaddr.js
 * alone accepts legacy forms such as "2130706433" for 127.0.0.1) but allows zones, refused here.
 */
export function parseIP(ip: string): Addr | undefined {
  if (isIP(ip) === 0 || ip.includes('%')) return undefined;
  try {
    return ipaddr.parse(ip);
  } catch {
    return undefined;
  }
}
