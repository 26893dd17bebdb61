// The tls kind against real TLS servers on 127.0.0.1 and ::1, with certificates made here.
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DenyList } from '../../net/denylist.ts';
import { probe } from '../probe.ts';
import {
  establishedTo,
  makeCa,
  makeLeaf,
  refsOf,
  until,
  type Ca,
  type Leaf,
} from './kinds.test-helpers.ts';
import { noRefs, type ProbeRefs } from './kind.ts';
import { tls } from './tls.ts';

const open = new DenyList([]);
const servers: Server[] = [];
let ca: Ca;
let otherCa: Ca;
let good: Leaf;
let expired: Leaf;
let goodPort = 0;
let goodPort6 = 0;
let expiredPort = 0;
let stallPort = 0;
const sni: (string | false | null)[] = [];

async function listen(server: Server, host: string): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, host, r));
  return (server.address() as AddressInfo).port;
}

function tlsServer(leaf: Leaf): Server {
  const s = createTlsServer({ key: leaf.keyPem, cert: leaf.certPem }, (socket: TLSSocket) => {
    sni.push(socket.servername);
    socket.end();
  });
  s.on('tlsClientError', () => undefined);
  return s;
}

beforeAll(async () => {
  ca = await makeCa();
  otherCa = await makeCa('someone-else');
  good = await makeLeaf(ca, { dns: ['db.example.test'], ips: ['127.0.0.1', '::1'] });
  expired = await makeLeaf(ca, {
    dns: ['db.example.test'],
    ips: ['127.0.0.1'],
    notBefore: new Date(Date.now() - 10 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
  });
  goodPort = await listen(tlsServer(good), '127.0.0.1');
  goodPort6 = await listen(tlsServer(good), '::1');
  expiredPort = await listen(tlsServer(expired), '127.0.0.1');
  // Accepts and never speaks: a handshake that never completes.
  stallPort = await listen(
    createTcpServer((socket) => {
      socket.on('error', () => undefined);
      // Reads, so that it sees the prober hang up.
      socket.resume();
    }),
    '127.0.0.1',
  );
});

afterAll(() => {
  for (const s of servers) s.close();
});

const refs = (): ProbeRefs =>
  refsOf({ 'Secret/db-ca/ca.crt': ca.certPem, 'ConfigMap/other-ca/ca.crt': otherCa.certPem });

function spec(check: Record<string, unknown>, port: number, ip = '127.0.0.1', r = refs()) {
  return tls.spec(tls.check.parse({ port, ...check }), ip, port, r);
}

const caFromSecret = { caBundle: { secretName: 'db-ca', key: 'ca.crt' } };

describe('the tls kind', () => {
  it('passes a trusted chain with the right server name, sends it as SNI, and reports notAfter', async () => {
    sni.length = 0;
    const r = await probe(
      spec({ serverName: 'db.example.test', ...caFromSecret }, goodPort),
      2000,
      open,
    );
    expect(r).toMatchObject({ ok: true, message: '', certificateNotAfter: good.notAfter });
    await until('the server to see it', () => sni.length === 1);
    expect(sni).toEqual(['db.example.test']);
  });

  it('verifies the IP when no serverName is set, and sends no SNI', async () => {
    sni.length = 0;
    expect(await probe(spec(caFromSecret, goodPort), 2000, open)).toMatchObject({ ok: true });
    expect(await probe(spec(caFromSecret, goodPort6, '::1'), 2000, open)).toMatchObject({
      ok: true,
    });
    await until('the server to see them', () => sni.length === 2);
    expect(sni).toEqual([false, false]);
  });

  it('fails a certificate that does not name serverName', async () => {
    const r = await probe(
      spec({ serverName: 'other.example.test', ...caFromSecret }, goodPort),
      2000,
      open,
    );
    expect(r).toMatchObject({
      ok: false,
      message: 'TLS: the certificate does not name other.example.test',
      certificateNotAfter: good.notAfter,
    });
  });

  it('fails a certificate from another CA when a caBundle is given', async () => {
    const r = await probe(
      spec({ caBundle: { configMapName: 'other-ca', key: 'ca.crt' } }, goodPort),
      2000,
      open,
    );
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/^TLS: the certificate is not signed by caBundle \(/);
    expect(r.certificateNotAfter).toBe(good.notAfter);
  });

  it('trusts exactly the certificates the bundle was checked to hold, however they are laid out', async () => {
    // Files joined without a line break, and an indented block: OpenSSL reading the text would
    // skip the CA in both, while the check counts it.
    const body = (pem: string): string => pem.trimEnd();
    for (const bundle of [`${body(otherCa.certPem)}${ca.certPem}`, `  ${ca.certPem}`]) {
      const r = await probe(
        spec(caFromSecret, goodPort, '127.0.0.1', refsOf({ 'Secret/db-ca/ca.crt': bundle })),
        2000,
        open,
      );
      expect(r).toMatchObject({ ok: true, message: '' });
    }
  });

  it('does not verify without caBundle, or with insecureSkipVerify, but still reports notAfter', async () => {
    for (const check of [{}, { insecureSkipVerify: true }, { serverName: 'wrong.example.test' }])
      expect(await probe(spec(check, goodPort), 2000, open)).toMatchObject({
        ok: true,
        certificateNotAfter: good.notAfter,
      });
  });

  it('reports an expired certificate: as a failure when verified, by its notAfter either way', async () => {
    const verified = await probe(spec(caFromSecret, expiredPort), 2000, open);
    expect(verified).toMatchObject({
      ok: false,
      message: `TLS: the certificate expired at ${new Date(expired.notAfter).toISOString()}`,
      certificateNotAfter: expired.notAfter,
    });
    expect(await probe(spec({}, expiredPort), 2000, open)).toMatchObject({
      ok: true,
      certificateNotAfter: expired.notAfter,
    });
  });

  it('gives up by timeoutMs on a server that accepts and never answers', async () => {
    const r = await probe(spec({}, stallPort), 300, open);
    expect(r).toMatchObject({ ok: false, message: 'no TLS handshake within 300 ms' });
    expect(r.seconds).toBeLessThan(1);
    expect(r.certificateNotAfter).toBeUndefined();
  });

  it('fails a connection that is refused, without a certificate', async () => {
    const tmp = createTcpServer();
    const port = await listen(tmp, '127.0.0.1');
    await new Promise<void>((r) =>
      tmp.close(() => {
        r();
      }),
    );
    const r = await probe(spec({}, port), 1000, open);
    expect(r).toMatchObject({ ok: false, message: 'ECONNREFUSED' });
    expect(r.certificateNotAfter).toBeUndefined();
  });

  it('refuses to run, and says why, when the CA bundle cannot be read', async () => {
    sni.length = 0;
    const missing = spec(caFromSecret, goodPort, '127.0.0.1', noRefs);
    expect(missing.refused).toBe(
      'caBundle: Secret db-ca has no key ca.crt, or does not exist or lacks the label outrigger.dev/health-check: "true"',
    );
    expect(await probe(missing, 1000, open)).toMatchObject({
      ok: false,
      message:
        'caBundle: Secret db-ca has no key ca.crt, or does not exist or lacks the label outrigger.dev/health-check: "true"',
    });
    const notPem = spec(
      { caBundle: { configMapName: 'x', key: 'ca.crt' } },
      goodPort,
      '127.0.0.1',
      refsOf({ 'ConfigMap/x/ca.crt': 'hello' }),
    );
    expect(notPem.refused).toBe('caBundle: ConfigMap x key ca.crt holds no PEM certificate');
    // Nothing was sent: a refused probe never reaches the server.
    expect(sni).toEqual([]);
  });

  it('treats refs that throw as reading nothing', () => {
    const throwing: ProbeRefs = {
      read: () => {
        throw new Error('cache not synced');
      },
    };
    expect(spec(caFromSecret, goodPort, '127.0.0.1', throwing).refused).toBe(
      'caBundle: Secret db-ca has no key ca.crt, or does not exist or lacks the label outrigger.dev/health-check: "true"',
    );
  });

  it('leaves no connection behind, whatever the outcome', async () => {
    const ports = [goodPort, goodPort6, expiredPort, stallPort];
    await until('earlier connections to close', () => establishedTo(ports) === 0, 8000);
    const cases = [
      spec({}, goodPort),
      spec({ serverName: 'db.example.test', ...caFromSecret }, goodPort),
      spec({ serverName: 'other.example.test', ...caFromSecret }, goodPort),
      spec(caFromSecret, goodPort6, '::1'),
      spec(caFromSecret, expiredPort),
      spec({}, stallPort),
    ];
    for (let round = 0; round < 5; round++)
      await Promise.all(cases.map((s) => probe(s, 200, open)));
    await until('connections to close', () => establishedTo(ports) === 0, 8000);
  }, 30_000);
});
