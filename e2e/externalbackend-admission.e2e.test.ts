// The generated ExternalBackend CRD on a real API server: bad objects are refused at admission with
// a message a person understands, good ones are stored with their defaults, and `kubectl get xb`
// shows the printer columns.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { installCrd } from './harness/crd.ts';
import { apiError, createTestNamespace } from './helpers.ts';

let cluster: Cluster;
let kc: KubeConfig;
let objects: CustomObjectsApi;
let ns: string;

beforeAll(async () => {
  cluster = await startCluster();
  kc = cluster.kubeConfig();
  await installCrd(cluster.kubeconfigPath);
  objects = kc.makeApiClient(CustomObjectsApi);
  ns = await createTestNamespace(kc, 'xb-admission');
}, 180_000);

afterAll(async () => {
  await cluster.stop();
});

const examplesDir = fileURLToPath(new URL('../examples/', import.meta.url));
const examples = readdirSync(examplesDir, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.yaml'))
  .sort();

let seq = 0;
function create(spec: Record<string, unknown>, name = `xb-${++seq}`): Promise<unknown> {
  return objects.createNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural,
    body: { apiVersion, kind: 'ExternalBackend', metadata: { name }, spec },
  });
}

const base = { ports: [{ name: 'client', port: 2379 }] };
const at = (ip: string): Record<string, unknown> => ({ ...base, addresses: [{ ip }] });

describe('ExternalBackend admission', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['an invalid IP', at('192.0.2.300'), 'must be an IPv4 or IPv6 address'],
    ['a non-canonical IPv6', at('2001:db8:0:0::1'), 'must be written in canonical form'],
    ['a loopback IPv4', at('127.0.0.1'), 'must not be a loopback address'],
    ['a loopback IPv6', at('::1'), 'must not be a loopback address'],
    ['the metadata server (link-local)', at('169.254.169.254'), 'must not be a link-local address'],
    ['a link-local IPv6', at('fe80::1'), 'must not be a link-local address'],
    ['a multicast IPv4', at('239.1.2.3'), 'must not be a multicast address'],
    ['a multicast IPv6', at('ff02::1'), 'must not be a multicast address'],
    ['a link-local multicast IPv4', at('224.0.0.5'), 'must not be a multicast address'],
    ['a global multicast IPv6', at('ff0e::1'), 'must not be a multicast address'],
    ['the unspecified address', at('0.0.0.0'), 'must not be the unspecified address'],
    [
      'a duplicate IP',
      { ...base, addresses: [{ ip: '192.0.2.10' }, { ip: '192.0.2.10' }] },
      'Duplicate value',
    ],
    [
      'a duplicate port name',
      {
        ports: [
          { name: 'a', port: 1 },
          { name: 'a', port: 2 },
        ],
        addresses: [{ ip: '192.0.2.10' }],
      },
      'Duplicate value',
    ],
    [
      'a port out of range',
      { ports: [{ name: 'a', port: 65536 }], addresses: [{ ip: '192.0.2.10' }] },
      'should be less than or equal to 65535',
    ],
    [
      'port 0',
      { ports: [{ name: 'a', port: 0 }], addresses: [{ ip: '192.0.2.10' }] },
      'should be greater than or equal to 1',
    ],
    ['no ports', { ports: [], addresses: [{ ip: '192.0.2.10' }] }, 'should have at least 1 items'],
    [
      'an unknown protocol',
      { ports: [{ name: 'a', port: 1, protocol: 'ICMP' }], addresses: [{ ip: '192.0.2.10' }] },
      'Unsupported value: "ICMP"',
    ],
    [
      'neither addresses nor podSelector',
      { ...base },
      'list at least one address or DNS name, or select pods with podSelector',
    ],
    [
      'a health check naming an unknown port',
      { ...at('192.0.2.10'), healthCheck: { tcp: { port: 'peer' } } },
      'healthCheck.tcp.port names a port that is not in spec.ports',
    ],
    [
      'an http check naming an unknown port',
      { ...at('192.0.2.10'), healthCheck: { http: { port: 'web' } } },
      'healthCheck.http.port names a port that is not in spec.ports',
    ],
    [
      'both tcp and http checks',
      { ...at('192.0.2.10'), healthCheck: { tcp: { port: 2379 }, http: { port: 2379 } } },
      'set exactly one of tcp, http, tls and grpc',
    ],
    [
      'no probe in a health check',
      { ...at('192.0.2.10'), healthCheck: { intervalSeconds: 5 } },
      'set exactly one of tcp, http, tls and grpc',
    ],
    [
      'a header value with a line break (header injection)',
      {
        ...at('192.0.2.10'),
        healthCheck: {
          http: { port: 2379, headers: [{ name: 'X-A', value: 'a\r\nHost: evil' }] },
        },
      },
      'must be printable ASCII: no CR, LF, NUL or other control characters',
    ],
    [
      'a Host header',
      {
        ...at('192.0.2.10'),
        healthCheck: { http: { port: 2379, headers: [{ name: 'host', value: 'evil' }] } },
      },
      'the Host header comes from serverName: set serverName instead',
    ],
    [
      'a framing header',
      {
        ...at('192.0.2.10'),
        healthCheck: {
          http: { port: 2379, headers: [{ name: 'Transfer-Encoding', value: 'chunked' }] },
        },
      },
      'are set by the prober and cannot be given',
    ],
    [
      'the same header twice',
      {
        ...at('192.0.2.10'),
        healthCheck: {
          http: {
            port: 2379,
            headers: [
              { name: 'X-A', value: '1' },
              { name: 'x-a', value: '2' },
            ],
          },
        },
      },
      'header names must be unique (case does not matter)',
    ],
    [
      'a header with both value and valueFrom',
      {
        ...at('192.0.2.10'),
        healthCheck: {
          http: {
            port: 2379,
            headers: [
              { name: 'X-A', value: '1', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
            ],
          },
        },
      },
      'set exactly one of value and valueFrom',
    ],
    [
      'caBundle on plain HTTP',
      {
        ...at('192.0.2.10'),
        healthCheck: { http: { port: 2379, caBundle: { secretName: 'ca', key: 'ca.crt' } } },
      },
      'caBundle and insecureSkipVerify apply to TLS only: set scheme: HTTPS',
    ],
    [
      'caBundle with insecureSkipVerify',
      {
        ...at('192.0.2.10'),
        healthCheck: {
          http: {
            port: 2379,
            scheme: 'HTTPS',
            insecureSkipVerify: true,
            caBundle: { secretName: 'ca', key: 'ca.crt' },
          },
        },
      },
      'insecureSkipVerify: true turns off the verification that caBundle asks for',
    ],
    [
      'insecureSkipVerify: false without a caBundle',
      {
        ...at('192.0.2.10'),
        healthCheck: { tls: { port: 2379, insecureSkipVerify: false } },
      },
      'insecureSkipVerify: false needs a caBundle to verify against',
    ],
    [
      'a caBundle from both a Secret and a ConfigMap',
      {
        ...at('192.0.2.10'),
        healthCheck: {
          tls: { port: 2379, caBundle: { secretName: 'a', configMapName: 'b', key: 'ca.crt' } },
        },
      },
      'set exactly one of secretName and configMapName',
    ],
    [
      'an IP as serverName',
      { ...at('192.0.2.10'), healthCheck: { tls: { port: 2379, serverName: '192.0.2.10' } } },
      'must be a DNS name, not an IP address: leave serverName out to use the address',
    ],
    [
      'a gRPC caBundle without tls',
      {
        ...at('192.0.2.10'),
        healthCheck: { grpc: { port: 2379, caBundle: { configMapName: 'ca', key: 'ca.crt' } } },
      },
      'caBundle and insecureSkipVerify apply to TLS only: set tls: true',
    ],
    [
      'a gRPC service name with a space',
      { ...at('192.0.2.10'), healthCheck: { grpc: { port: 2379, service: 'a b' } } },
      'must be a gRPC service name',
    ],
    [
      'a zero healthy threshold',
      { ...at('192.0.2.10'), healthCheck: { tcp: { port: 2379 }, healthyThreshold: 0 } },
      'should be greater than or equal to 1',
    ],
    [
      'an unhealthy threshold over 10',
      { ...at('192.0.2.10'), healthCheck: { tcp: { port: 2379 }, unhealthyThreshold: 11 } },
      'should be less than or equal to 10',
    ],
    [
      'a timeout longer than the interval',
      {
        ...at('192.0.2.10'),
        healthCheck: { tcp: { port: 2379 }, intervalSeconds: 2, timeoutSeconds: 5 },
      },
      'timeoutSeconds must not exceed intervalSeconds',
    ],
    [
      'a bad status range',
      { ...at('192.0.2.10'), healthCheck: { http: { port: 2379, expectedStatuses: ['2xx'] } } },
      'spec.healthCheck.http.expectedStatuses[0]',
    ],
    [
      'a relative HTTP path',
      { ...at('192.0.2.10'), healthCheck: { http: { port: 2379, path: 'health' } } },
      'spec.healthCheck.http.path',
    ],
    [
      'a bad clusterIP',
      { ...at('192.0.2.10'), service: { clusterIP: '10.96.0.5' } },
      'Unsupported value: "10.96.0.5"',
    ],
    // Strings that reach a socket or a header: the prober could not send them (Node throws).
    ...(
      [
        ['a space', '/a b'],
        ['a newline (header injection)', '/a\r\nHost: evil'],
        ['a control character', '/a\u0001'],
        ['a non-ASCII character', '/caf\u00e9'],
        ['a broken percent-escape', '/a%zz'],
        ['a fragment', '/a#b'],
      ] as const
    ).map(([what, path]): [string, Record<string, unknown>, string] => [
      `an HTTP path with ${what}`,
      { ...at('192.0.2.10'), healthCheck: { http: { port: 2379, path } } },
      'no spaces, control or non-ASCII characters',
    ]),
    [
      'a status range from high to low',
      {
        ...at('192.0.2.10'),
        healthCheck: { http: { port: 2379, expectedStatuses: ['399-200'] } },
      },
      'a status range must go from low to high',
    ],
    [
      'a Service name the API server would refuse (starts with a digit)',
      { ...at('192.0.2.10'), service: { name: '1db' } },
      'must be a Service name',
    ],
    [
      'an appProtocol that is not a qualified name',
      {
        ports: [{ name: 'web', port: 80, appProtocol: 'http 1.1' }],
        addresses: [{ ip: '192.0.2.10' }],
      },
      'must be a qualified name',
    ],
    [
      'an In selector without values',
      { ...base, podSelector: { matchExpressions: [{ key: 'app', operator: 'In' }] } },
      'In and NotIn need values',
    ],
    [
      'an IP address as a DNS name',
      { ...base, dnsNames: [{ name: '192.0.2.10' }] },
      'is an IP address: list it under spec.addresses instead',
    ],
    [
      'a DNS name in capitals',
      { ...base, dnsNames: [{ name: 'DB.example.com' }] },
      'must be a DNS name in lowercase',
    ],
    [
      'a DNS name with a trailing dot',
      { ...base, dnsNames: [{ name: 'db.example.com.' }] },
      'no trailing dot',
    ],
    [
      'a DNS label longer than 63 characters',
      { ...base, dnsNames: [{ name: `${'a'.repeat(64)}.example.com` }] },
      'at most 63 characters each',
    ],
    [
      'a duplicate DNS name',
      { ...base, dnsNames: [{ name: 'db.example.com' }, { name: 'db.example.com' }] },
      'Duplicate value',
    ],
    [
      'more DNS names than allowed',
      {
        ...base,
        dnsNames: Array.from({ length: 33 }, (_, i) => ({ name: `n${String(i)}.example.com` })),
      },
      'must have at most 32 items',
    ],
  ])('refuses %s', async (_what, spec, message) => {
    const err = await apiError(create(spec));
    expect(err.code).toBe(422);
    expect(err.message).toContain(message);
  });

  it.each(['224.0.0.5', 'ff02::1', '239.1.2.3', 'ff0e::1'])(
    'gives one reason for multicast %s: multicast, not link-local too',
    async (ip) => {
      const err = await apiError(create(at(ip)));
      expect(err.code).toBe(422);
      expect(err.message).toContain('must not be a multicast address');
      expect(err.message).not.toContain('link-local');
    },
  );

  it('refuses an object whose name cannot be its Service name unless spec.service.name is set', async () => {
    const err = await apiError(create(at('192.0.2.10'), '1-db.example'));
    expect(err.code).toBe(422);
    expect(err.message).toContain('metadata.name is not a valid Service name');
    await create({ ...at('192.0.2.10'), service: { name: 'db' } }, '2-db.example');
  });

  it('accepts request paths with queries and percent-escapes', async () => {
    await create({
      ...at('192.0.2.10'),
      healthCheck: { http: { port: 2379, path: "/health/a%20b?verbose=1&x=y:z@w,(ok)!~'*;$" } },
    });
  });

  it('accepts the etcd seed example and stores the defaults', async () => {
    const stored = (await create(
      {
        service: { name: 'etcd-k8s' },
        ports: [{ name: 'port', port: 2379 }],
        addresses: [
          { ip: '192.0.2.10', nodeName: 'etc-master1' },
          { ip: '192.0.2.11', nodeName: 'etc-master2' },
          { ip: '192.0.2.12', nodeName: 'etc-master3' },
        ],
        healthCheck: { tcp: { port: 'port' } },
      },
      'etcd-k8s',
    )) as { spec: Record<string, unknown> };
    expect(stored.spec).toMatchObject({
      service: { name: 'etcd-k8s', create: true, clusterIP: '' },
      ports: [{ name: 'port', port: 2379, protocol: 'TCP' }],
      healthCheck: {
        tcp: { port: 'port' },
        intervalSeconds: 10,
        timeoutSeconds: 2,
        healthyThreshold: 2,
        unhealthyThreshold: 3,
        failOpen: true,
      },
    });
  });

  it('accepts IPv6, HTTP checks by port number, and pod selectors', async () => {
    await expect(
      create({
        ports: [{ name: 'http', port: 80 }],
        addresses: [{ ip: '2001:db8::10' }, { ip: '198.51.100.7', hostname: 'legacy-1' }],
        podSelector: { matchLabels: { app: 'zl' } },
        healthCheck: {
          http: {
            port: 80,
            path: '/healthz',
            scheme: 'HTTPS',
            expectedStatuses: ['200', '300-399'],
          },
        },
      }),
    ).resolves.toBeDefined();
  });

  it('accepts every probe kind with its TLS options, headers and a Secret reference, and stores the defaults', async () => {
    const checks = [
      {
        http: {
          port: 443,
          scheme: 'HTTPS',
          method: 'HEAD',
          serverName: 'db.example.com',
          caBundle: { configMapName: 'db-ca', key: 'ca.crt' },
          headers: [
            { name: 'Authorization', valueFrom: { secretKeyRef: { name: 'db', key: 'token' } } },
            { name: 'X-Probe', value: 'outrigger' },
          ],
        },
      },
      { tls: { port: 443, insecureSkipVerify: true } },
      {
        tls: {
          port: 443,
          serverName: 'db.example.com',
          caBundle: { secretName: 'ca', key: 'ca.crt' },
        },
      },
      { grpc: { port: 50051, service: 'grpc.health.v1.Health' } },
      { grpc: { port: 50051, tls: true, caBundle: { secretName: 'ca', key: 'ca.crt' } } },
    ];
    for (const healthCheck of checks) {
      const name = `kinds-${++seq}`;
      await create(
        { ports: [{ name: 'p', port: 443 }], addresses: [{ ip: '192.0.2.10' }], healthCheck },
        name,
      );
      const stored = (await objects.getNamespacedCustomObject({
        group,
        version,
        namespace: ns,
        plural,
        name,
      })) as { spec: { healthCheck: Record<string, Record<string, unknown>> } };
      const kind = Object.keys(healthCheck)[0] ?? '';
      expect(stored.spec.healthCheck[kind]).toMatchObject(
        (healthCheck as Record<string, Record<string, unknown>>)[kind] ?? {},
      );
      if (kind === 'grpc') expect(stored.spec.healthCheck.grpc).toHaveProperty('tls');
    }
  });

  it.each(examples)('accepts examples/%s (server-side dry run)', (file) => {
    const kubectl = (...args: string[]) =>
      spawnSync(cluster.kubectl, [`--kubeconfig=${cluster.kubeconfigPath}`, ...args], {
        encoding: 'utf8',
      });
    // Dry-run objects are not stored, so a namespace the file creates must exist for real.
    kubectl('create', 'namespace', 'wetwin');
    const r = kubectl('apply', '--server-side', '--dry-run=server', '-f', join(examplesDir, file));
    expect(r.stderr.replace(/Warning: v1 Endpoints is deprecated[^\n]*\n/g, '')).toBe('');
    expect(r.status).toBe(0);
  });

  it('shows Ready, Addresses, Service and Age in kubectl get xb, and Reason with -o wide', () => {
    const get = (...extra: string[]) =>
      spawnSync(
        cluster.kubectl,
        [`--kubeconfig=${cluster.kubeconfigPath}`, '-n', ns, 'get', 'xb', ...extra],
        { encoding: 'utf8' },
      );
    const r = get();
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^NAME\s+READY\s+ADDRESSES\s+SERVICE\s+AGE$/);
    expect(r.stdout).toContain('etcd-k8s');
    const wide = get('-o', 'wide');
    expect(wide.stdout.split('\n')[0]).toMatch(
      /^NAME\s+READY\s+ADDRESSES\s+SERVICE\s+REASON\s+AGE$/,
    );
  });
});
