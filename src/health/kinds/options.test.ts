// What the schema of the TLS options and request headers refuses, with the messages a person
// sees. zod checks the same rules at run time that the CRD's CEL rules check at admission; the
// test of the CRD itself (src/api/crd.test.ts) keeps the two in step with the files.
import { describe, expect, it } from '@jest/globals';
import { buildCrd } from '../../api/crd.ts';
import { externalBackendSpec } from '../../api/externalbackend.ts';

const base = { ports: [{ name: 'web', port: 443 }], addresses: [{ ip: '192.0.2.10' }] };

function issues(healthCheck: Record<string, unknown>): string[] {
  const r = externalBackendSpec.safeParse({ ...base, healthCheck });
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

const header = (h: Record<string, unknown>) => ({ http: { port: 'web', headers: [h] } });

describe('request headers', () => {
  it('accept tokens as names, printable values, and Secret references', () => {
    expect(
      issues({
        http: {
          port: 'web',
          method: 'HEAD',
          serverName: 'www.example.test',
          headers: [
            { name: 'Authorization', valueFrom: { secretKeyRef: { name: 'api', key: 'token' } } },
            { name: "X-Odd!#$%&'*+-.^_`|~1", value: 'a value\twith tab and "quotes"' },
            { name: 'X-Empty', value: '' },
          ],
        },
      }),
    ).toEqual([]);
  });

  it.each([
    ['a space', 'X Token'],
    ['a colon', 'X-Token:'],
    ['a pseudo-header', ':authority'],
    ['non-ASCII', 'X-Tökén'],
    ['nothing', ''],
  ])('refuse a name with %s', (_what, name) => {
    expect(issues(header({ name, value: 'v' })).join('\n')).toMatch(
      /headers\.0\.name: (must be a header name \(an RFC 7230 token|Too small)/,
    );
  });

  it.each([
    ['CR LF', 'a\r\nX-Injected: 1'],
    ['LF', 'a\nb'],
    ['NUL', 'a\u0000b'],
    ['another control character', 'a\u0007b'],
    ['non-ASCII', 'caf\u00e9'],
  ])('refuse a value with %s', (_what, value) => {
    expect(issues(header({ name: 'X-Token', value }))).toEqual([
      'healthCheck.http.headers.0.value: must be printable ASCII: no CR, LF, NUL or other control characters',
    ]);
  });

  it('refuse the Host header, pointing at serverName', () => {
    for (const name of ['Host', 'host', 'HOST'])
      expect(issues(header({ name, value: 'x.example' }))).toEqual([
        'healthCheck.http.headers.0.name: the Host header comes from serverName: set serverName instead',
      ]);
  });

  it.each([
    'Connection',
    'transfer-encoding',
    'Content-Length',
    'Keep-Alive',
    'TE',
    'Upgrade',
    'Expect',
  ])('refuse the hop-by-hop or framing header %s', (name) => {
    expect(issues(header({ name, value: 'x' }))).toEqual([
      expect.stringMatching(
        /^healthCheck\.http\.headers\.0\.name: hop-by-hop and framing headers .* are set by the prober and cannot be given$/,
      ),
    ]);
  });

  it('want exactly one of value and valueFrom', () => {
    const ref = { secretKeyRef: { name: 'api', key: 'token' } };
    const msg = 'healthCheck.http.headers.0: set exactly one of value and valueFrom';
    expect(issues(header({ name: 'X-Token', value: 'v', valueFrom: ref }))).toEqual([msg]);
    expect(issues(header({ name: 'X-Token' }))).toEqual([msg]);
  });

  it('refuse a Secret reference that names no valid Secret key', () => {
    expect(
      issues(header({ name: 'X-Token', valueFrom: { secretKeyRef: { name: 'API', key: 'a/b' } } })),
    ).toEqual([
      'healthCheck.http.headers.0.valueFrom.secretKeyRef.name: must be the name of a Secret or ConfigMap: lowercase letters, digits, "-" and "."',
      'healthCheck.http.headers.0.valueFrom.secretKeyRef.key: must be a key of a Secret or ConfigMap: letters, digits, "-", "_" and "."',
    ]);
  });

  it('refuse the same name twice (in any case), and more than 16 headers', () => {
    expect(
      issues({
        http: {
          port: 'web',
          headers: [
            { name: 'X-Token', value: 'a' },
            { name: 'x-token', value: 'b' },
          ],
        },
      }),
    ).toEqual(['healthCheck.http.headers: header names must be unique (case does not matter)']);
    const many = Array.from({ length: 17 }, (_, i) => ({ name: `X-H${i}`, value: 'v' }));
    expect(issues({ http: { port: 'web', headers: many } })).toHaveLength(1);
  });

  it('refuse an oversized value', () => {
    expect(issues(header({ name: 'X-Big', value: 'x'.repeat(4097) }))).toHaveLength(1);
  });
});

describe('TLS options', () => {
  const ca = { secretName: 'web-ca', key: 'ca.crt' };

  it('are accepted where TLS is spoken', () => {
    expect(issues({ http: { port: 'web', scheme: 'HTTPS', caBundle: ca } })).toEqual([]);
    expect(issues({ http: { port: 'web', scheme: 'HTTPS', insecureSkipVerify: true } })).toEqual(
      [],
    );
    expect(
      issues({
        tls: {
          port: 'web',
          serverName: 'db.example.test',
          caBundle: { configMapName: 'ca', key: 'ca.crt' },
        },
      }),
    ).toEqual([]);
    expect(
      issues({ grpc: { port: 'web', tls: true, caBundle: ca, service: 'shop.Cart' } }),
    ).toEqual([]);
    expect(issues({ grpc: { port: 'web', serverName: 'api.example.test' } })).toEqual([]);
  });

  it('want exactly one of secretName and configMapName in caBundle', () => {
    const msg = 'healthCheck.tls.caBundle: set exactly one of secretName and configMapName';
    expect(
      issues({ tls: { port: 'web', caBundle: { secretName: 'a', configMapName: 'b', key: 'k' } } }),
    ).toEqual([msg]);
    expect(issues({ tls: { port: 'web', caBundle: { key: 'k' } } })).toEqual([msg]);
  });

  it('refuse verification settings that contradict each other', () => {
    expect(issues({ tls: { port: 'web', caBundle: ca, insecureSkipVerify: true } })).toEqual([
      'healthCheck.tls: insecureSkipVerify: true turns off the verification that caBundle asks for: set one of them',
    ]);
    expect(issues({ tls: { port: 'web', insecureSkipVerify: false } })).toEqual([
      'healthCheck.tls: insecureSkipVerify: false needs a caBundle to verify against (without one the certificate is not verified): set caBundle, or leave insecureSkipVerify out',
    ]);
  });

  it('refuse verification settings where no TLS is spoken', () => {
    expect(issues({ http: { port: 'web', caBundle: ca } })).toEqual([
      'healthCheck.http: caBundle and insecureSkipVerify apply to TLS only: set scheme: HTTPS',
    ]);
    expect(issues({ grpc: { port: 'web', insecureSkipVerify: true } })).toEqual([
      'healthCheck.grpc: caBundle and insecureSkipVerify apply to TLS only: set tls: true',
    ]);
  });

  it.each([
    ['an IP', '192.0.2.1'],
    ['an IPv6 address', '2001:db8::1'],
    ['upper case', 'DB.example.test'],
    ['a port', 'db.example.test:443'],
    ['a wildcard', '*.example.test'],
  ])('refuse a serverName that is %s', (_what, serverName) => {
    expect(issues({ tls: { port: 'web', serverName } })).not.toEqual([]);
  });

  it('refuse a gRPC service name with characters outside the usual set', () => {
    expect(issues({ grpc: { port: 'web', service: 'shop Cart' } })).toHaveLength(1);
    expect(issues({ grpc: { port: 'web', service: 'x'.repeat(257) } })).toHaveLength(1);
  });
});

describe('the CRD', () => {
  it('carries each rule as CEL, so that admission refuses what zod refuses', () => {
    const text = JSON.stringify(buildCrd());
    for (const rule of [
      'has(self.value) != has(self.valueFrom)',
      'has(self.secretName) != has(self.configMapName)',
      "self.lowerAscii() != 'host'",
      '!isIP(self)',
      "(has(self.scheme) && self.scheme == 'HTTPS') || (!has(self.caBundle) && !has(self.insecureSkipVerify))",
      '(has(self.tls) && self.tls) || (!has(self.caBundle) && !has(self.insecureSkipVerify))',
      'self.all(h, self.exists_one(o, o.name.lowerAscii() == h.name.lowerAscii()))',
    ])
      expect(text).toContain(JSON.stringify(rule).slice(1, -1));
  });
});
