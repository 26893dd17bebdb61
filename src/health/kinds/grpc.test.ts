// The grpc kind against real grpc-js servers (and a few that are not gRPC) on 127.0.0.1 and ::1.
import {
  Server as GrpcServer,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
} from '@grpc/grpc-js';
import { HealthImplementation, service as healthService } from 'grpc-health-check';
import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DenyList } from '../../net/denylist.ts';
import { probe } from '../probe.ts';
import { grpc } from './grpc.ts';
import { maxResponseBytes } from './grpcprobe.ts';
import { noRefs } from './kind.ts';
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
const grpcServers: GrpcServer[] = [];
const tcpServers: Server[] = [];
let ca: Ca;
let leaf: Leaf;
let healthPort = 0;
let healthPort6 = 0;
let customPort = 0;
let barePort = 0;
let hugePort = 0;
let tlsPort = 0;
let garbagePort = 0;
let silentPort = 0;
let proxyPort = 0;
let closedPort = 0;
const connections = { garbage: 0, silent: 0, proxy: 0 };
const held: Socket[] = [];
const stalled: sendUnaryData<unknown>[] = [];

function bind(server: GrpcServer, address: string, creds = ServerCredentials.createInsecure()) {
  return new Promise<number>((resolve, reject) => {
    server.bindAsync(address, creds, (err, port) => {
      if (err === null) resolve(port);
      else reject(err);
    });
  });
}

async function tcp(onConnection: (s: Socket) => void): Promise<number> {
  const s = createTcpServer((socket) => {
    held.push(socket);
    socket.on('error', () => undefined);
    // Read, and so see the client's FIN: a paused socket would outlive the probe and count as
    // a leak of the prober's.
    socket.resume();
    onConnection(socket);
  });
  tcpServers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

const statuses = {
  '': 'SERVING',
  'shop.Cart': 'SERVING',
  'shop.Orders': 'NOT_SERVING',
  'shop.Later': 'UNKNOWN',
} as const;

beforeAll(async () => {
  ca = await makeCa();
  leaf = await makeLeaf(ca, { dns: ['api.example.test'], ips: ['127.0.0.1'] });

  const health = new GrpcServer();
  new HealthImplementation(statuses).addToServer(health);
  healthPort = await bind(health, '127.0.0.1:0');
  healthPort6 = await bind(health, '[::1]:0');
  grpcServers.push(health);

  // Answers what HealthImplementation never does, or never answers at all.
  const custom = new GrpcServer();
  custom.addService(healthService, {
    Check: (call: ServerUnaryCall<{ service: string }, unknown>, cb: sendUnaryData<unknown>) => {
      if (call.request.service === 'stall') stalled.push(cb);
      else cb(null, { status: 'SERVICE_UNKNOWN' });
    },
  });
  customPort = await bind(custom, '127.0.0.1:0');
  grpcServers.push(custom);

  // Answers Check with more than a probe reads.
  const huge = new GrpcServer();
  const check = healthService.Check;
  if (check === undefined) throw new Error('no Check');
  huge.addService(
    { Check: { ...check, responseSerialize: () => Buffer.alloc(64 * 1024, 0x0a) } },
    {
      Check: (_call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => {
        cb(null, {});
      },
    },
  );
  hugePort = await bind(huge, '127.0.0.1:0');
  grpcServers.push(huge);

  // gRPC, but without the health service.
  const bare = new GrpcServer();
  barePort = await bind(bare, '127.0.0.1:0');
  grpcServers.push(bare);

  const secure = new GrpcServer();
  new HealthImplementation(statuses).addToServer(secure);
  tlsPort = await bind(
    secure,
    '127.0.0.1:0',
    ServerCredentials.createSsl(
      null,
      [{ private_key: Buffer.from(leaf.keyPem), cert_chain: Buffer.from(leaf.certPem) }],
      false,
    ),
  );
  grpcServers.push(secure);

  garbagePort = await tcp((s) => {
    connections.garbage++;
    s.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
  });
  silentPort = await tcp(() => {
    connections.silent++;
  });
  proxyPort = await tcp((s) => {
    connections.proxy++;
    s.end('HTTP/1.1 200 Connection established\r\n\r\n');
  });
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
  for (const cb of stalled) cb({ code: status.CANCELLED });
  for (const s of grpcServers) s.forceShutdown();
  for (const s of held) s.destroy();
  for (const s of tcpServers) s.close();
});

const refs = refsOf({ 'Secret/api-ca/ca.crt': '' });

function spec(check: Record<string, unknown>, port: number, ip = '127.0.0.1', r = noRefs) {
  return grpc.spec(grpc.check.parse({ port, ...check }), ip, port, r);
}

describe('the grpc kind', () => {
  it("passes when the server's overall health, or the service's, is SERVING", async () => {
    expect(await probe(spec({}, healthPort), 2000, open)).toMatchObject({ ok: true, message: '' });
    expect(await probe(spec({ service: 'shop.Cart' }, healthPort), 2000, open)).toMatchObject({
      ok: true,
    });
    expect(await probe(spec({}, healthPort6, '::1'), 2000, open)).toMatchObject({ ok: true });
  });

  it('fails with the serving status otherwise', async () => {
    expect(await probe(spec({ service: 'shop.Orders' }, healthPort), 2000, open)).toMatchObject({
      ok: false,
      message: 'gRPC health of shop.Orders is NOT_SERVING',
    });
    expect(await probe(spec({ service: 'shop.Later' }, healthPort), 2000, open)).toMatchObject({
      ok: false,
      message: 'gRPC health of shop.Later is UNKNOWN',
    });
    expect(await probe(spec({}, customPort), 2000, open)).toMatchObject({
      ok: false,
      message: 'gRPC health is SERVICE_UNKNOWN',
    });
  });

  it('fails with the gRPC status name for an unknown service or a server without health', async () => {
    const unknown = await probe(spec({ service: 'shop.Nope' }, healthPort), 2000, open);
    expect(unknown.ok).toBe(false);
    expect(unknown.message).toMatch(/^gRPC NOT_FOUND: /);
    const bare = await probe(spec({}, barePort), 2000, open);
    expect(bare.ok).toBe(false);
    expect(bare.message).toMatch(/^gRPC UNIMPLEMENTED: /);
  });

  it(`reads at most ${maxResponseBytes} bytes of an answer`, async () => {
    const r = await probe(spec({}, hugePort), 2000, open);
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/^gRPC RESOURCE_EXHAUSTED: /);
  });

  it('gives up by timeoutMs on a server that never answers, and on one that never speaks', async () => {
    for (const [check, port] of [
      [{ service: 'stall' }, customPort],
      [{}, silentPort],
    ] as const) {
      const r = await probe(spec(check, port), 300, open);
      expect(r).toMatchObject({ ok: false, message: 'no response within 300 ms' });
      expect(r.seconds).toBeLessThan(1);
    }
  });

  it('fails on a server that is not gRPC, connecting once (no retries)', async () => {
    connections.garbage = 0;
    const r = await probe(spec({}, garbagePort), 2000, open);
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/^gRPC (UNAVAILABLE|INTERNAL|UNKNOWN): /);
    expect(connections.garbage).toBe(1);
    const refused = await probe(spec({}, closedPort), 2000, open);
    expect(refused.ok).toBe(false);
    expect(refused.message).toMatch(/^gRPC UNAVAILABLE: .*ECONNREFUSED/);
    // The same failure reads the same each time (no timestamp, no empty note), so that status
    // is not rewritten by every probe.
    expect(refused.message).not.toMatch(/\d{4}-\d\d-\d\dT|Resolution note:\s*$/);
    const again = await probe(spec({}, closedPort), 2000, open);
    expect(again.message).toBe(refused.message);
  });

  it('never connects again once the probe is over (grpc-js reconnects a closed channel after its backoff)', async () => {
    // grpc-js keeps a subchannel that failed in backoff when its channel closes, and connects
    // again when the backoff ends (twice the timeout here): to a backend that may no longer be
    // allowed, and a second connection the probe never asked for.
    connections.garbage = 0;
    const r = await probe(spec({}, garbagePort), 200, open);
    expect(r.ok).toBe(false);
    expect(connections.garbage).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(connections.garbage).toBe(1);
  });

  it("ignores the environment's proxy settings and goes to the address itself", async () => {
    const saved = { ...process.env };
    connections.proxy = 0;
    try {
      for (const v of ['grpc_proxy', 'https_proxy', 'http_proxy'])
        process.env[v] = `http://127.0.0.1:${proxyPort}`;
      expect(await probe(spec({}, healthPort), 2000, open)).toMatchObject({ ok: true });
    } finally {
      for (const v of ['grpc_proxy', 'https_proxy', 'http_proxy'])
        if (saved[v] === undefined) Reflect.deleteProperty(process.env, v);
        else process.env[v] = saved[v];
    }
    expect(connections.proxy).toBe(0);
  });

  it('speaks TLS when asked: verifies against caBundle and reports notAfter', async () => {
    const ok = refsOf({ 'Secret/api-ca/ca.crt': ca.certPem });
    const caBundle = { secretName: 'api-ca', key: 'ca.crt' };
    expect(
      await probe(
        spec({ tls: true, caBundle, serverName: 'api.example.test' }, tlsPort, '127.0.0.1', ok),
        2000,
        open,
      ),
    ).toMatchObject({ ok: true, certificateNotAfter: leaf.notAfter });
    expect(
      await probe(spec({ tls: true, caBundle }, tlsPort, '127.0.0.1', ok), 2000, open),
    ).toMatchObject({ ok: true });
    expect(
      await probe(
        spec({ tls: true, caBundle, serverName: 'other.example.test' }, tlsPort, '127.0.0.1', ok),
        2000,
        open,
      ),
    ).toMatchObject({
      ok: false,
      message: 'TLS: the certificate does not name other.example.test',
      certificateNotAfter: leaf.notAfter,
    });
    // Unverified, but the expiry is still seen.
    expect(await probe(spec({ tls: true }, tlsPort), 2000, open)).toMatchObject({
      ok: true,
      certificateNotAfter: leaf.notAfter,
    });
    // Plaintext to a TLS server, and TLS to a plaintext one, fail without a certificate.
    const plain = await probe(spec({}, tlsPort), 2000, open);
    expect(plain.ok).toBe(false);
    expect(plain.certificateNotAfter).toBeUndefined();
    expect((await probe(spec({ tls: true }, healthPort), 2000, open)).ok).toBe(false);
  });

  it('refuses to run when the caBundle it names cannot be read', async () => {
    const caBundle = { secretName: 'api-ca', key: 'ca.crt' };
    expect(
      await probe(spec({ tls: true, caBundle }, tlsPort, '127.0.0.1', noRefs), 1000, open),
    ).toMatchObject({
      ok: false,
      message:
        'caBundle: Secret api-ca has no key ca.crt, or does not exist or lacks the label outrigger.dev/health-check: "true"',
    });
    expect(spec({ tls: true, caBundle }, tlsPort, '127.0.0.1', refs).refused).toBe(
      'caBundle: Secret api-ca key ca.crt holds no PEM certificate',
    );
  });

  it('leaves no socket or timer behind, whatever the outcome', async () => {
    const ports = [healthPort, customPort, barePort, tlsPort, garbagePort, silentPort];
    const counts = (): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
      // grpc-js unrefs its sockets, which then no longer count as resources: ask the kernel how
      // many connections to the test servers are still open.
      out['established connections'] = establishedTo(ports);
      return out;
    };
    // Let the previous tests' connections finish closing.
    await until('earlier connections to close', () => establishedTo(ports) === 0, 8000);
    const before = counts();
    const tlsRefs = refsOf({ 'Secret/api-ca/ca.crt': ca.certPem });
    const cases = [
      spec({}, healthPort),
      spec({ service: 'shop.Orders' }, healthPort),
      spec({}, barePort),
      spec({}, closedPort),
      spec({}, garbagePort),
      spec({}, silentPort),
      spec({ service: 'stall' }, customPort),
      spec({ tls: true }, tlsPort),
      spec(
        { tls: true, caBundle: { secretName: 'api-ca', key: 'ca.crt' }, serverName: 'nope.test' },
        tlsPort,
        '127.0.0.1',
        tlsRefs,
      ),
    ];
    for (let round = 0; round < 5; round++)
      await Promise.all(cases.map((s) => probe(s, 200, open)));
    const leaked = (): string[] => {
      const now = counts();
      return ['TCPSocketWrap', 'TLSWrap', 'Timeout', 'Http2Session', 'established connections']
        .filter((k) => (now[k] ?? 0) > (before[k] ?? 0))
        .map((k) => `${k}: ${before[k] ?? 0} before, ${now[k] ?? 0} after`);
    };
    await until('handles to return to where they were', () => leaked().length === 0, 8000).catch(
      () => {
        throw new Error(`left behind: ${leaked().join('; ')}`);
      },
    );
  }, 30_000);
});
