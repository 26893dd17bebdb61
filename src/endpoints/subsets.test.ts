import { describe, expect, it } from '@jest/globals';
import type { V1EndpointAddress, V1EndpointSubset } from '@kubernetes/client-node';
import { repackSubsets, subsetsEqual, truncateSubsets } from './subsets.ts';

const addr = (
  ip: string,
  uid?: string,
  extra: Partial<V1EndpointAddress> = {},
): V1EndpointAddress => ({
  ip,
  ...(uid !== undefined ? { targetRef: { kind: 'Pod', name: uid, namespace: 'ns', uid } } : {}),
  ...extra,
});
const port = (name: string, p: number) => ({ name, port: p, protocol: 'TCP' });

describe('repackSubsets', () => {
  it('merges addresses that share identical port sets and sorts them by IP then UID', () => {
    const out = repackSubsets([
      { addresses: [addr('10.0.0.2', 'b')], ports: [port('http', 80)] },
      { addresses: [addr('10.0.0.1', 'a')], ports: [port('http', 80)] },
      { addresses: [addr('10.0.0.1', '0')], ports: [port('http', 80)] },
    ]);
    expect(out).toEqual([
      {
        addresses: [addr('10.0.0.1', '0'), addr('10.0.0.1', 'a'), addr('10.0.0.2', 'b')],
        ports: [port('http', 80)],
      },
    ]);
  });

  it('orders IPs byte-wise, as upstream does ("10.0.0.10" before "10.0.0.9")', () => {
    const out = repackSubsets([
      { addresses: [addr('10.0.0.9', 'a'), addr('10.0.0.10', 'b')], ports: [port('p', 1)] },
    ]);
    expect(out[0]?.addresses?.map((a) => a.ip)).toEqual(['10.0.0.10', '10.0.0.9']);
  });

  it('deduplicates by IP and UID, and a not-ready entry wins over a ready one', () => {
    const out = repackSubsets([
      { addresses: [addr('10.0.0.1', 'a')], ports: [port('http', 80)] },
      { notReadyAddresses: [addr('10.0.0.1', 'a')], ports: [port('http', 80)] },
      { addresses: [addr('10.0.0.1', 'a')], ports: [port('http', 80)] },
    ]);
    expect(out).toEqual([
      { notReadyAddresses: [addr('10.0.0.1', 'a')], ports: [port('http', 80)] },
    ]);
  });

  it('keeps the same IP with different UIDs apart', () => {
    const out = repackSubsets([
      { addresses: [addr('10.0.0.1', 'a'), addr('10.0.0.1', 'b')], ports: [port('p', 1)] },
    ]);
    expect(out[0]?.addresses).toHaveLength(2);
  });

  it('groups ports that carry the same addresses into one subset', () => {
    const out = repackSubsets([
      { addresses: [addr('10.0.0.1', 'a')], ports: [port('http', 80)] },
      { addresses: [addr('10.0.0.1', 'a')], ports: [port('https', 443)] },
      { addresses: [addr('10.0.0.2', 'b')], ports: [port('http', 80)] },
    ]);
    expect(out).toHaveLength(2);
    expect(out).toContainEqual({
      addresses: [addr('10.0.0.1', 'a'), addr('10.0.0.2', 'b')],
      ports: [port('http', 80)],
    });
    expect(out).toContainEqual({ addresses: [addr('10.0.0.1', 'a')], ports: [port('https', 443)] });
  });

  it('separates ports where the same address has different readiness', () => {
    const out = repackSubsets([
      { addresses: [addr('10.0.0.1', 'a')], ports: [port('http', 80)] },
      { notReadyAddresses: [addr('10.0.0.1', 'a')], ports: [port('https', 443)] },
    ]);
    expect(out).toHaveLength(2);
  });

  it('handles subsets without ports (headless)', () => {
    const out = repackSubsets([
      { addresses: [addr('10.0.0.2', 'b')] },
      { notReadyAddresses: [addr('10.0.0.1', 'a')] },
    ]);
    expect(out).toEqual([
      { addresses: [addr('10.0.0.2', 'b')], notReadyAddresses: [addr('10.0.0.1', 'a')] },
    ]);
  });

  it('keeps the first occurrence of an address', () => {
    const out = repackSubsets([
      { addresses: [addr('10.0.0.1', 'a', { hostname: 'first' })], ports: [port('p', 1)] },
      { addresses: [addr('10.0.0.1', 'a', { hostname: 'second' })], ports: [port('p', 1)] },
    ]);
    expect(out[0]?.addresses?.[0]?.hostname).toBe('first');
  });

  it('returns nothing for nothing', () => {
    expect(repackSubsets([])).toEqual([]);
  });
});

describe('truncateSubsets', () => {
  const ips = (n: number, prefix: string): V1EndpointAddress[] =>
    Array.from({ length: n }, (_, i) =>
      addr(`${prefix}.${Math.floor(i / 250)}.${i % 250}`, `${prefix}-${i}`),
    );

  it('leaves 1000 addresses alone', () => {
    const s: V1EndpointSubset[] = [
      { addresses: ips(600, '10.1'), notReadyAddresses: ips(400, '10.2') },
    ];
    expect(truncateSubsets(s).truncated).toBe(false);
  });

  it('shares the not-ready budget between subsets in proportion, rounding up', () => {
    const s: V1EndpointSubset[] = [
      { addresses: ips(500, '10.1'), notReadyAddresses: ips(300, '10.2'), ports: [port('a', 1)] },
      { addresses: ips(300, '10.3'), notReadyAddresses: ips(101, '10.4'), ports: [port('b', 2)] },
    ];
    const { subsets, truncated } = truncateSubsets(s);
    expect(truncated).toBe(true);
    // 200 not-ready slots for 401 not-ready addresses: ceil(300/401*200)=150, then the 50 left.
    expect(subsets.map((x) => [x.addresses?.length, x.notReadyAddresses?.length])).toEqual([
      [500, 150],
      [300, 50],
    ]);
  });

  it('shares the ready budget in proportion and drops all not-ready when ready alone overflows', () => {
    const s: V1EndpointSubset[] = [
      { addresses: ips(900, '10.1'), notReadyAddresses: ips(5, '10.2'), ports: [port('a', 1)] },
      { addresses: ips(300, '10.3'), ports: [port('b', 2)] },
    ];
    const { subsets } = truncateSubsets(s);
    // ceil(900/1200*1000)=750, then 250.
    expect(subsets.map((x) => [x.addresses?.length, x.notReadyAddresses?.length])).toEqual([
      [750, undefined],
      [250, undefined],
    ]);
  });
});

describe('subsetsEqual', () => {
  const a = addr('10.0.0.1', 'a');
  const b = addr('10.0.0.2', 'b');
  it('ignores order of subsets, addresses and ports', () => {
    expect(
      subsetsEqual(
        [
          { addresses: [b, a], ports: [port('y', 2), port('x', 1)] },
          { notReadyAddresses: [a], ports: [port('z', 3)] },
        ],
        [
          { notReadyAddresses: [a], ports: [port('z', 3)] },
          { addresses: [a, b], ports: [port('x', 1), port('y', 2)] },
        ],
      ),
    ).toBe(true);
  });

  it('ignores the pod resourceVersion in targetRef', () => {
    const withRV = { ...a, targetRef: { ...a.targetRef, resourceVersion: '42' } };
    expect(subsetsEqual([{ addresses: [withRV] }], [{ addresses: [a] }])).toBe(true);
  });

  it('treats a hand-written non-canonical list as equal to its canonical form', () => {
    expect(
      subsetsEqual(
        [
          { addresses: [a], ports: [port('x', 1)] },
          { addresses: [b], ports: [port('x', 1)] },
        ],
        [{ addresses: [a, b], ports: [port('x', 1)] }],
      ),
    ).toBe(true);
  });

  it.each<[string, V1EndpointSubset[], V1EndpointSubset[]]>([
    ['readiness', [{ addresses: [a] }], [{ notReadyAddresses: [a] }]],
    [
      'nodeName',
      [{ addresses: [{ ...a, nodeName: 'n1' }] }],
      [{ addresses: [{ ...a, nodeName: 'n2' }] }],
    ],
    ['hostname', [{ addresses: [{ ...a, hostname: 'h' }] }], [{ addresses: [a] }]],
    [
      'port number',
      [{ addresses: [a], ports: [port('x', 1)] }],
      [{ addresses: [a], ports: [port('x', 2)] }],
    ],
    [
      'appProtocol',
      [{ addresses: [a], ports: [{ ...port('x', 1), appProtocol: 'h2c' }] }],
      [{ addresses: [a], ports: [port('x', 1)] }],
    ],
    ['missing address', [{ addresses: [a, b] }], [{ addresses: [a] }]],
  ])('sees a difference in %s', (_n, x, y) => {
    expect(subsetsEqual(x, y)).toBe(false);
  });
});
