import { describe, expect, it } from '@jest/globals';
import { clusterRanges } from '../policy/clusterranges.ts';
import type { CachedNode, CachedServiceCIDR, CachedSliceAddresses } from '../runtime/transforms.ts';
import ipaddr from 'ipaddr.js';
import { CidrIndex } from './cidrindex.ts';
import { DenyList, builtinDeniedRanges, fallbackDeniedCidrs } from './denylist.ts';

const builtinOnly = new DenyList(builtinDeniedRanges);

describe('DenyList: built-in ranges, no configuration', () => {
  it.each([
    ['127.0.0.1', '127.0.0.0/8'],
    ['127.9.9.9', '127.0.0.0/8'],
    ['::1', '::1/128'],
    ['0.0.0.0', '0.0.0.0/8'],
    ['::', '::/128'],
    ['169.254.169.254', '169.254.0.0/16'],
    ['fe80::1', 'fe80::/10'],
    ['239.255.255.250', '224.0.0.0/4'],
    ['ff02::1', 'ff00::/8'],
    ['255.255.255.255', '240.0.0.0/4'],
    ['240.0.0.1', '240.0.0.0/4'],
    // Cloud metadata and platform services outside the link-local ranges.
    ['fd00:ec2::254', 'fd00:ec2::/32 (cloud metadata (AWS))'],
    ['fd00:ec2::23', 'fd00:ec2::/32'],
    ['168.63.129.16', '168.63.129.16/32 (cloud platform service (Azure WireServer))'],
    ['100.100.100.200', '100.100.100.200/32 (cloud metadata (Alibaba Cloud))'],
    ['fd00:c1::a9fe:a9fe', 'fd00:c1::a9fe:a9fe/128'],
    ['fd20:ce::254', 'fd20:ce::254/128'],
    ['64:ff9b:1::a00:1', '64:ff9b:1::/48'],
  ])('denies %s (%s)', (ip, why) => {
    expect(builtinOnly.denies(ip)).toContain(why);
  });

  it.each(['192.0.2.10', '198.51.100.7', '203.0.113.5', '2001:db8::10', '10.250.0.2', '8.8.8.8'])(
    'allows %s',
    (ip) => {
      expect(builtinOnly.denies(ip)).toBeUndefined();
    },
  );

  it.each([
    'etcd.example.com',
    'localhost',
    '',
    '10.0.0.1:80',
    '1.2.3',
    'http://10.0.0.1/',
    '2001:db8::1%eth0',
    '2001:db8::1%a-b',
    '1.2.3.4%x',
  ])('denies the non-IP %j without resolving it', (text) => {
    expect(builtinOnly.denies(text)).toBe('not an IP address (names are never resolved)');
  });
});

describe('DenyList: IPv6 forms judged by the IPv4 address they carry', () => {
  const d = new DenyList([
    ...builtinDeniedRanges,
    { cidr: '10.96.0.0/16', source: 'ServiceCIDR kubernetes', kind: 'servicecidr' },
  ]);

  it.each([
    ['IPv4-mapped loopback', '::ffff:127.0.0.1', 'carries 127.0.0.1 (IPv4-mapped)'],
    [
      'IPv4-mapped ClusterIP',
      '::ffff:10.96.0.10',
      'carries 10.96.0.10 (IPv4-mapped), in 10.96.0.0/16 (ServiceCIDR kubernetes)',
    ],
    ['IPv4-translated metadata', '::ffff:0:a9fe:a9fe', 'carries 169.254.169.254 (IPv4-translated)'],
    ['IPv4-compatible ClusterIP', '::a60:a', 'carries 10.96.0.10 (IPv4-compatible)'],
    ['NAT64 metadata', '64:ff9b::a9fe:a9fe', 'carries 169.254.169.254 (NAT64)'],
    ['NAT64 ClusterIP', '64:ff9b::a60:a', 'carries 10.96.0.10 (NAT64), in 10.96.0.0/16'],
    ['NAT64 Alibaba metadata', '64:ff9b::6464:64c8', 'carries 100.100.100.200 (NAT64)'],
    ['6to4 loopback', '2002:7f00:1::1', 'carries 127.0.0.1 (6to4)'],
    ['6to4 ClusterIP', '2002:a60:a::1', 'carries 10.96.0.10 (6to4)'],
    // Teredo: the client address is stored inverted in the last 32 bits.
    [
      'Teredo client = metadata',
      '2001:0:c000:201::5601:5601',
      'carries 169.254.169.254 (Teredo client)',
    ],
    ['Teredo server = ClusterIP', '2001:0:a60:a::3f57:fefe', 'carries 10.96.0.10 (Teredo server)'],
    ['ISATAP carrying metadata', '2001:db8::5efe:a9fe:a9fe', 'carries 169.254.169.254 (ISATAP)'],
    [
      'ISATAP (global bit) carrying a ClusterIP',
      '2001:db8::200:5efe:a60:a',
      'carries 10.96.0.10 (ISATAP)',
    ],
  ])('denies %s (%s)', (_what, ip, why) => {
    expect(d.denies(ip)).toContain(why);
  });

  it.each([
    ['NAT64 of a documentation address', '64:ff9b::c000:20a'],
    ['6to4 of a documentation address', '2002:c000:20a::1'],
    ['IPv4-mapped documentation address', '::ffff:192.0.2.1'],
  ])('allows %s (%s)', (_what, ip) => {
    expect(d.denies(ip)).toBeUndefined();
  });

  it('rejects a malformed CIDR by name', () => {
    expect(() => new DenyList(['10.0.0.0/33'])).toThrow('invalid CIDR "10.0.0.0/33"');
  });

  it('answers a repeated question as it answered it first, whatever came between', () => {
    const ranges = ['10.0.0.0/8', 'fd00::/8'];
    const asked = ['10.1.2.3', '11.0.0.1', 'fd00::1', '2001:db8::1', '::ffff:10.0.0.1', 'name', ''];
    const list = new DenyList(ranges);
    const first = asked.map((ip) => list.denies(ip));
    // Enough distinct addresses in between to fill the remembered answers and clear them.
    for (let i = 0; i < 70_000; i++)
      list.denies(`11.${String(i >> 16)}.${String((i >> 8) & 255)}.${String(i & 255)}`);
    expect(asked.map((ip) => list.denies(ip))).toEqual(first);
    expect(asked.map((ip) => new DenyList(ranges).denies(ip))).toEqual(first);
    expect(first.map((why) => why !== undefined)).toEqual([
      true,
      false,
      true,
      false,
      true,
      true,
      true,
    ]);
  });

  it('names --denied-cidrs entries as such', () => {
    expect(new DenyList(['203.0.113.0/24']).denies('203.0.113.9')).toBe(
      'in 203.0.113.0/24 (--denied-cidrs)',
    );
  });
});

describe('clusterRanges: what the cluster’s objects deny', () => {
  const meta = (name: string) => ({ metadata: { name } });
  const serviceCIDRs: CachedServiceCIDR[] = [
    { ...meta('kubernetes'), cidrs: ['10.96.0.0/16', 'fd00:10:96::/112'] },
    { ...meta('extra'), cidrs: ['10.100.0.0/24'] },
  ];
  const nodes: CachedNode[] = [
    {
      ...meta('worker-1'),
      podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
      addresses: ['172.18.0.3', 'fc00:f853:ccd:e793::3', 'worker-1'],
    },
    { ...meta('worker-2'), podCIDRs: [], addresses: ['172.18.0.4'] },
  ];
  const apiServer: CachedSliceAddresses[] = [{ ...meta('kubernetes'), addresses: ['172.18.0.2'] }];

  const d = new DenyList([
    ...builtinDeniedRanges,
    ...clusterRanges({ serviceCIDRs, nodes, apiServer, unavailable: new Map() }),
  ]);

  it.each([
    ['a ClusterIP of another namespace', '10.96.45.7', 'in 10.96.0.0/16 (ServiceCIDR kubernetes)'],
    ['an IPv6 ClusterIP', 'fd00:10:96::1234', 'in fd00:10:96::/112 (ServiceCIDR kubernetes)'],
    ['an address from a second ServiceCIDR', '10.100.0.9', 'ServiceCIDR extra'],
    ['a pod IP', '10.244.1.17', 'in 10.244.1.0/24 (pod CIDR of Node worker-1)'],
    ['an IPv6 pod IP', 'fd00:10:244:1::9', 'pod CIDR of Node worker-1'],
    ['a kubelet (node InternalIP)', '172.18.0.4', 'in 172.18.0.4/32 (address of Node worker-2)'],
    ['a node IPv6 address', 'fc00:f853:ccd:e793::3', 'address of Node worker-1'],
    ['the API server', '172.18.0.2', 'the API server (kubernetes Service)'],
    ['a pod IP through NAT64', '64:ff9b::af4:111', 'carries 10.244.1.17 (NAT64)'],
  ])('denies %s (%s)', (_what, ip, why) => {
    expect(d.denies(ip)).toContain(why);
  });

  it('allows the rest of the private space when discovery works', () => {
    expect(d.denies('172.18.0.99')).toBeUndefined();
    expect(d.denies('10.250.1.10')).toBeUndefined();
  });

  it('denies every private range, saying why, when a source cannot be watched', () => {
    const ranges = clusterRanges({
      serviceCIDRs,
      nodes: [],
      apiServer,
      unavailable: new Map([['nodes', 'nodes is forbidden (403)']]),
    });
    const withFallback = new DenyList(ranges);
    for (const c of fallbackDeniedCidrs) expect(ranges.map((r) => r.cidr)).toContain(c);
    expect(withFallback.denies('10.250.1.10')).toBe(
      'in 10.0.0.0/8 (private range, denied because cluster ranges are unknown (Nodes: nodes is forbidden (403)))',
    );
    expect(withFallback.denies('fd00:250::10')).toContain('in fc00::/7');
    expect(withFallback.denies('100.64.3.3')).toContain('in 100.64.0.0/10');
    expect(withFallback.denies('192.0.2.10')).toBeUndefined();
  });

  it('ignores malformed CIDRs and names instead of throwing', () => {
    expect(
      clusterRanges({
        serviceCIDRs: [{ ...meta('bad'), cidrs: ['not-a-cidr', '10.0.0.0/99'] }],
        nodes: [{ ...meta('n'), podCIDRs: ['x'], addresses: ['n.example'] }],
        apiServer: [],
        unavailable: new Map(),
      }),
    ).toEqual([]);
  });
});

describe('a Node address grant (allowClusterAddresses: [NodeAddresses])', () => {
  const meta = (name: string) => ({ metadata: { name } });
  // kubeadm: etcd on the control-plane node, whose address is also the API server's endpoint.
  const nodes: CachedNode[] = [
    { ...meta('cp-1'), podCIDRs: ['10.244.0.0/24'], addresses: ['172.18.0.2', 'cp-1'] },
    { ...meta('worker-1'), podCIDRs: ['10.244.1.0/24'], addresses: ['172.18.0.3'] },
    // An address inside its own pod CIDR, and one inside a ServiceCIDR: both stay denied.
    { ...meta('odd'), podCIDRs: ['10.244.9.0/24'], addresses: ['10.244.9.1', '10.96.0.50'] },
  ];
  const serviceCIDRs: CachedServiceCIDR[] = [{ ...meta('kubernetes'), cidrs: ['10.96.0.0/16'] }];
  const apiServer: CachedSliceAddresses[] = [
    { ...meta('kubernetes'), addresses: ['172.18.0.2'], ports: [6443] },
  ];
  const d = new DenyList([
    ...builtinDeniedRanges,
    ...clusterRanges({ serviceCIDRs, nodes, apiServer, unavailable: new Map() }),
  ]);
  const grant = (...ports: number[]) => ({ ports });

  it('allows a Node address on the granted ports, and only with the grant', () => {
    expect(d.denies('172.18.0.3')).toBe('in 172.18.0.3/32 (address of Node worker-1)');
    expect(d.denies('172.18.0.3', grant(2379, 2380))).toBeUndefined();
    expect(d.nodeAddress('172.18.0.3')).toBe('address of Node worker-1');
    expect(d.nodeAddress('172.18.0.99')).toBeUndefined();
  });

  it("allows a control-plane node's address on other ports, never on the API server's", () => {
    expect(d.denies('172.18.0.2')).toContain('address of Node cp-1');
    expect(d.denies('172.18.0.2', grant(2379))).toBeUndefined();
    expect(d.denies('172.18.0.2', grant(2379, 6443))).toBe(
      "in 172.18.0.2/32 (the API server (kubernetes Service)) on port 6443: the API server's port is never granted",
    );
  });

  it('denies every port of an API server endpoint whose ports are not known', () => {
    const noPorts = new DenyList(
      clusterRanges({
        serviceCIDRs: [],
        nodes,
        apiServer: [{ ...meta('kubernetes'), addresses: ['172.18.0.2'] }],
        unavailable: new Map(),
      }),
    );
    expect(noPorts.denies('172.18.0.2', grant(2379))).toContain('every port is never granted');
  });

  it('never lifts anything but the Node class: pod CIDRs, Service ranges, built-ins, translations', () => {
    expect(d.denies('10.244.9.1', grant(2379))).toContain('pod CIDR of Node odd');
    expect(d.denies('10.96.0.50', grant(2379))).toContain('ServiceCIDR kubernetes');
    expect(d.denies('10.244.1.7', grant(2379))).toContain('pod CIDR of Node worker-1');
    expect(d.denies('169.254.169.254', grant(80))).toContain('link-local');
    expect(d.denies('::ffff:172.18.0.3', grant(2379))).toContain('IPv4-mapped');
    expect(d.denies('64:ff9b::ac12:3', grant(2379))).toContain('NAT64');
    const flagged = new DenyList([
      '172.18.0.0/24',
      ...clusterRanges({ serviceCIDRs: [], nodes, apiServer: [], unavailable: new Map() }),
    ]);
    expect(flagged.denies('172.18.0.3', grant(2379))).toBe('in 172.18.0.0/24 (--denied-cidrs)');
  });

  it('does not lift the fallback for ranges that cannot be discovered', () => {
    const blind = new DenyList(
      clusterRanges({
        serviceCIDRs: [],
        nodes,
        apiServer,
        unavailable: new Map([['servicecidrs', '403 Forbidden']]),
      }),
    );
    expect(blind.denies('172.18.0.3', grant(2379))).toContain('private range, denied because');
  });
});

describe('CidrIndex', () => {
  it('finds the first-added range among overlapping ones, by any prefix length', () => {
    const idx = new CidrIndex<string>();
    idx.add('10.0.0.0/8', 'wide');
    idx.add('10.96.0.0/16', 'narrow');
    idx.add('10.96.0.10/32', 'host');
    idx.add('fd00::/8', 'ula');
    idx.add('0.0.0.0/0', 'everything');
    const at = (ip: string) => idx.lookup(ipaddr.parse(ip));
    expect(at('10.96.0.10')).toBe('wide');
    expect(at('11.0.0.1')).toBe('everything');
    expect(at('fd00:10::1')).toBe('ula');
    expect(at('2001:db8::1')).toBeUndefined();
    const later = new CidrIndex<string>();
    later.add('10.96.0.10/32', 'host');
    later.add('10.0.0.0/8', 'wide');
    expect(later.lookup(ipaddr.parse('10.96.0.10'))).toBe('host');
    expect(later.lookup(ipaddr.parse('10.1.0.1'))).toBe('wide');
    expect(idx.lookupAll(ipaddr.parse('10.96.0.10'))).toEqual([
      'wide',
      'narrow',
      'host',
      'everything',
    ]);
  });

  it('looks up 1000 addresses among 12 000 ranges in milliseconds, not seconds', () => {
    const idx = new CidrIndex<number>();
    for (let i = 0; i < 3000; i++) {
      idx.add(`10.${String(64 + (i >> 8))}.${String(i & 255)}.0/24`, i);
      idx.add(`172.20.${String(i >> 8)}.${String(i & 255)}/32`, i);
      idx.add(`fd00:10:${i.toString(16)}::/64`, i);
      idx.add(`2600:1f14::${i.toString(16)}/128`, i);
    }
    expect(idx.size).toBe(12_000);
    let hits = 0;
    for (let i = 0; i < 1000; i++)
      if (idx.lookup(ipaddr.parse(`10.${String(64 + (i >> 8))}.${String(i & 255)}.7`)) === i)
        hits++;
    expect(hits).toBe(1000);
  });
});

describe('clusterRanges: the API server on every address of its Node', () => {
  const cp: CachedNode = {
    metadata: { name: 'cp-1' },
    podCIDRs: [],
    addresses: ['10.0.0.5', 'fd00:10::5', '172.31.9.5'],
  };
  const worker: CachedNode = { metadata: { name: 'w-1' }, podCIDRs: [], addresses: ['10.0.0.6'] };
  const apiServer: CachedSliceAddresses[] = [
    { metadata: { name: 'kubernetes' }, addresses: ['10.0.0.5'], ports: [6443] },
  ];
  const d = new DenyList(
    clusterRanges({ serviceCIDRs: [], nodes: [cp, worker], apiServer, unavailable: new Map() }),
  );

  it.each(['10.0.0.5', 'fd00:10::5', '172.31.9.5'])(
    'a Node grant never reaches 6443 on %s, an address of the node the API server runs on',
    (ip) => {
      expect(d.denies(ip, { ports: [6443] })).toContain("the API server's port is never granted");
      expect(d.denies(ip, { ports: [2379] })).toBeUndefined();
    },
  );

  it("leaves another node's addresses to the grant on every port", () => {
    expect(d.denies('10.0.0.6', { ports: [6443] })).toBeUndefined();
  });

  it('denies every port of such a node when a slice of the API server names none', () => {
    const portless = new DenyList(
      clusterRanges({
        serviceCIDRs: [],
        nodes: [cp],
        apiServer: [{ metadata: { name: 'kubernetes' }, addresses: ['10.0.0.5'] }],
        unavailable: new Map(),
      }),
    );
    expect(portless.denies('fd00:10::5', { ports: [2379] })).toContain('every port is');
  });
});
