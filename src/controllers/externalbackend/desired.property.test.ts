// Properties of an ExternalBackend's desired state and status over generated specs, health and
// deny decisions (fast-check): a denied address is never published, failing open publishes every
// allowed address, and the same inputs build the same status (so no status write). Equality is
// judged here by a reference (jest's structural equality, blind to key order), never by the
// production comparator under test.
import { describe, expect, it } from '@jest/globals';
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import fc from 'fast-check';
import type { AddressHealth, HealthState } from '../../health/state.ts';
import { addressViews, publishedCounts } from './addresses.ts';
import { desiredEndpoints, desiredSlices } from './desired.ts';
import { externalBackendSpec } from '../../api/externalbackend.ts';
import { buildStatus, parseStatus, planStatus } from './status.ts';

const ref = { namespace: 'team-a', name: 'db', uid: 'uid-1' };
const pool = [
  ...Array.from({ length: 8 }, (_, i) => `192.0.2.${String(i + 1)}`),
  ...Array.from({ length: 4 }, (_, i) => `2001:db8::${String(i + 1)}`),
];

const input = fc
  .record({
    ips: fc.uniqueArray(fc.constantFrom(...pool), { minLength: 1, maxLength: pool.length }),
    denied: fc.uniqueArray(fc.constantFrom(...pool)),
    states: fc.array(fc.constantFrom<HealthState>('Healthy', 'Unhealthy', 'Unknown'), {
      minLength: pool.length,
      maxLength: pool.length,
    }),
    check: fc.boolean(),
    failOpen: fc.boolean(),
  })
  .map(({ ips, denied, states, check, failOpen }) => {
    const spec = externalBackendSpec.parse({
      ports: [{ name: 'p', port: 5432 }],
      addresses: ips.map((ip) => ({ ip })),
      ...(check ? { healthCheck: { tcp: { port: 'p' }, failOpen } } : {}),
    });
    const health = new Map<string, AddressHealth>(
      ips.map((ip, i) => [
        ip,
        { state: states[i] ?? 'Unknown', successes: 0, failures: 0, since: 1000, message: 'x' },
      ]),
    );
    const deny = new Set(denied);
    return { spec, health, deny, ips };
  });

const published = (slices: readonly V1EndpointSlice[], ep: V1Endpoints) => ({
  slices: slices.flatMap((s) =>
    (s.endpoints ?? []).map((e) => ({
      ip: e.addresses[0] ?? '',
      ready: e.conditions?.ready === true,
    })),
  ),
  endpoints: (ep.subsets ?? []).flatMap((s) => [
    ...(s.addresses ?? []).map((a) => ({ ip: a.ip, ready: true })),
    ...(s.notReadyAddresses ?? []).map((a) => ({ ip: a.ip, ready: false })),
  ]),
});

describe('ExternalBackend desired state (properties)', () => {
  it('never publishes a denied address, in Endpoints or in EndpointSlices', () => {
    fc.assert(
      fc.property(input, ({ spec, health, deny }) => {
        const { views } = addressViews(spec, health, (ip) => (deny.has(ip) ? 'denied' : undefined));
        const out = published(desiredSlices(ref, spec, views), desiredEndpoints(ref, spec, views));
        for (const e of [...out.slices, ...out.endpoints]) expect(deny.has(e.ip)).toBe(false);
        for (const v of views)
          if (deny.has(v.ip)) expect(v).toMatchObject({ state: 'Denied', ready: false });
      }),
      { numRuns: 500 },
    );
  });

  it('publishes every allowed address, ready exactly when healthy, unknown or failing open (none passing, some failing)', () => {
    fc.assert(
      fc.property(input, ({ spec, health, deny, ips }) => {
        const { views, failOpen } = addressViews(spec, health, (ip) =>
          deny.has(ip) ? 'denied' : undefined,
        );
        const allowed = ips.filter((ip) => !deny.has(ip));
        const hc = spec.healthCheck;
        // Fail-open: some allowed address fails and none passes (not checked yet counts as neither).
        const state = (ip: string) => health.get(ip)?.state ?? 'Unknown';
        const noneHealthy =
          allowed.some((ip) => state(ip) === 'Unhealthy') &&
          !allowed.some((ip) => state(ip) === 'Healthy');
        expect(failOpen).toBe(hc !== undefined && hc.failOpen && noneHealthy);
        const out = published(desiredSlices(ref, spec, views), desiredEndpoints(ref, spec, views));
        for (const list of [out.slices, out.endpoints]) {
          expect(list.map((e) => e.ip).sort()).toEqual([...allowed].sort());
          for (const e of list) {
            const expected =
              hc === undefined || failOpen || health.get(e.ip)?.state !== 'Unhealthy';
            expect({ ip: e.ip, ready: e.ready }).toEqual({ ip: e.ip, ready: expected });
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('builds the same status from the same inputs, so nothing is written twice', () => {
    fc.assert(
      fc.property(input, fc.nat({ max: 5 }), ({ spec, health, deny }, generation) => {
        const { views, failOpen } = addressViews(spec, health, (ip) =>
          deny.has(ip) ? 'denied' : undefined,
        );
        const base = { generation, views, counts: publishedCounts(views, []), failOpen };
        const first = buildStatus({ ...base, previous: undefined, now: new Date(1_000_000) });
        // What the next reconcile sees: the status as the API server stores and returns it.
        const stored = readBack(first);
        const later = { ...base, previous: stored, now: new Date(2_000_000) };
        expect(buildStatus(later)).toEqual(stored);
        // And the decision the controller acts on: no write.
        expect(planStatus(later).status).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });
});

/**
 * A status as the API server hands it back: through JSON, every object's keys in sorted order (not
 * the order buildStatus wrote them), then parsed as the controller parses it.
 */
function readBack(status: unknown) {
  const sortKeys = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sortKeys)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
              .map(([k, x]) => [k, sortKeys(x)]),
          )
        : v;
  return parseStatus(JSON.parse(JSON.stringify(sortKeys(status))));
}
