import { describe, expect, it } from '@jest/globals';
import { DenyList, defaultDeniedCidrs } from './denylist.ts';

describe('DenyList', () => {
  const d = new DenyList([...defaultDeniedCidrs, '10.96.0.0/12', 'fd00:10:96::/112']);

  it.each([
    ['127.0.0.1', '127.0.0.0/8'],
    ['127.9.9.9', '127.0.0.0/8'],
    ['::1', '::1/128'],
    ['::ffff:127.0.0.1', '127.0.0.0/8'],
    ['169.254.169.254', '169.254.0.0/16'],
    ['fe80::1', 'fe80::/10'],
    ['239.255.255.250', '224.0.0.0/4'],
    ['ff02::1', 'ff00::/8'],
    ['0.0.0.0', '0.0.0.0/8'],
    ['::', '::/128'],
    ['255.255.255.255', '255.255.255.255/32'],
    ['10.96.0.1', '10.96.0.0/12'],
    ['fd00:10:96::a', 'fd00:10:96::/112'],
  ])('denies %s (%s)', (ip, cidr) => {
    expect(d.denies(ip)).toBe(cidr);
  });

  it.each(['192.0.2.10', '198.51.100.7', '2001:db8::10', '10.250.0.2', '::ffff:192.0.2.1'])(
    'allows %s',
    (ip) => {
      expect(d.denies(ip)).toBeUndefined();
    },
  );

  it('rejects a malformed CIDR by name', () => {
    expect(() => new DenyList(['10.0.0.0/33'])).toThrow('invalid CIDR "10.0.0.0/33"');
  });
});
