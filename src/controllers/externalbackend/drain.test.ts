import { describe, expect, it } from '@jest/globals';
import { initialHealth, observe, type AddressHealth } from '../../health/state.ts';
import { addressViews } from './addresses.ts';
import { desiredEndpoints, sliceEndpoints } from './desired.ts';
import { applyDrain, maxDrainEntries, parseDrainAnnotation } from './drain.ts';
import { externalBackendSpec } from '../../api/externalbackend.ts';
import { candidateAddresses, noResolutions } from '../../sources/index.ts';
import { planStatus } from './status.ts';

const t = { healthyThreshold: 1, unhealthyThreshold: 1 };
const up = (): AddressHealth => observe(initialHealth(0), true, t, 1);
const down = (): AddressHealth => observe(initialHealth(0), false, t, 1, 'ECONNREFUSED');
const allow = () => undefined;
const xb = { name: 'db', namespace: 'team', uid: 'u' };

const spec = (drainSecond = false) =>
  externalBackendSpec.parse({
    ports: [{ name: 'p', port: 5432 }],
    addresses: [
      { ip: '192.0.2.1' },
      { ip: '192.0.2.2', ...(drainSecond ? { drain: true } : {}) },
      { ip: '192.0.2.3' },
    ],
    healthCheck: { tcp: { port: 'p' }, failOpen: true },
  });

describe('the drain annotation', () => {
  it('reads IPs and names separated by commas or spaces, each once, lowercased, bounded', () => {
    expect([...parseDrainAnnotation(' 192.0.2.1,DB-2.example.com  192.0.2.1,,')]).toEqual([
      '192.0.2.1',
      'db-2.example.com',
    ]);
    expect(parseDrainAnnotation(undefined).size).toBe(0);
    const huge = Array.from({ length: maxDrainEntries + 10 }, (_, i) => `h${String(i)}`).join(',');
    expect(parseDrainAnnotation(huge).size).toBe(maxDrainEntries);
  });

  it('reads IPs in canonical form and ignores entries too long to be an IP or a name', () => {
    expect([...parseDrainAnnotation(`2001:DB8:0:0::1,${'a'.repeat(300)},db.example.com`)]).toEqual([
      '2001:db8::1',
      'db.example.com',
    ]);
  });

  it('drains an address a name resolves to even when another source lists it first', () => {
    const { candidates: out } = applyDrain(
      [{ ip: '192.0.2.7' }],
      new Set(['db-2.example.com']),
      new Map([['db-2.example.com', ['192.0.2.7']]]),
    );
    expect(out).toEqual([{ ip: '192.0.2.7', drain: true }]);
  });

  it('drains an address by IP and every address of a DNS name, and reports what matched nothing', () => {
    const candidates = [
      { ip: '192.0.2.1' },
      { ip: '192.0.2.7', dnsName: 'db-2.example.com' },
      { ip: '192.0.2.8', dnsName: 'db-2.example.com' },
      { ip: '192.0.2.9', dnsName: 'db-3.example.com' },
    ];
    const { candidates: out, unmatched } = applyDrain(
      candidates,
      new Set(['192.0.2.1', 'db-2.example.com', '192.0.2.200']),
      new Map([
        ['db-2.example.com', ['192.0.2.7', '192.0.2.8']],
        ['db-3.example.com', ['192.0.2.9']],
      ]),
    );
    expect(out.filter((c) => c.drain === true).map((c) => c.ip)).toEqual([
      '192.0.2.1',
      '192.0.2.7',
      '192.0.2.8',
    ]);
    expect(unmatched).toEqual(['192.0.2.200']);
  });
});

describe('a draining address', () => {
  const health = new Map([
    ['192.0.2.1', up()],
    ['192.0.2.2', up()],
    ['192.0.2.3', up()],
  ]);

  it('is published not ready, serving and terminating, and not ready in the Endpoints', () => {
    const s = spec(true);
    const { views } = addressViews(
      s,
      health,
      allow,
      undefined,
      candidateAddresses({ spec: s, resolutions: noResolutions }),
    );
    const slice = sliceEndpoints(views).get('IPv4') ?? [];
    expect(slice.map((e) => [e.addresses[0], e.conditions])).toEqual([
      ['192.0.2.1', { ready: true, serving: true, terminating: false }],
      ['192.0.2.2', { ready: false, serving: true, terminating: true }],
      ['192.0.2.3', { ready: true, serving: true, terminating: false }],
    ]);
    const ep = desiredEndpoints(xb, s, views);
    expect(ep.subsets?.[0]?.notReadyAddresses?.map((a) => a.ip)).toEqual(['192.0.2.2']);
  });

  it('serves only while its checks pass, and neither triggers fail-open nor is revived by it', () => {
    const s = spec(true);
    const failing = new Map([
      ['192.0.2.1', down()],
      ['192.0.2.2', down()],
      ['192.0.2.3', down()],
    ]);
    const { views, failOpen } = addressViews(
      s,
      failing,
      allow,
      undefined,
      candidateAddresses({ spec: s, resolutions: noResolutions }),
    );
    expect(failOpen).toBe(true);
    const drained = views.find((v) => v.ip === '192.0.2.2');
    expect(drained).toMatchObject({ ready: false, serving: false, draining: true });
    expect(views.filter((v) => v.ready).map((v) => v.ip)).toEqual(['192.0.2.1', '192.0.2.3']);
    // Every address but the drained one healthy: no fail-open.
    const oneDown = new Map([...health, ['192.0.2.2', down()]]);
    expect(
      addressViews(
        s,
        oneDown,
        allow,
        undefined,
        candidateAddresses({ spec: s, resolutions: noResolutions }),
      ).failOpen,
    ).toBe(false);
  });

  it('is in status and an Event when it starts draining, and another when it stops', () => {
    const input = (drain: boolean, previous?: ReturnType<typeof planStatus>['status']) => {
      const s = spec(drain);
      const { views, failOpen } = addressViews(
        s,
        health,
        allow,
        undefined,
        candidateAddresses({ spec: s, resolutions: noResolutions }),
      );
      return {
        generation: 1,
        previous,
        views,
        failOpen,
        counts: { ready: views.filter((v) => v.ready).length, total: views.length },
        now: new Date('2026-12-02T10:00:00Z'),
      };
    };
    const first = planStatus(input(false));
    const drained = planStatus(input(true, first.status));
    expect(drained.status?.addresses?.find((a) => a.ip === '192.0.2.2')).toMatchObject({
      ready: false,
      draining: true,
      message: 'draining: out of new connections',
    });
    expect(drained.events).toEqual([
      expect.objectContaining({ reason: 'AddressDraining', type: 'Normal' }),
    ]);
    expect(drained.status?.conditions?.find((c) => c.type === 'Ready')?.message).toContain(
      'draining: 192.0.2.2',
    );
    const back = planStatus(input(false, drained.status));
    expect(back.events).toEqual([
      expect.objectContaining({
        reason: 'AddressUndrained',
        message: '192.0.2.2 is no longer draining; back in the ready set',
      }),
    ]);
  });
});
