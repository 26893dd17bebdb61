import { describe, expect, it } from '@jest/globals';
import { externalBackendSpec } from '../api/externalbackend.ts';
import { pending, type Resolution } from '../dns/resolution.ts';
import { candidateAddresses, noResolutions } from './index.ts';

describe('address sources', () => {
  it('give spec.addresses in spec order, with their node and host names', () => {
    const spec = externalBackendSpec.parse({
      ports: [{ name: 'p', port: 80 }],
      addresses: [
        { ip: '192.0.2.2', nodeName: 'vm-2', hostname: 'db-2' },
        { ip: '2001:db8::1' },
        { ip: '192.0.2.1' },
      ],
    });
    expect(candidateAddresses({ spec, resolutions: noResolutions })).toEqual([
      { ip: '192.0.2.2', nodeName: 'vm-2', hostname: 'db-2' },
      { ip: '2001:db8::1' },
      { ip: '192.0.2.1' },
    ]);
  });

  it('give nothing for a backend of pods only', () => {
    const spec = externalBackendSpec.parse({ ports: [{ name: 'p', port: 80 }], podSelector: {} });
    expect(candidateAddresses({ spec, resolutions: noResolutions })).toEqual([]);
  });

  it('give the addresses each DNS name resolves to, after the listed ones, each IP once', () => {
    const spec = externalBackendSpec.parse({
      ports: [{ name: 'p', port: 80 }],
      addresses: [{ ip: '192.0.2.1' }],
      dnsNames: [{ name: 'db.example.com', nodeName: 'vm-db' }, { name: 'new.example.com' }],
    });
    const resolved: Resolution = {
      ...pending('db.example.com'),
      state: 'Resolved',
      ips: ['192.0.2.1', '192.0.2.7', '2001:db8::7'],
    };
    const resolutions = new Map([
      ['db.example.com', resolved],
      ['new.example.com', pending('new.example.com')],
    ]);
    expect(candidateAddresses({ spec, resolutions })).toEqual([
      { ip: '192.0.2.1' },
      { ip: '192.0.2.7', dnsName: 'db.example.com', nodeName: 'vm-db' },
      { ip: '2001:db8::7', dnsName: 'db.example.com', nodeName: 'vm-db' },
    ]);
  });
});
