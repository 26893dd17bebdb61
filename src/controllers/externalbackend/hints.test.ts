import { describe, expect, it } from '@jest/globals';
import type { AddressView } from './addresses.ts';
import { hintZones, sliceEndpoints } from './desired.ts';

const view = (ip: string, zone: string, probers?: AddressView['probers']): AddressView => ({
  ip,
  zone,
  state: 'Healthy',
  ready: true,
  message: '',
  ...(probers !== undefined ? { probers } : {}),
});
const verdict = (zonesHealthy: string[], zonesUnhealthy: string[]) => ({
  unhealthy: false,
  healthy: zonesHealthy.length,
  against: zonesUnhealthy.length,
  ignored: 0,
  zonesHealthy,
  zonesUnhealthy,
});

describe('zone hints shaped by the probers', () => {
  const cases: [string, AddressView, string[]][] = [
    ['one prober: its own zone', view('10.0.0.1', 'zone-b'), ['zone-b']],
    [
      'every prober reaches it: its own zone',
      view('10.0.0.1', 'zone-b', verdict(['zone-a', 'zone-b'], [])),
      ['zone-b'],
    ],
    [
      'its own zone cannot reach it, another can: the zones that reach it',
      view('10.0.0.1', 'zone-b', verdict(['zone-a'], ['zone-b'])),
      ['zone-a'],
    ],
    [
      'probers of its own zone disagree among themselves: its own zone',
      view('10.0.0.1', 'zone-b', verdict(['zone-a', 'zone-b'], ['zone-b'])),
      ['zone-b'],
    ],
    [
      'another zone cannot reach it: its own zone, which can',
      view('10.0.0.1', 'zone-b', verdict(['zone-b'], ['zone-a'])),
      ['zone-b'],
    ],
    [
      'nobody reaches it (a real failure): its own zone',
      view('10.0.0.1', 'zone-b', verdict([], ['zone-a', 'zone-b'])),
      ['zone-b'],
    ],
  ];
  it.each(cases)('%s', (_name, v, zones) => {
    expect(hintZones(v, v.zone ?? '')).toEqual(zones);
  });

  it('writes them into the slice', () => {
    const eps = sliceEndpoints([
      view('10.0.0.1', 'zone-b', verdict(['zone-a'], ['zone-b'])),
      view('10.0.0.2', 'zone-b'),
    ]).get('IPv4');
    expect(
      eps?.map((e) => [e.addresses[0], e.zone, e.hints?.forZones?.map((z) => z.name)]),
    ).toEqual([
      ['10.0.0.1', 'zone-b', ['zone-a']],
      ['10.0.0.2', 'zone-b', ['zone-b']],
    ]);
  });
});
