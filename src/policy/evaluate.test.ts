import { describe, expect, it } from '@jest/globals';
import { externalBackendSpec } from '../externalbackend/schema.ts';
import { backendPorts, loadPolicy, policyDenies, type Subject } from './evaluate.ts';

const policy = loadPolicy({
  spec: {
    rules: [
      {
        name: 'payments-db',
        namespaceSelector: { matchLabels: { team: 'payments' } },
        cidrs: ['192.0.2.0/24', '2001:db8:1::/48'],
        ports: [{ port: 5432 }],
      },
      {
        name: 'payments-web',
        namespaceSelector: { matchLabels: { team: 'payments' } },
        cidrs: ['198.51.100.0/24'],
        ports: [{ port: 8000, endPort: 8100 }],
      },
      {
        name: 'legacy-anything',
        namespaceSelector: {
          matchExpressions: [
            { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['wetwin'] },
          ],
        },
        cidrs: ['203.0.113.0/24'],
      },
    ],
  },
});

const subject = (namespace: string, labels: Record<string, string>, ports: number[]): Subject => ({
  namespace,
  namespaceLabels: { 'kubernetes.io/metadata.name': namespace, ...labels },
  ports,
});
const payments = (ports: number[]) => subject('payments', { team: 'payments' }, ports);

describe('policyDenies', () => {
  it.each([
    ['a covered address on an allowed port', payments([5432]), '192.0.2.10'],
    ['an IPv6 address in a rule', payments([5432]), '2001:db8:1::7'],
    ['a port inside a range', payments([8000, 8100]), '198.51.100.3'],
    ['any port when the rule lists none', subject('wetwin', {}, [22, 80]), '203.0.113.9'],
  ])('allows %s', (_what, s, ip) => {
    expect(policyDenies(policy, s, ip)).toBeUndefined();
  });

  it.each([
    [
      'a namespace no rule selects',
      subject('team-b', { team: 'b' }, [5432]),
      '192.0.2.10',
      'no rule grants namespace team-b any address',
    ],
    [
      'an address outside every rule of the namespace',
      payments([5432]),
      '203.0.113.9',
      'no rule for namespace payments covers 203.0.113.9 (rules: payments-db, payments-web)',
    ],
    [
      'a port the covering rule does not allow',
      payments([5432, 22]),
      '192.0.2.10',
      'rule payments-db covers 192.0.2.10 but not port 22',
    ],
    [
      'a port just past a range',
      payments([8101]),
      '198.51.100.3',
      'rule payments-web covers 198.51.100.3 but not port 8101',
    ],
    [
      'an IPv4-mapped form of a covered address (judged as written: fail closed)',
      payments([5432]),
      '::ffff:192.0.2.10',
      'covers ::ffff:192.0.2.10',
    ],
    [
      'a label value that only looks right',
      subject('payments2', { team: 'payments ' }, [5432]),
      '192.0.2.10',
      'no rule grants namespace payments2',
    ],
  ])('denies %s', (_what, s, ip, why) => {
    expect(policyDenies(policy, s, ip)).toContain(why);
  });

  it('denies everything, saying why, when there is no policy or it is unreadable', () => {
    expect(policyDenies({ state: 'absent' }, payments([5432]), '192.0.2.10')).toBe(
      'not allowed: there is no ExternalBackendPolicy "cluster", so no namespace may register addresses (the platform team grants them there)',
    );
    expect(loadPolicy({ spec: { rules: [{ name: 'x' }] } })).toMatchObject({ state: 'invalid' });
    expect(
      policyDenies(loadPolicy({ spec: { rules: 'all' } }), payments([5432]), '192.0.2.10'),
    ).toMatch(/^not allowed: ExternalBackendPolicy "cluster" is invalid/);
  });

  it('allows nothing while the namespace labels are not known (NotIn and DoesNotExist fail closed)', () => {
    const notSandbox = loadPolicy({
      spec: {
        rules: [
          {
            name: 'not-sandbox',
            namespaceSelector: {
              matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['sandbox'] }],
            },
            cidrs: ['192.0.2.0/24'],
          },
        ],
      },
    });
    const unknown = { namespace: 'sandbox', namespaceLabels: undefined, ports: [80] };
    expect(policyDenies(notSandbox, unknown, '192.0.2.10')).toBe(
      'not allowed yet: the labels of namespace sandbox are not known',
    );
    expect(
      policyDenies(notSandbox, { ...unknown, namespaceLabels: { tier: 'sandbox' } }, '192.0.2.10'),
    ).toContain('no rule grants namespace sandbox');
    expect(
      policyDenies(notSandbox, { ...unknown, namespaceLabels: { tier: 'prod' } }, '192.0.2.10'),
    ).toBeUndefined();
  });

  it('an empty namespaceSelector selects every namespace', () => {
    const open = loadPolicy({
      spec: { rules: [{ name: 'all', namespaceSelector: {}, cidrs: ['0.0.0.0/0', '::/0'] }] },
    });
    expect(policyDenies(open, subject('anything', {}, [1]), '192.0.2.1')).toBeUndefined();
    expect(policyDenies(open, subject('anything', {}, [1]), '2001:db8::1')).toBeUndefined();
  });
});

describe('backendPorts', () => {
  it('takes the published ports and a probe port given by number, not by name', () => {
    const spec = externalBackendSpec.parse({
      ports: [
        { name: 'pg', port: 5432 },
        { name: 'metrics', port: 9187 },
      ],
      addresses: [{ ip: '192.0.2.10' }],
      healthCheck: { http: { port: 8008 } },
    });
    expect(backendPorts(spec)).toEqual([5432, 8008, 9187]);
    const named = externalBackendSpec.parse({
      ports: [{ name: 'pg', port: 5432 }],
      addresses: [{ ip: '192.0.2.10' }],
      healthCheck: { tcp: { port: 'pg' } },
    });
    expect(backendPorts(named)).toEqual([5432]);
  });
});
