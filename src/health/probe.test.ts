// Probes against real servers on 127.0.0.1 (allowed for unit tests; e2e tests use network
// namespaces because Endpoints refuse loopback addresses).
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DenyList, defaultDeniedCidrs } from '../net/denylist.ts';
import { maxBodyBytes, statusExpected } from './kinds/http.ts';
import { probe } from './probe.ts';

const open = new DenyList([]);
let http: Server;
let httpPort = 0;
let closedPort = 0;
const seen: string[] = [];

beforeAll(async () => {
  http = createHttpServer((req, res) => {
    seen.push(req.url ?? '');
    if (req.url === '/ok') res.writeHead(200).end('fine');
    else if (req.url === '/redirect') res.writeHead(302, { Location: 'http://192.0.2.1/' }).end();
    else if (req.url === '/slow') setTimeout(() => res.writeHead(200).end(), 2000).unref();
    else if (req.url === '/huge') {
      res.writeHead(200);
      const chunk = Buffer.alloc(16 * 1024, 'x');
      const write = (): void => {
        while (res.write(chunk)) {
          /* fill the socket */
        }
        res.once('drain', write);
      };
      write();
    } else res.writeHead(503).end('down');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  httpPort = (http.address() as AddressInfo).port;
  const tmp = createTcpServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  closedPort = (tmp.address() as AddressInfo).port;
  await new Promise<void>((r) =>
    tmp.close(() => {
      r();
    }),
  );
});

afterAll(() => {
  http.closeAllConnections();
  http.close();
});

const get = (path: string, expectedStatuses = ['200-399']) =>
  ({
    kind: 'http',
    ip: '127.0.0.1',
    port: httpPort,
    path,
    scheme: 'HTTP',
    method: 'GET',
    expectedStatuses,
    headers: [],
  }) as const;

describe('probe', () => {
  it('succeeds on an open TCP port and fails on a closed one', async () => {
    expect((await probe({ kind: 'tcp', ip: '127.0.0.1', port: httpPort }, 1000, open)).ok).toBe(
      true,
    );
    const closed = await probe({ kind: 'tcp', ip: '127.0.0.1', port: closedPort }, 1000, open);
    expect(closed).toMatchObject({ ok: false, message: 'ECONNREFUSED' });
  });

  it('closes a TCP check with a reset, leaving no TIME_WAIT socket behind', async () => {
    // The server's side of the connection ends in ECONNRESET, not in an orderly end (FIN).
    const server = createTcpServer();
    const ended = new Promise<string>((resolve) => {
      server.on('connection', (s) => {
        s.on('error', (e: NodeJS.ErrnoException) => {
          resolve(e.code ?? e.message);
        });
        s.on('end', () => {
          resolve('end');
          s.destroy();
        });
        s.resume();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      expect((await probe({ kind: 'tcp', ip: '127.0.0.1', port }, 1000, open)).ok).toBe(true);
      expect(await ended).toBe('ECONNRESET');
    } finally {
      server.close();
    }
  });

  it('judges HTTP by the expected status ranges', async () => {
    expect((await probe(get('/ok'), 1000, open)).ok).toBe(true);
    expect(await probe(get('/down'), 1000, open)).toMatchObject({ ok: false, message: 'HTTP 503' });
    expect((await probe(get('/down', ['500-599']), 1000, open)).ok).toBe(true);
  });

  it('never follows a redirect (a 302 is judged as a status)', async () => {
    seen.length = 0;
    expect((await probe(get('/redirect'), 1000, open)).ok).toBe(true);
    expect(await probe(get('/redirect', ['200']), 1000, open)).toMatchObject({
      ok: false,
      message: 'HTTP 302',
    });
    expect(seen).toEqual(['/redirect', '/redirect']);
  });

  it('times out', async () => {
    const r = await probe(get('/slow'), 300, open);
    expect(r).toMatchObject({ ok: false, message: 'no response within 300 ms' });
    expect(r.seconds).toBeLessThan(1);
  });

  it(`stops reading a body after ${maxBodyBytes} bytes`, async () => {
    const r = await probe(get('/huge'), 2000, open);
    expect(r.ok).toBe(true);
    expect(r.seconds).toBeLessThan(1.5);
  });

  it('refuses deny-listed addresses without connecting', async () => {
    seen.length = 0;
    const r = await probe(get('/ok'), 1000, new DenyList(defaultDeniedCidrs));
    expect(r).toMatchObject({
      ok: false,
      message: 'address is denied: in 127.0.0.0/8 (--denied-cidrs)',
    });
    expect(seen).toEqual([]);
  });
});

describe('probe never rejects, whatever the spec holds', () => {
  // Each of these makes Node's socket or HTTP client throw synchronously; a throw that escaped
  // used to take the whole process down (a path with a space was enough).
  it.each([
    ['a path with a space', { path: '/a b' }],
    ['a path with a control character', { path: '/a\u0000b' }],
    ['a path with a newline (header injection)', { path: '/a\r\nHost: evil' }],
    ['a path above U+00FF', { path: '/\u2603' }],
    ['port 0', { port: 0 }],
    ['port 70000', { port: 70000 }],
    ['a non-IP host', { ip: 'not an ip' }],
  ])('%s is a failed probe with a message', async (_name, patch) => {
    const spec = { ...get('/ok'), ...patch };
    const r = await probe(spec, 500, open);
    expect(r.ok).toBe(false);
    expect(r.message).not.toBe('');
  });

  it('a TCP probe to a bad port fails the same way', async () => {
    const r = await probe({ kind: 'tcp', ip: '127.0.0.1', port: -1 }, 500, open);
    expect(r).toMatchObject({ ok: false });
    expect(r.message).toMatch(/^cannot send the probe: /);
  });

  it('a deny list that throws is a failed probe too', async () => {
    const broken = {
      denies: (): string | undefined => {
        throw new Error('broken');
      },
    };
    expect(await probe(get('/ok'), 500, broken)).toMatchObject({
      ok: false,
      message: 'cannot send the probe: broken',
    });
  });
});

describe('statusExpected', () => {
  it.each([
    [200, ['200'], true],
    [204, ['200-299'], true],
    [301, ['200-299'], false],
    [404, ['200', '404'], true],
  ] as const)('%d in %j is %s', (status, ranges, ok) => {
    expect(statusExpected(status, ranges)).toBe(ok);
  });
});
