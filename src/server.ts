import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface Check {
  readonly name: string;
  /** Undefined when healthy, else the reason. */
  check(): string | undefined;
}

/** Splits a controller-runtime bind address (":8080", "127.0.0.1:8080", "[::1]:8080"). */
export function parseBindAddress(addr: string): { host: string | undefined; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  return { host: host === '' ? undefined : host, port: Number(addr.slice(i + 1)) };
}

function listen(server: Server, addr: string): Promise<Server> {
  const { host, port } = parseBindAddress(addr);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** Serves /metrics; "0" disables it. */
export async function serveMetrics(addr: string, registry: Registry): Promise<Server | undefined> {
  if (addr === '0') return undefined;
  const server = createServer((req, res) => {
    if (req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'Content-Type': registry.contentType }).end(body);
      },
      (err: unknown) => {
        res.writeHead(500).end(String(err));
      },
    );
  });
  return listen(server, addr);
}

/** Serves /healthz (liveness) and /readyz (readiness) from named checks; "0" disables it. */
export async function serveProbes(
  addr: string,
  checks: { healthz: readonly Check[]; readyz: readonly Check[] },
): Promise<Server | undefined> {
  if (addr === '0') return undefined;
  const server = createServer((req, res) => {
    const path = req.url?.split('?')[0];
    const list =
      path === '/healthz' ? checks.healthz : path === '/readyz' ? checks.readyz : undefined;
    if (list === undefined) {
      res.writeHead(404).end();
      return;
    }
    const failures = list.flatMap((c) => {
      const reason = c.check();
      return reason === undefined ? [] : [`[-]${c.name} failed: ${reason}`];
    });
    res
      .writeHead(failures.length === 0 ? 200 : 500, { 'Content-Type': 'text/plain' })
      .end(failures.length === 0 ? 'ok' : `${failures.join('\n')}\n`);
  });
  return listen(server, addr);
}

export function closeServer(server: Server | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (server === undefined) {
      resolve();
      return;
    }
    server.close(() => {
      resolve();
    });
    server.closeAllConnections();
  });
}
