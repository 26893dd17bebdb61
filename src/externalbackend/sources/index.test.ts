import { describe, expect, it } from '@jest/globals';
import { externalBackendSpec } from '../schema.ts';
import { candidateAddresses } from './index.ts';

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
    expect(candidateAddresses({ spec })).toEqual([
      { ip: '192.0.2.2', nodeName: 'vm-2', hostname: 'db-2' },
      { ip: '2001:db8::1' },
      { ip: '192.0.2.1' },
    ]);
  });

  it('give nothing for a backend of pods only', () => {
    const spec = externalBackendSpec.parse({ ports: [{ name: 'p', port: 80 }], podSelector: {} });
    expect(candidateAddresses({ spec })).toEqual([]);
  });
});
