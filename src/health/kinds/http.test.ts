// The http kind's methods, headers, server names and HTTPS verification, against real servers on
// 127.0.0.1 and ::1 (plain HTTP probing is covered in ../probe.test.ts).
import {
  createServer as createHttpServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DenyList } from '../../net/denylist.ts';
import { probe, type ProbeResult } from '../probe.ts';
import { http, maxInterimResponses } from './http.ts';
import { noRefs, type ProbeRefs } from './kind.ts';
import {
  establishedTo,
  makeCa,
  makeLeaf,
  refsOf,
  until,
  type Ca,
  type Leaf,
} from './kinds.test-helpers.ts';

const open = new DenyList([]);
const servers: Server[] = [];
const token = 'tok-3f9a1c-secret-value';
const inlineValue = 'inline-9d2e-value';
let ca: Ca;
let otherCa: Ca;
let leaf: Leaf;
let expired: Leaf;
let httpPort = 0;
let httpPort6 = 0;
let httpsPort = 0;
let expiredPort = 0;
let stallPort = 0;
let closedPort = 0;
let interimPort = 0;

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly sni?: string | false | null;
}
const seen: Seen[] = [];

async function listen(server: Server, host = '127.0.0.1'): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, host, r));
  return (server.address() as AddressInfo).port;
}

function handler(req: IncomingMessage, res: ServerResponse): void {
  const sni = (req.socket as Partial<TLSSocket>).servername ?? undefined;
  seen.push({
    method: req.method ?? '',
    url: req.url ?? '',
    headers: req.headers,
    ...(sni !== undefined ? { sni } : {}),
  });
  if (req.url === '/down')
    // A server that quotes what it was sent: the probe's message must not.
    res
      .writeHead(503, `refused ${String(req.headers['x-token'])}`)
      .end(String(req.headers['x-token']));
  else if (req.url === '/slow') setTimeout(() => res.writeHead(200).end(), 2000).unref();
  else res.writeHead(200, { 'Content-Type': 'text/plain' }).end('fine');
}

beforeAll(async () => {
  ca = await makeCa();
  otherCa = await makeCa('someone-else');
  leaf = await makeLeaf(ca, { dns: ['www.example.test'], ips: ['127.0.0.1'] });
  expired = await makeLeaf(ca, {
    dns: ['www.example.test'],
    notBefore: new Date(Date.now() - 10 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
  });
  httpPort = await listen(createHttpServer(handler));
  httpPort6 = await listen(createHttpServer(handler), '::1');
  httpsPort = await listen(createHttpsServer({ key: leaf.keyPem, cert: leaf.certPem }, handler));
  expiredPort = await listen(
    createHttpsServer({ key: expired.keyPem, cert: expired.certPem }, handler),
  );
  // Accepts and never answers (but reads, so that it sees the prober hang up).
  stallPort = await listen(
    createTcpServer((socket) => {
      socket.on('error', () => undefined);
      socket.resume();
    }),
  );
  // Sends 100 Continue without end and never a final response.
  interimPort = await listen(
    createTcpServer((socket) => {
      socket.on('error', () => undefined);
      socket.resume();
      const t = setInterval(() => socket.write('HTTP/1.1 100 Continue\r\n\r\n'), 1);
      socket.once('close', () => {
        clearInterval(t);
      });
    }),
  );
  const tmp = createTcpServer();
  closedPort = await listen(tmp);
  await new Promise<void>((r) =>
    tmp.close(() => {
      r();
    }),
  );
});

afterAll(() => {
  for (const s of servers) {
    (s as Partial<HttpServer>).closeAllConnections?.();
    s.close();
  }
});

const refs = (): ProbeRefs =>
  refsOf({
    'Secret/web-ca/ca.crt': ca.certPem,
    'ConfigMap/other-ca/ca.crt': otherCa.certPem,
    // Made from a file, as Secrets often are: the trailing line break is no part of the value.
    'Secret/api/token': `${token}\n`,
    'Secret/api/bad': 'two\r\nlines',
  });

function spec(check: Record<string, unknown>, port: number, ip = '127.0.0.1', r = refs()) {
  return http.spec(http.check.parse({ port, ...check }), ip, port, r);
}

const verified = { scheme: 'HTTPS', caBundle: { secretName: 'web-ca', key: 'ca.crt' } };
const tokenHeader = { name: 'X-Token', valueFrom: { secretKeyRef: { name: 'api', key: 'token' } } };

describe('the http kind', () => {
  it('sends GET by default and HEAD when asked', async () => {
    seen.length = 0;
    expect(await probe(spec({}, httpPort), 1000, open)).toMatchObject({ ok: true });
    expect(await probe(spec({ method: 'HEAD' }, httpPort), 1000, open)).toMatchObject({
      ok: true,
    });
    expect(seen.map((s) => s.method)).toEqual(['GET', 'HEAD']);
  });

  it('sends the headers of the check, from the spec and from a Secret', async () => {
    seen.length = 0;
    const r = await probe(
      spec(
        {
          headers: [
            { name: 'Authorization', value: `Bearer ${inlineValue}` },
            tokenHeader,
            { name: 'user-agent', value: 'custom-agent' },
          ],
        },
        httpPort,
      ),
      1000,
      open,
    );
    expect(r.ok).toBe(true);
    expect(seen[0]?.headers).toMatchObject({
      authorization: `Bearer ${inlineValue}`,
      'x-token': token,
      'user-agent': 'custom-agent',
      host: `127.0.0.1:${httpPort}`,
    });
  });

  it('sends serverName as the Host header, and the IP in brackets for IPv6 without one', async () => {
    seen.length = 0;
    await probe(spec({ serverName: 'www.example.test' }, httpPort), 1000, open);
    await probe(spec({}, httpPort6, '::1'), 1000, open);
    expect(seen.map((s) => s.headers.host)).toEqual([
      `www.example.test:${httpPort}`,
      `[::1]:${httpPort6}`,
    ]);
  });

  it('verifies HTTPS against caBundle: chain, serverName as SNI and Host, and reports notAfter', async () => {
    seen.length = 0;
    const r = await probe(
      spec({ ...verified, serverName: 'www.example.test' }, httpsPort),
      2000,
      open,
    );
    expect(r).toMatchObject({ ok: true, certificateNotAfter: leaf.notAfter });
    expect(seen).toMatchObject([
      {
        method: 'GET',
        sni: 'www.example.test',
        headers: { host: `www.example.test:${httpsPort}` },
      },
    ]);
    // No serverName: the certificate must name the IP (it does).
    expect(await probe(spec(verified, httpsPort), 2000, open)).toMatchObject({ ok: true });
  });

  it('sends nothing to a server whose certificate fails verification', async () => {
    seen.length = 0;
    const wrongName = await probe(
      spec({ ...verified, serverName: 'other.example.test', headers: [tokenHeader] }, httpsPort),
      2000,
      open,
    );
    expect(wrongName).toMatchObject({
      ok: false,
      message: 'TLS: the certificate does not name other.example.test',
      certificateNotAfter: leaf.notAfter,
    });
    const otherCaResult = await probe(
      spec(
        {
          scheme: 'HTTPS',
          caBundle: { configMapName: 'other-ca', key: 'ca.crt' },
          headers: [tokenHeader],
        },
        httpsPort,
      ),
      2000,
      open,
    );
    expect(otherCaResult.ok).toBe(false);
    expect(otherCaResult.message).toMatch(/^TLS: the certificate is not signed by caBundle/);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([]);
  });

  it('does not verify HTTPS without caBundle or with insecureSkipVerify, and still reports notAfter', async () => {
    for (const check of [
      { scheme: 'HTTPS' },
      { scheme: 'HTTPS', insecureSkipVerify: true, serverName: 'nobody.example.test' },
    ])
      expect(await probe(spec(check, httpsPort), 2000, open)).toMatchObject({
        ok: true,
        certificateNotAfter: leaf.notAfter,
      });
  });

  it('fails an expired certificate when verifying, and reports its notAfter either way', async () => {
    const failed = await probe(
      spec({ ...verified, serverName: 'www.example.test' }, expiredPort),
      2000,
      open,
    );
    expect(failed).toMatchObject({ ok: false, certificateNotAfter: expired.notAfter });
    expect(failed.message).toMatch(/^TLS: the certificate expired at /);
    expect(await probe(spec({ scheme: 'HTTPS' }, expiredPort), 2000, open)).toMatchObject({
      ok: true,
      certificateNotAfter: expired.notAfter,
    });
  });

  it('gives up by timeoutMs: on a stalled handshake, and on a response that never comes', async () => {
    for (const [check, port] of [
      [{ scheme: 'HTTPS' }, stallPort],
      [{ scheme: 'HTTP' }, stallPort],
      [{ scheme: 'HTTPS', path: '/slow' }, httpsPort],
    ] as const) {
      const r = await probe(spec(check, port), 300, open);
      expect(r).toMatchObject({ ok: false, message: 'no response within 300 ms' });
      expect(r.seconds).toBeLessThan(1);
    }
  });

  it('gives up on a server that sends interim (1xx) responses without end', async () => {
    const r = await probe(spec({}, interimPort), 5000, open);
    expect(r).toMatchObject({
      ok: false,
      message: `more than ${String(maxInterimResponses)} interim (1xx) responses`,
    });
    expect(r.seconds).toBeLessThan(1);
  });

  it('refuses to run, and says why, when a Secret key it names is missing or unusable', async () => {
    seen.length = 0;
    const noKey = spec({ headers: [tokenHeader] }, httpPort, '127.0.0.1', noRefs);
    expect(noKey.refused).toBe(
      'headers[0] (X-Token): Secret api has no key token, or does not exist or lacks the label outrigger.dev/health-check: "true"',
    );
    expect(await probe(noKey, 1000, open)).toMatchObject({
      ok: false,
      message:
        'headers[0] (X-Token): Secret api has no key token, or does not exist or lacks the label outrigger.dev/health-check: "true"',
    });
    const bad = spec(
      { headers: [{ name: 'X-Bad', valueFrom: { secretKeyRef: { name: 'api', key: 'bad' } } }] },
      httpPort,
    );
    expect(bad.refused).toMatch(
      /^headers\[0\] \(X-Bad\): Secret api key bad is not a valid header value/,
    );
    expect(bad.refused).not.toContain('two');
    const noCa = spec(verified, httpsPort, '127.0.0.1', noRefs);
    expect(noCa.refused).toBe(
      'caBundle: Secret web-ca has no key ca.crt, or does not exist or lacks the label outrigger.dev/health-check: "true"',
    );
    expect(await probe(noCa, 1000, open)).toMatchObject({ ok: false });
    expect(seen).toEqual([]);
  });
  it('leaves no connection behind, whatever the outcome', async () => {
    const ports = [httpPort, httpsPort, expiredPort, stallPort];
    await until('earlier connections to close', () => establishedTo(ports) === 0, 8000);
    const cases = [
      spec({}, httpPort),
      spec({ path: '/slow' }, httpPort),
      spec({ scheme: 'HTTPS' }, httpsPort),
      spec({ ...verified, serverName: 'other.example.test' }, httpsPort),
      spec({ ...verified }, expiredPort),
      spec({ scheme: 'HTTPS' }, stallPort),
      spec({}, stallPort),
    ];
    for (let round = 0; round < 5; round++)
      await Promise.all(cases.map((s) => probe(s, 200, open)));
    await until('connections to close', () => establishedTo(ports) === 0, 8000);
  }, 30_000);
});

describe('header values', () => {
  const withSecrets = (check: Record<string, unknown>, port: number) =>
    spec(
      {
        ...check,
        headers: [tokenHeader, { name: 'X-Inline', value: inlineValue }],
      },
      port,
    );

  it('never appear in a failure message, whatever fails', async () => {
    const results: ProbeResult[] = [];
    for (const [check, port, timeout] of [
      [{ path: '/down' }, httpPort, 1000],
      [{ path: '/slow' }, httpPort, 200],
      [{}, closedPort, 1000],
      [{}, stallPort, 200],
      [{ ...verified, serverName: 'other.example.test' }, httpsPort, 1000],
      [{ scheme: 'HTTPS' }, httpPort, 1000],
    ] as const)
      results.push(await probe(withSecrets(check, port), timeout, open));
    // Node's client throws on a path it cannot send; that message is judged too.
    results.push(await probe({ ...withSecrets({}, httpPort), path: '/a b' }, 1000, open));
    expect(results.map((r) => r.ok)).toEqual([false, false, false, false, false, false, false]);
    for (const r of results) {
      expect(r.message).not.toBe('');
      expect(r.message).not.toContain(token);
      expect(r.message).not.toContain(inlineValue);
    }
    expect(results[0]?.message).toBe('HTTP 503');
  });

  it('never appear when a probe is printed, logged as JSON or compared by the scheduler', () => {
    const s = withSecrets({}, httpPort);
    for (const text of [
      JSON.stringify(s),
      inspect(s, { depth: 10 }),
      String(s.headers[0]?.value),
    ]) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(inlineValue);
    }
    // A changed value still changes the definition the scheduler compares.
    const other = http.spec(
      http.check.parse({ port: httpPort, headers: [tokenHeader] }),
      '127.0.0.1',
      httpPort,
      refsOf({ 'Secret/api/token': 'rotated' }),
    );
    const same = spec({ headers: [tokenHeader] }, httpPort);
    expect(JSON.stringify(other)).not.toBe(JSON.stringify(same));
    expect(JSON.stringify(spec({ headers: [tokenHeader] }, httpPort))).toBe(JSON.stringify(same));
  });

  it('are sent once the server is verified', async () => {
    seen.length = 0;
    const r = await probe(
      spec({ ...verified, serverName: 'www.example.test', headers: [tokenHeader] }, httpsPort),
      2000,
      open,
    );
    expect(r.ok).toBe(true);
    await until('the request', () => seen.length === 1);
    expect(seen[0]?.headers['x-token']).toBe(token);
  });
});
