// Properties of Endpoints repacking and capacity truncation, over generated subsets (fast-check):
// what the table tests show for chosen cases, these check for every shape the generator reaches.
import { describe, expect, it } from '@jest/globals';
import type { V1EndpointAddress, V1EndpointSubset } from '@kubernetes/client-node';
import fc from 'fast-check';
import { countAddresses, maxCapacity, repackSubsets, truncateSubsets } from './subsets.ts';

// Small pools, so that the same address and port come up in several subsets.
const address = fc.record(
  {
    ip: fc.integer({ min: 1, max: 12 }).map((i) => `10.0.0.${String(i)}`),
    uid: fc.constantFrom('a', 'b'),
  },
  { requiredKeys: ['ip', 'uid'] },
);
const port = fc.record({
  name: fc.constantFrom('http', 'https', 'metrics'),
  port: fc.constantFrom(80, 443, 9090),
  protocol: fc.constantFrom('TCP', 'UDP'),
});
const toAddress = (a: { ip: string; uid: string }): V1EndpointAddress => ({
  ip: a.ip,
  targetRef: { kind: 'Pod', name: `pod-${a.ip}-${a.uid}`, namespace: 'ns', uid: a.uid },
});
const subset: fc.Arbitrary<V1EndpointSubset> = fc
  .record({
    ready: fc.array(address, { maxLength: 6 }),
    notReady: fc.array(address, { maxLength: 6 }),
    ports: fc.array(port, { maxLength: 3 }),
  })
  .map(({ ready, notReady, ports }) => ({
    ...(ready.length > 0 ? { addresses: ready.map(toAddress) } : {}),
    ...(notReady.length > 0 ? { notReadyAddresses: notReady.map(toAddress) } : {}),
    ...(ports.length > 0 ? { ports } : {}),
  }));
const subsets = fc.array(subset, { maxLength: 6 });

/** (ip, uid, port) → ready?, with not-ready winning, as the input says it. */
function readiness(list: readonly V1EndpointSubset[]): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const s of list) {
    const ports = s.ports?.length
      ? s.ports.map((p) => `${p.name ?? ''}/${String(p.port)}/${p.protocol ?? ''}`)
      : ['-'];
    for (const p of ports) {
      for (const [addrs, ready] of [
        [s.addresses ?? [], true],
        [s.notReadyAddresses ?? [], false],
      ] as const) {
        for (const a of addrs) {
          const k = `${a.ip}|${a.targetRef?.uid ?? ''}|${p}`;
          if (out.get(k) !== false) out.set(k, ready);
        }
      }
    }
  }
  return out;
}

/**
 * What repacking keeps of `readiness(list)`: all of it, but for addresses listed without ports when
 * some port carries exactly the same addresses with the same readiness. Upstream's RepackSubsets
 * gives "no ports" a sentinel port that joins such a port's subset, so it leaves no trace.
 */
function repackedReadiness(list: readonly V1EndpointSubset[]): Map<string, boolean> {
  const all = readiness(list);
  const byPort = new Map<string, string[]>();
  for (const [k, ready] of all) {
    const [ip, uid, p = ''] = k.split('|');
    byPort.set(p, [...(byPort.get(p) ?? []), `${ip ?? ''}|${uid ?? ''}|${String(ready)}`]);
  }
  const set = (p: string): string => [...(byPort.get(p) ?? [])].sort().join(',');
  const portless = set('-');
  const absorbed = [...byPort.keys()].some((p) => p !== '-' && set(p) === portless);
  if (absorbed) for (const k of [...all.keys()]) if (k.endsWith('|-')) all.delete(k);
  return all;
}

const shuffled = <T>(xs: readonly T[], seed: number): T[] =>
  [...xs]
    .map((x, i) => ({ x, k: (i * 7919 + seed) % 104729 }))
    .sort((a, b) => a.k - b.k)
    .map(({ x }) => x);

describe('repackSubsets (properties)', () => {
  it('is idempotent', () => {
    fc.assert(
      fc.property(subsets, (s) => {
        const once = repackSubsets(s);
        // Judged by jest's structural equality, not by the production fingerprint.
        expect(repackSubsets(once)).toEqual(once);
      }),
      { numRuns: 300 },
    );
  });

  it('does not depend on the order of subsets or addresses', () => {
    fc.assert(
      fc.property(subsets, fc.nat(), (s, seed) => {
        const reordered = shuffled(s, seed).map((x) => ({
          ...x,
          ...(x.addresses ? { addresses: shuffled(x.addresses, seed + 1) } : {}),
          ...(x.notReadyAddresses
            ? { notReadyAddresses: shuffled(x.notReadyAddresses, seed + 2) }
            : {}),
        }));
        expect(repackSubsets(reordered)).toEqual(repackSubsets(s));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps every address on every port with its readiness (not ready wins), and adds none', () => {
    fc.assert(
      fc.property(subsets, (s) => {
        expect(readiness(repackSubsets(s))).toEqual(repackedReadiness(s));
      }),
      { numRuns: 300 },
    );
  });

  it('lets addresses without ports join a port that carries exactly the same ones, as upstream does', () => {
    const a = toAddress({ ip: '10.0.0.12', uid: 'a' });
    const http = { name: 'http', port: 80, protocol: 'TCP' };
    expect(repackSubsets([{ addresses: [a] }, { addresses: [a], ports: [http] }])).toEqual([
      { addresses: [a], ports: [http] },
    ]);
    // A different set keeps its own, port-less subset.
    const b = toAddress({ ip: '10.0.0.13', uid: 'a' });
    expect(repackSubsets([{ addresses: [a, b] }, { addresses: [a], ports: [http] }])).toHaveLength(
      2,
    );
  });

  it('passes the counterexample that first showed the absorption (fast-check seed -1726383152)', () => {
    fc.assert(
      fc.property(subsets, (s) => {
        expect(readiness(repackSubsets(s))).toEqual(repackedReadiness(s));
      }),
      { numRuns: 300, seed: -1726383152 },
    );
  });
});

describe('truncateSubsets (properties)', () => {
  // Over capacity: many addresses, each distinct, spread over a few subsets.
  const big = fc
    .array(fc.record({ ready: fc.nat({ max: 700 }), notReady: fc.nat({ max: 700 }) }), {
      minLength: 1,
      maxLength: 4,
    })
    .map((parts) => {
      let n = 0;
      const addr = (): V1EndpointAddress => {
        n++;
        return { ip: `10.${String(n >> 16)}.${String((n >> 8) & 255)}.${String(n & 255)}` };
      };
      return parts.map(({ ready, notReady }, i) => ({
        ...(ready > 0 ? { addresses: Array.from({ length: ready }, addr) } : {}),
        ...(notReady > 0 ? { notReadyAddresses: Array.from({ length: notReady }, addr) } : {}),
        ports: [{ name: 'p', port: 8000 + i, protocol: 'TCP' }],
      }));
    });

  it('keeps at most the capacity, ready addresses first, and cuts only when over it', () => {
    fc.assert(
      fc.property(big, (s) => {
        const before = countAddresses(s);
        const { subsets: out, truncated } = truncateSubsets(s);
        const after = countAddresses(out);
        const total = before.ready + before.notReady;
        expect(truncated).toBe(total > maxCapacity);
        expect(after.ready + after.notReady).toBe(Math.min(total, maxCapacity));
        // Not-ready addresses go first: a ready address is cut only when ready ones alone overflow.
        expect(after.ready).toBe(Math.min(before.ready, maxCapacity));
        // Everything kept was there before, in the same readiness.
        const was = readiness(s);
        for (const [k, r] of readiness(out)) expect(was.get(k)).toBe(r);
      }),
      { numRuns: 100 },
    );
  });
});
