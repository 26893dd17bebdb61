// The lean client against a real HTTP server on loopback: what it sends, what it makes of what
// comes back, and that it reuses its connection and its auth headers.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import type { Connection } from './kubeconfig.ts';
import { ApiError, restClient } from './rest.ts';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  port: number;
}

let server: http.Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  server = undefined;
});

async function serve(
  reply: (s: Seen, res: http.ServerResponse) => void,
): Promise<{ seen: Seen[]; url: string }> {
  const seen: Seen[] = [];
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        port: req.socket.remotePort ?? 0,
      };
      seen.push(s);
      reply(s, res);
    });
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { seen, url: `http://127.0.0.1:${String(port)}` };
}

const dir = mkdtempSync(join(tmpdir(), 'outrigger-rest-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A connection to `server` whose token is read from a file of its own at every refresh. */
function kubeConfig(server: string, token: string): Connection & { rotate(t: string): void } {
  const tokenFile = join(dir, `token-${String(Math.random()).slice(2)}`);
  writeFileSync(tokenFile, token);
  return {
    server,
    loader: 'test',
    applyToHTTPSOptions(opts) {
      opts.headers = { Authorization: `Bearer ${readFileSync(tokenFile, 'utf8')}` };
      return Promise.resolve();
    },
    token: () => readFileSync(tokenFile, 'utf8'),
    rotate: (t) => {
      writeFileSync(tokenFile, t);
    },
  };
}

const json = (res: http.ServerResponse, code: number, body: unknown): void => {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
};

describe('restClient', () => {
  it('sends JSON with the query, its auth and user agent, and parses the reply', async () => {
    const { seen, url } = await serve((_s, res) => {
      json(res, 200, { items: [{ metadata: { name: 'a' } }], metadata: { resourceVersion: '7' } });
    });
    const observed: string[] = [];
    const rest = restClient(kubeConfig(url, 'tok-1'), {
      userAgent: 'outrigger/test',
      observe: (method, code) => observed.push(`${method} ${code}`),
    });
    const out = await rest.request<{ items: unknown[] }>('GET', '/api/v1/pods', {
      query: { limit: 500, continue: undefined, labelSelector: 'a=b' },
    });
    expect(out.items).toEqual([{ metadata: { name: 'a' } }]);
    await rest.request('PATCH', '/api/v1/namespaces/n/endpoints/e', {
      body: { metadata: { annotations: { k: null } } },
      contentType: 'application/merge-patch+json',
    });
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET /api/v1/pods?limit=500&labelSelector=a%3Db',
      'PATCH /api/v1/namespaces/n/endpoints/e',
    ]);
    expect(seen[0]?.headers.authorization).toBe('Bearer tok-1');
    expect(seen[0]?.headers['user-agent']).toBe('outrigger/test');
    expect(seen[1]?.headers['content-type']).toBe('application/merge-patch+json');
    expect(JSON.parse(seen[1]?.body ?? '')).toEqual({ metadata: { annotations: { k: null } } });
    expect(observed).toEqual(['GET 200', 'PATCH 200']);
    // One connection, kept alive, for both requests.
    expect(seen[1]?.port).toBe(seen[0]?.port);
  });

  it('keeps the path of a server behind a proxy in front of every request', async () => {
    const { seen, url } = await serve((_s, res) => {
      json(res, 200, {});
    });
    const rest = restClient(kubeConfig(`${url}/k8s/clusters/c-1/`, 't'));
    await rest.request('GET', '/api/v1/pods', { query: { limit: 1 } });
    expect(seen.map((s) => s.url)).toEqual(['/k8s/clusters/c-1/api/v1/pods?limit=1']);
  });

  it('rejects with an ApiError, its code and the Status message', async () => {
    const { url } = await serve((_s, res) => {
      json(res, 409, { kind: 'Status', code: 409, message: 'the object has been modified' });
    });
    const rest = restClient(kubeConfig(url, 't'));
    const err = await rest.request('PUT', '/api/v1/namespaces/n/endpoints/e', { body: {} }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(409);
    expect((err as ApiError).message).toContain('the object has been modified');
  });

  it('reads the token file again after a 401, once, and keeps the token otherwise', async () => {
    const { seen, url } = await serve((s, res) => {
      if (s.headers.authorization === 'Bearer rotated') json(res, 200, {});
      else json(res, 401, { kind: 'Status', code: 401, message: 'Unauthorized' });
    });
    const kc = kubeConfig(url, 'old');
    const rest = restClient(kc, { authTtlMs: 3_600_000 });
    await expect(rest.request('GET', '/api/v1/pods')).rejects.toBeInstanceOf(ApiError);
    expect(seen.map((s) => s.headers.authorization)).toEqual(['Bearer old', 'Bearer old']);
    // The kubelet rotated the token file.
    kc.rotate('rotated');
    await rest.request('GET', '/api/v1/pods');
    await rest.request('GET', '/api/v1/pods');
    expect(seen.map((s) => s.headers.authorization)).toEqual([
      'Bearer old',
      'Bearer old',
      'Bearer old',
      'Bearer rotated',
      'Bearer rotated',
    ]);
  });

  it('fails a request that gets no response in time', async () => {
    const { url } = await serve(() => undefined);
    const rest = restClient(kubeConfig(url, 't'), { timeoutMs: 200 });
    await expect(rest.request('GET', '/api/v1/pods')).rejects.toThrow('no response in 200 ms');
  });
  it('ends a watch that stalls, counting from its last byte, not its first', async () => {
    let lastSent = 0;
    const { url } = await serve((_s, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      // An event every 50 ms for 1500 ms (past the 1000 ms stall limit), then silence. The
      // limit is far above the spacing because server and client share this process's event
      // loop: a pause of the loop (other test workers on a busy CI machine) longer than the
      // limit would otherwise end the watch before the last event, as it once did at 300 ms.
      let n = 0;
      const tick = setInterval(() => {
        res.write(`${JSON.stringify({ type: 'ADDED', object: { n } })}\n`);
        lastSent = Date.now();
        if (++n === 30) clearInterval(tick);
      }, 50);
      res.on('close', () => {
        clearInterval(tick);
      });
    });
    const rest = restClient(kubeConfig(url, 't'));
    const events: unknown[] = [];
    const stop = new AbortController();
    const err = await rest
      .watch('/api/v1/pods', {
        query: {},
        signal: stop.signal,
        stallTimeoutMs: 1000,
        onConnected: () => undefined,
        onEvent: (_type, object) => events.push(object),
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(events).toHaveLength(30);
    expect((err as Error | undefined)?.name).toBe('TimeoutError');
    // Not before 1000 ms of silence after the last event (some slack for timers).
    expect(Date.now() - lastSent).toBeGreaterThanOrEqual(980);
  });
});
