import { describe, expect, it } from '@jest/globals';
import { externalBackendSpec } from '../../api/externalbackend.ts';
import { readCaBundle } from './cabundle.ts';
import { probeFor, probeKindNames, probeRefsOf } from './index.ts';
import { makeCa } from './kinds.test-helpers.ts';

const ports = { pg: 5432, web: 8080 } as Record<string, number>;
const resolve = (p: number | string): number | undefined => (typeof p === 'number' ? p : ports[p]);

describe('the probe kinds', () => {
  it('each add one field under spec.healthCheck, and the schema wants exactly one of them', () => {
    const base = { ports: [{ name: 'pg', port: 5432 }], addresses: [{ ip: '192.0.2.1' }] };
    for (const k of probeKindNames) {
      const parsed = externalBackendSpec.safeParse({
        ...base,
        healthCheck: { [k]: { port: 'pg' } },
      });
      expect({ k, ok: parsed.success }).toEqual({ k, ok: true });
    }
    const healthCheck = externalBackendSpec.shape.healthCheck.unwrap();
    for (const k of probeKindNames) expect(healthCheck.shape).toHaveProperty(k);
  });

  it('build the probe of the kind that is set, with its named port resolved', () => {
    expect(probeFor({ tcp: { port: 'pg' } }, '192.0.2.1', resolve)).toEqual({
      kind: 'tcp',
      ip: '192.0.2.1',
      port: 5432,
    });
    expect(
      probeFor(
        {
          http: {
            port: 'web',
            path: '/health',
            scheme: 'HTTP',
            method: 'GET',
            expectedStatuses: ['200'],
          },
        },
        '2001:db8::1',
        resolve,
      ),
    ).toEqual({
      kind: 'http',
      ip: '2001:db8::1',
      port: 8080,
      path: '/health',
      scheme: 'HTTP',
      method: 'GET',
      expectedStatuses: ['200'],
      headers: [],
    });
  });

  it('build nothing when no kind is set or the named port does not exist', () => {
    expect(probeFor({}, '192.0.2.1', resolve)).toBeUndefined();
    expect(probeFor({ tcp: { port: 'nope' } }, '192.0.2.1', resolve)).toBeUndefined();
  });

  it('read what a check names through refs, and refuse the probe when it is missing', async () => {
    const check = {
      tls: { port: 'web', caBundle: { configMapName: 'ca', key: 'ca.crt' } },
    } as const;
    const pem = (await makeCa()).certPem;
    expect(
      probeFor(check, '192.0.2.1', resolve, {
        read: (r) =>
          r.kind === 'ConfigMap' && r.name === 'ca' && r.key === 'ca.crt' ? pem : undefined,
      }),
    ).toEqual({ kind: 'tls', ip: '192.0.2.1', port: 8080, tls: { ca: readCaBundle(pem) } });
    // Without refs (the default reads nothing) the probe fails saying why; it never runs unverified.
    expect(probeFor(check, '192.0.2.1', resolve)).toMatchObject({
      kind: 'tls',
      refused:
        'caBundle: ConfigMap ca has no key ca.crt, or does not exist or lacks the label outrigger.dev/health-check: "true"',
    });
  });
});

describe('probeRefsOf', () => {
  it('lists the keys a check names, by kind, and none for checks that name none', () => {
    expect(probeRefsOf({ tcp: { port: 80 } })).toEqual([]);
    expect(
      probeRefsOf({
        http: {
          port: 443,
          path: '/',
          scheme: 'HTTPS',
          method: 'GET',
          expectedStatuses: ['200'],
          headers: [
            { name: 'X-Plain', value: 'v' },
            { name: 'X-Token', valueFrom: { secretKeyRef: { name: 'api', key: 'token' } } },
          ],
          caBundle: { configMapName: 'ca', key: 'ca.crt' },
        },
      }),
    ).toEqual([
      { kind: 'Secret', name: 'api', key: 'token' },
      { kind: 'ConfigMap', name: 'ca', key: 'ca.crt' },
    ]);
    // caBundle only counts where TLS is spoken (admission refuses it elsewhere anyway).
    expect(
      probeRefsOf({
        grpc: { port: 50051, tls: false, caBundle: { secretName: 'ca', key: 'ca.crt' } },
      }),
    ).toEqual([]);
    expect(
      probeRefsOf({ tls: { port: 443, caBundle: { secretName: 'ca', key: 'ca.crt' } } }),
    ).toEqual([{ kind: 'Secret', name: 'ca', key: 'ca.crt' }]);
  });
});
