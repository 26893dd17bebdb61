import { describe, expect, it } from '@jest/globals';
import { externalBackendSpec } from '../api/externalbackend.ts';
import {
  backendPorts,
  compileEffective,
  frozenBecause,
  loadPolicies,
  loadPolicy,
  nodeAddressGrant,
  policyDenies,
  type Subject,
} from './evaluate.ts';

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
      'no ExternalBackendPolicy rule grants namespace team-b any address',
    ],
    [
      'an address outside every rule of the namespace',
      payments([5432]),
      '203.0.113.9',
      'no ExternalBackendPolicy rule for namespace payments covers 203.0.113.9 (rules: cluster/payments-db, cluster/payments-web)',
    ],
    [
      'a port the covering rule does not allow',
      payments([5432, 22]),
      '192.0.2.10',
      'rule cluster/payments-db covers 192.0.2.10 but not port 22',
    ],
    [
      'a port just past a range',
      payments([8101]),
      '198.51.100.3',
      'rule cluster/payments-web covers 198.51.100.3 but not port 8101',
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
      'no ExternalBackendPolicy rule grants namespace payments2',
    ],
  ])('denies %s', (_what, s, ip, why) => {
    expect(policyDenies(policy, s, ip)).toContain(why);
  });

  it('freezes, never withdraws, when there is no grant object, one cannot be parsed, or they cannot be read', () => {
    const published = new Set(['192.0.2.10']);
    const s = { ...payments([5432]), published };
    for (const missing of [
      loadPolicies([]),
      loadPolicies([{ metadata: { name: 'outrigger-effective' }, spec: { rules: [] } }]),
      loadPolicies([{ metadata: { name: 'team-a' }, spec: { rules: 'all' } }]),
      loadPolicies([{ metadata: { name: 'team-a' }, spec: { rules: [] } }], 'forbidden'),
    ]) {
      expect(missing.state).toBe('missing');
      // What is published stays; nothing new is published.
      expect(policyDenies(missing, s, '192.0.2.10')).toBeUndefined();
      expect(policyDenies(missing, s, '192.0.2.11')).toMatch(
        /^not published while the address policy is frozen \(/,
      );
      expect(frozenBecause(missing, s)).toBeDefined();
    }
    expect(frozenBecause(loadPolicies([]), s)).toBe('there is no ExternalBackendPolicy');
    expect(frozenBecause(loadPolicies([], 'forbidden'), s)).toBe(
      'ExternalBackendPolicys cannot be read: forbidden',
    );
    expect(
      frozenBecause(loadPolicies([{ metadata: { name: 'team-a' }, spec: { rules: 'all' } }]), s),
    ).toMatch(/^ExternalBackendPolicy team-a cannot be parsed/);
    // A grant object with no rules is a grant of nothing, not a missing policy: it withdraws.
    const none = loadPolicies([{ metadata: { name: 'cluster' }, spec: { rules: [] } }]);
    expect(none.state).toBe('ok');
    expect(policyDenies(none, s, '192.0.2.10')).toContain('no ExternalBackendPolicy rule grants');
  });

  it('adds up the rules of several objects; deleting one revokes only its grants', () => {
    const teamA = {
      metadata: { name: 'team-a' },
      spec: {
        rules: [
          {
            name: 'db',
            namespaceSelector: { matchLabels: { team: 'payments' } },
            cidrs: ['192.0.2.0/25'],
          },
        ],
      },
    };
    const teamB = {
      metadata: { name: 'team-b' },
      spec: {
        rules: [
          {
            name: 'db',
            namespaceSelector: { matchLabels: { team: 'payments' } },
            cidrs: ['192.0.2.128/25'],
          },
        ],
      },
    };
    const both = loadPolicies([teamB, teamA]);
    const s = { ...payments([5432]), published: new Set(['192.0.2.10', '192.0.2.200']) };
    expect(policyDenies(both, s, '192.0.2.10')).toBeUndefined();
    expect(policyDenies(both, s, '192.0.2.200')).toBeUndefined();
    const onlyA = loadPolicies([teamA]);
    expect(policyDenies(onlyA, s, '192.0.2.10')).toBeUndefined();
    expect(policyDenies(onlyA, s, '192.0.2.200')).toBe(
      'not allowed: no ExternalBackendPolicy rule for namespace payments covers 192.0.2.200 (rules: team-a/db)',
    );
    // The compiled object names each rule by its object, in object order, for admission.
    expect(compileEffective(both)?.rules.map((r) => r.name)).toEqual(['team-a.db', 'team-b.db']);
    expect(compileEffective(both)?.rules[0]).toMatchObject({ cidrs: ['192.0.2.0/25'] });
    expect(compileEffective(loadPolicies([]))).toBeUndefined();
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

  it('counts the port of every check kind, as the admission policy does', () => {
    for (const kind of ['tcp', 'http', 'tls', 'grpc'])
      expect(
        backendPorts(
          externalBackendSpec.parse({
            ports: [{ name: 'pg', port: 5432 }],
            addresses: [{ ip: '192.0.2.10' }],
            healthCheck: { [kind]: { port: 6443 } },
          }),
        ),
      ).toEqual([5432, 6443]);
  });
});

describe('nodeAddressGrant', () => {
  const grants = loadPolicies([
    {
      metadata: { name: 'etcd' },
      spec: {
        rules: [
          {
            name: 'members',
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
            cidrs: ['172.18.0.0/24'],
            ports: [{ port: 2379, endPort: 2380 }],
            allowClusterAddresses: ['NodeAddresses'],
          },
          // Covers the same addresses, but grants no Node address.
          { name: 'plain', namespaceSelector: {}, cidrs: ['172.18.0.0/16'] },
          // Without ports a rule grants no Node address, whatever slipped past its schema.
          {
            name: 'portless',
            namespaceSelector: { matchLabels: { team: 'x' } },
            cidrs: ['172.18.0.0/16'],
            allowClusterAddresses: ['NodeAddresses'],
          },
        ],
      },
    },
  ]);
  const judge = (s: Subject, ip: string) => nodeAddressGrant(grants, s)(ip);

  it('names the rule that grants a Node address to its namespace on its ports', () => {
    expect(judge(subject('kube-system', {}, [2379, 2380]), '172.18.0.3')).toEqual({
      by: 'ExternalBackendPolicy rule etcd/members',
    });
  });

  it.each([
    ['another namespace', subject('tenant', {}, [2379]), '172.18.0.3'],
    ['a port outside the rule', subject('kube-system', {}, [2379, 22]), '172.18.0.3'],
    ['an address outside its CIDRs', subject('kube-system', {}, [2379]), '172.18.1.3'],
    ['a rule without ports', subject('x', { team: 'x' }, [2379]), '172.18.0.3'],
  ])('grants nothing to %s', (_what, s, ip) => {
    expect(judge(s, ip)).toEqual({
      denied: expect.stringContaining('allowClusterAddresses: [NodeAddresses]') as unknown,
    });
  });

  it('keeps a published Node address while frozen, and nothing new', () => {
    const frozen = nodeAddressGrant(loadPolicies([]), {
      ...subject('kube-system', {}, [2379]),
      published: new Set(['172.18.0.3']),
    });
    expect(frozen('172.18.0.3')).toHaveProperty('by');
    expect(frozen('172.18.0.4')).toHaveProperty('denied');
  });
});
