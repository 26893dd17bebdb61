import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Registry } from 'prom-client';
import type { Decision, MetricsAuthorizer } from './metricsauth.ts';
import type { KeyPair } from './metricstls.ts';

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

function listen<S extends Server | HttpsServer>(server: S, addr: string): Promise<S> {
  const { host, port } = parseBindAddress(addr);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export interface SecureMetrics {
  readonly keyPair: KeyPair;
  readonly authorizer: MetricsAuthorizer;
  /** Told about every decision (for the outcome counter and the log). */
  readonly onDecision?: (d: Decision) => void;
}

/** What a refused scrape gets: the status, and a body that says no more than the status. */
const refusals: Record<Exclude<Decision['outcome'], 'allowed'>, [number, string]> = {
  unauthenticated: [401, 'Unauthorized'],
  forbidden: [403, 'Forbidden'],
  throttled: [429, 'Too many unreviewed requests; retry later'],
  // controller-runtime answers a failed TokenReview with 401; a token that may well be valid is
  // not called invalid here: the review could not be made.
  error: [503, 'Authentication or authorization could not be checked'],
};

/**
 * Serves /metrics; "0" disables it. With `secure`, over HTTPS, and only to a bearer token that the
 * API server authenticates and authorizes for `get` on the non-resource URL /metrics: the
 * per-backend series name every tenant's backends, their address counts and Ready reasons.
 */
export async function serveMetrics(
  addr: string,
  registry: Registry,
  secure?: SecureMetrics,
): Promise<MetricsServer | undefined> {
  if (addr === '0') return undefined;
  const respond = (res: ServerResponse): void => {
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'Content-Type': registry.contentType }).end(body);
      },
      (err: unknown) => {
        res.writeHead(500).end(String(err));
      },
    );
  };
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = req.url?.split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    if (secure === undefined) {
      respond(res);
      return;
    }
    secure.authorizer.review(req.headers.authorization, 'get', path).then(
      (d) => {
        secure.onDecision?.(d);
        if (d.outcome === 'allowed') {
          respond(res);
          return;
        }
        const [status, text] = refusals[d.outcome];
        res
          .writeHead(status, {
            'Content-Type': 'text/plain',
            ...(status === 401 && { 'WWW-Authenticate': 'Bearer' }),
            ...((status === 429 || status === 503) && { 'Retry-After': '1' }),
          })
          .end(`${text}\n`);
      },
      (err: unknown) => {
        res.writeHead(500).end(String(err));
      },
    );
  };
  if (secure === undefined) return listen(createServer(handle), addr);
  // HTTP/1.1 only (Node's https), TLS 1.2 at least, as controller-runtime's metrics server.
  const server = createHttpsServer(
    { cert: secure.keyPair.cert, key: secure.keyPair.key, minVersion: metricsMinTlsVersion },
    handle,
  );
  return listen(server, addr);
}

export type MetricsServer = Server | HttpsServer;

/** The metrics server's lowest TLS version, also when a renewed certificate is swapped in. */
export const metricsMinTlsVersion = 'TLSv1.2';

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

export function closeServer(server: Server | HttpsServer | undefined): Promise<void> {
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
