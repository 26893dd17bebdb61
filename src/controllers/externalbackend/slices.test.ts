// The slice planner by table (what each situation must write) and by property (whatever the
// history, applying a plan yields exactly the desired endpoints, no slice over the limit, and
// planning again yields nothing).
import { describe, expect, it } from '@jest/globals';
import type { V1Endpoint, V1EndpointSlice } from '@kubernetes/client-node';
import fc from 'fast-check';
import { planSlices, type AddressType, type OwnedSlice, type SlicePlanInput } from './slices.ts';

const v4 = (i: number): string =>
  `10.${String(Math.floor(i / 65536) % 256)}.${String(Math.floor(i / 256) % 256)}.${String(i % 256)}`;
const v6 = (i: number): string => `2001:db8::${i.toString(16)}`;
const ep = (ip: string, ready = true): V1Endpoint => ({
  addresses: [ip],
  conditions: { ready, serving: ready, terminating: false },
});
const range = (from: number, n: number, ip = v4): V1Endpoint[] =>
  Array.from({ length: n }, (_, i) => ep(ip(from + i)));

function template(
  name: string,
  addressType: AddressType,
  endpoints: V1Endpoint[],
): V1EndpointSlice {
  return { metadata: { name }, addressType, endpoints };
}

const owned = (
  name: string,
  endpoints: V1Endpoint[],
  addressType = 'IPv4',
  metaUpToDate = true,
): OwnedSlice => ({
  name,
  addressType,
  endpoints,
  metaUpToDate,
});

function plan(
  existing: OwnedSlice[],
  desired: V1Endpoint[],
  max = 100,
  desired6: V1Endpoint[] = [],
): ReturnType<typeof planSlices> {
  return planSlices({
    existing,
    desired: new Map<AddressType, V1Endpoint[]>([
      ['IPv4', desired],
      ['IPv6', desired6],
    ]),
    baseName: 'db-outrigger',
    maxEndpointsPerSlice: max,
    template,
  });
}

const sizes = (slices: readonly V1EndpointSlice[]): [string, number][] =>
  slices.map((s) => [s.metadata?.name ?? '', s.endpoints?.length ?? 0]);

describe('planSlices', () => {
  it('makes as many slices as needed, the first under the unnumbered name', () => {
    const p = plan([], range(0, 250));
    expect(sizes(p.creates)).toEqual([
      ['db-outrigger-ipv4', 100],
      ['db-outrigger-ipv4-1', 100],
      ['db-outrigger-ipv4-2', 50],
    ]);
    expect(p.updates).toEqual([]);
    expect(p.deletes).toEqual([]);
  });

  it('writes nothing when every slice already says what is wanted', () => {
    const p = plan(
      [owned('db-outrigger-ipv4', range(0, 100)), owned('db-outrigger-ipv4-1', range(100, 20))],
      range(0, 120).reverse(),
    );
    expect(p).toEqual({ creates: [], updates: [], deletes: [] });
  });

  it('rewrites only the slice holding an address that changed state, in a 5000-address backend', () => {
    const all = range(0, 5000);
    const existing = Array.from({ length: 50 }, (_, i) =>
      owned(
        i === 0 ? 'db-outrigger-ipv4' : `db-outrigger-ipv4-${String(i)}`,
        all.slice(i * 100, i * 100 + 100),
      ),
    );
    const flipped = all.map((e, i) => (i === 2345 ? ep(v4(2345), false) : e));
    const p = plan(existing, flipped);
    expect(sizes(p.updates)).toEqual([['db-outrigger-ipv4-23', 100]]);
    expect(
      p.updates[0]?.endpoints?.find((e) => e.addresses[0] === v4(2345))?.conditions?.ready,
    ).toBe(false);
    expect(p.creates).toEqual([]);
    expect(p.deletes).toEqual([]);
  });

  it('puts a new address into the fullest slice with room rather than making a slice', () => {
    const p = plan(
      [
        owned('db-outrigger-ipv4', range(0, 100)),
        owned('db-outrigger-ipv4-1', range(100, 40)),
        owned('db-outrigger-ipv4-2', range(140, 90)),
      ],
      range(0, 231),
    );
    expect(sizes(p.updates)).toEqual([['db-outrigger-ipv4-2', 91]]);
    expect(p.creates).toEqual([]);
  });

  it('makes a new slice when every slice is full', () => {
    const p = plan([owned('db-outrigger-ipv4', range(0, 100))], range(0, 101));
    expect(sizes(p.creates)).toEqual([['db-outrigger-ipv4-1', 1]]);
    expect(p.updates).toEqual([]);
  });

  it('gives new addresses to a slice that is rewritten anyway', () => {
    // 10.0.0.5 goes from slice 0; a new address arrives: it goes into slice 0, one write.
    const desired = [...range(0, 5), ...range(6, 189), ...range(500, 1)];
    const p = plan(
      [owned('db-outrigger-ipv4', range(0, 100)), owned('db-outrigger-ipv4-1', range(100, 95))],
      desired,
    );
    expect(sizes(p.updates)).toEqual([['db-outrigger-ipv4', 100]]);
    expect(p.creates).toEqual([]);
  });

  it('deletes a slice left empty', () => {
    const p = plan(
      [owned('db-outrigger-ipv4', range(0, 100)), owned('db-outrigger-ipv4-1', range(100, 3))],
      range(0, 100),
    );
    expect(p).toEqual({ creates: [], updates: [], deletes: ['db-outrigger-ipv4-1'] });
  });

  it('reuses a slice left empty for new addresses instead of deleting and creating', () => {
    const p = plan(
      [owned('db-outrigger-ipv4', range(0, 100)), owned('db-outrigger-ipv4-1', range(100, 100))],
      [...range(0, 100), ...range(1000, 100)],
    );
    expect(sizes(p.updates)).toEqual([['db-outrigger-ipv4-1', 100]]);
    expect(p.creates).toEqual([]);
    expect(p.deletes).toEqual([]);
  });

  it('splits slices when the limit is lowered, keeping each endpoint where it was', () => {
    const p = plan([owned('db-outrigger-ipv4', range(0, 1000))], range(0, 1000));
    expect(sizes(p.updates)).toEqual([['db-outrigger-ipv4', 100]]);
    expect(p.creates).toHaveLength(9);
    expect(p.updates[0]?.endpoints).toEqual(range(0, 100));
  });

  it('rewrites a slice whose labels, owner or ports are stale, with the same members', () => {
    const p = plan([owned('db-outrigger-ipv4', range(0, 10), 'IPv4', false)], range(0, 10));
    expect(sizes(p.updates)).toEqual([['db-outrigger-ipv4', 10]]);
  });

  it('drops an endpoint listed twice from the later slice', () => {
    const p = plan(
      [owned('db-outrigger-ipv4', range(0, 3)), owned('db-outrigger-ipv4-1', range(2, 3))],
      range(0, 5),
    );
    expect(sizes(p.updates)).toEqual([['db-outrigger-ipv4-1', 2]]);
  });

  it('takes the lowest free name', () => {
    const p = plan([owned('db-outrigger-ipv4-1', range(0, 100))], range(0, 150));
    expect(sizes(p.creates)).toEqual([['db-outrigger-ipv4', 50]]);
  });

  it('deletes slices under another base name (a renamed Service) and an FQDN slice', () => {
    const p = plan(
      [owned('old-outrigger-ipv4', range(0, 3)), owned('db-outrigger-fqdn', [], 'FQDN')],
      range(0, 3),
    );
    expect(sizes(p.creates)).toEqual([['db-outrigger-ipv4', 3]]);
    expect([...p.deletes].sort()).toEqual(['db-outrigger-fqdn', 'old-outrigger-ipv4']);
  });

  it('plans each address family on its own', () => {
    const p = plan([owned('db-outrigger-ipv4', range(0, 2))], range(0, 2), 100, range(1, 3, v6));
    expect(sizes(p.creates)).toEqual([['db-outrigger-ipv6', 3]]);
    expect(p.creates[0]?.addressType).toBe('IPv6');
    expect(p.updates).toEqual([]);
  });

  it('deletes every slice when nothing is to be published', () => {
    const p = plan(
      [
        owned('db-outrigger-ipv4', range(0, 2)),
        owned('db-outrigger-ipv6', range(0, 1, v6), 'IPv6'),
      ],
      [],
    );
    expect([...p.deletes].sort()).toEqual(['db-outrigger-ipv4', 'db-outrigger-ipv6']);
  });
});

/** The slices that exist after a plan is applied to `existing`. */
function applyPlan(existing: OwnedSlice[], p: ReturnType<typeof planSlices>): OwnedSlice[] {
  const byName = new Map(existing.map((s) => [s.name, s]));
  for (const n of p.deletes) byName.delete(n);
  for (const s of [...p.updates, ...p.creates])
    byName.set(
      s.metadata?.name ?? '',
      owned(s.metadata?.name ?? '', s.endpoints ?? [], s.addressType),
    );
  return [...byName.values()];
}

describe('planSlices properties', () => {
  const state = fc.record({
    ids: fc.uniqueArray(fc.integer({ min: 0, max: 400 }), { maxLength: 400 }),
    notReady: fc.uniqueArray(fc.integer({ min: 0, max: 400 })),
  });
  const desiredOf = ({ ids, notReady }: { ids: number[]; notReady: number[] }): V1Endpoint[] =>
    ids.map((i) => ep(i % 3 === 0 ? v6(i) : v4(i), !notReady.includes(i)));
  const split = (eps: V1Endpoint[]): Map<AddressType, V1Endpoint[]> =>
    new Map<AddressType, V1Endpoint[]>([
      ['IPv4', eps.filter((e) => !(e.addresses[0] ?? '').includes(':'))],
      ['IPv6', eps.filter((e) => (e.addresses[0] ?? '').includes(':'))],
    ]);

  it('converges to exactly the desired endpoints in one plan, within the limit, and then stays', () => {
    fc.assert(
      fc.property(
        fc.array(state, { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 120 }),
        (history, max) => {
          let slices: OwnedSlice[] = [];
          for (const s of history) {
            const desired = desiredOf(s);
            const input: SlicePlanInput = {
              existing: slices,
              desired: split(desired),
              baseName: 'db-outrigger',
              maxEndpointsPerSlice: max,
              template,
            };
            slices = applyPlan(slices, planSlices(input));
            const published = slices.flatMap((x) => x.endpoints);
            expect(published.map((e) => JSON.stringify(e)).sort()).toEqual(
              desired.map((e) => JSON.stringify(e)).sort(),
            );
            for (const x of slices) {
              expect(x.endpoints.length).toBeGreaterThan(0);
              expect(x.endpoints.length).toBeLessThanOrEqual(max);
            }
            expect(planSlices({ ...input, existing: slices })).toEqual({
              creates: [],
              updates: [],
              deletes: [],
            });
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a single state change rewrites exactly one slice', () => {
    fc.assert(
      fc.property(state, fc.nat(), fc.integer({ min: 1, max: 120 }), (s, pick, max) => {
        fc.pre(s.ids.length > 0);
        const desired = desiredOf(s);
        const base = { baseName: 'db-outrigger', maxEndpointsPerSlice: max, template };
        const slices = applyPlan(
          [],
          planSlices({ ...base, existing: [], desired: split(desired) }),
        );
        const i = pick % desired.length;
        const flipped = desired.map((e, j) =>
          j === i ? { ...e, conditions: { ...e.conditions, ready: !e.conditions?.ready } } : e,
        );
        const p = planSlices({ ...base, existing: slices, desired: split(flipped) });
        expect(p.updates).toHaveLength(1);
        expect(p.creates).toEqual([]);
        expect(p.deletes).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });
});
