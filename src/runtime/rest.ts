// The lean path to the API server for what outrigger reads and writes in volume (lists of Pods,
// Services, Endpoints, EndpointSlices, ExternalBackends; Endpoints and slice writes): JSON text in,
// plain objects out. client-node's generated clients run every object through its typed models
// both ways (ObjectSerializer walks each field of each pod of a 500-item page), rebuild their
// middleware chain and re-read the CA and key material for every request; none of that is needed
// to send JSON the caller already holds in the shape the API server speaks. Every request
// outrigger makes goes through here. The connection (kubeconfig.ts) gives the TLS material, taken
// once, and the auth headers, taken at most once a minute (client-go's cached token source
// re-reads a token file as often) and again at once after a 401.
import http from 'node:http';
import https from 'node:https';
import type { RequestObserver } from './client.ts';
import type { Connection } from './kubeconfig.ts';

/**
 * A response other than 2xx. The same fields as client-node's ApiException (`code`, `body`,
 * `headers`), so that checks written for either read alike; outrigger's own, so that telling a
 * 404 from a 409 does not load client-node.
 */
export class ApiError extends Error {
  readonly code: number;
  readonly body: string;
  readonly headers: Record<string, string>;

  constructor(code: number, message: string, body: string, headers: Record<string, string>) {
    super(`HTTP-Code: ${String(code)}\nMessage: ${message}`);
    this.name = 'ApiError';
    this.code = code;
    this.body = body;
    this.headers = headers;
  }
}

/** The status code of a refused request, or undefined for any other error. */
export function statusOf(err: unknown): number | undefined {
  return err instanceof ApiError ? err.code : undefined;
}

export type Query = Readonly<Record<string, string | number | undefined>>;

export interface RestRequest {
  readonly query?: Query;
  /** Sent as JSON (already a string: sent as it is). */
  readonly body?: unknown;
  /** Content-Type of the body; application/json unless a patch type is named. */
  readonly contentType?: string;
  readonly signal?: AbortSignal;
}

export interface WatchRequest {
  readonly query: Query;
  readonly signal: AbortSignal;
  /** No byte for this long (connecting included): the watch fails with a TimeoutError. */
  readonly stallTimeoutMs: number;
  /** Once the server has accepted the watch (200). */
  readonly onConnected: () => void;
  /** Each event, in order, as the API server sent it. */
  readonly onEvent: (type: string, object: unknown) => void;
}

export interface Rest {
  /** Resolves with the parsed response body; rejects with an ApiError on a non-2xx. */
  request<T>(method: string, path: string, r?: RestRequest): Promise<T>;
  /**
   * A watch (GET with watch=true), its body read line by line. Resolves when the server closes
   * the stream or the signal stops it; rejects with an ApiError (and `statusCode`) for a
   * refused watch, an Error named TimeoutError after a stall, or the connection's error.
   */
  watch(path: string, w: WatchRequest): Promise<void>;
}

export interface RestOptions {
  readonly observe?: RequestObserver;
  readonly userAgent?: string;
  /** A request with no response for this long fails (the typed clients wait forever). */
  readonly timeoutMs?: number;
  /** How long auth headers are reused before the connection is asked again. */
  readonly authTtlMs?: number;
  readonly now?: () => number;
}

const defaultTimeoutMs = 60_000;
const defaultAuthTtlMs = 60_000;

export function restClient(conn: Connection, o: RestOptions = {}): Rest {
  const base = new URL(conn.server);
  const secure = base.protocol === 'https:';
  const now = o.now ?? Date.now;
  const timeoutMs = o.timeoutMs ?? defaultTimeoutMs;
  const authTtlMs = o.authTtlMs ?? defaultAuthTtlMs;
  let agent: http.Agent | undefined;
  let auth: { headers: Record<string, string>; at: number } | undefined;

  /** TLS material and auth headers from the connection; the agent is built once and kept alive. */
  const connection = async (): Promise<{ agent: http.Agent; headers: Record<string, string> }> => {
    if (agent !== undefined && auth !== undefined && now() - auth.at < authTtlMs) {
      return { agent, headers: auth.headers };
    }
    const opts: https.RequestOptions = {};
    await conn.applyToHTTPSOptions(opts);
    // Every request's headers but its body's, built once per auth refresh.
    const headers: Record<string, string> = {
      ...flatHeaders(opts.headers ?? {}),
      Accept: 'application/json',
      ...(o.userAgent !== undefined ? { 'User-Agent': o.userAgent } : {}),
    };
    if (typeof opts.auth === 'string')
      headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    auth = { headers, at: now() };
    // Through a proxy, client-node's own agent (it speaks the proxy protocols); else one kept
    // alive, so a burst of writes reuses its connections instead of handshaking for each.
    agent ??=
      conn.proxyUrl !== undefined && opts.agent instanceof http.Agent
        ? opts.agent
        : secure
          ? new https.Agent({ keepAlive: true, ...pickTls(opts) })
          : new http.Agent({ keepAlive: true });
    return { agent, headers };
  };

  // A server behind a path (a proxy serving several clusters) keeps it in front of every path.
  const prefix = base.pathname.replace(/\/+$/, '');
  const urlOf = (path: string, query: Query): URL => {
    const url = new URL(`${prefix}${path}`, base);
    for (const [k, v] of Object.entries(query))
      if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  };

  const once = async <T>(method: string, path: string, r: RestRequest): Promise<T> => {
    const { agent: a, headers } = await connection();
    const url = urlOf(path, r.query ?? {});
    const body =
      r.body === undefined
        ? undefined
        : typeof r.body === 'string'
          ? r.body
          : JSON.stringify(r.body);
    const started = performance.now();
    const observe = (code: string): void =>
      o.observe?.(method, code, (performance.now() - started) / 1000, url.host);
    return new Promise<T>((resolve, reject) => {
      const req = (secure ? https : http).request(
        url,
        {
          method,
          agent: a,
          headers: {
            ...headers,
            ...(body !== undefined
              ? {
                  'Content-Type': r.contentType ?? 'application/json',
                  'Content-Length': Buffer.byteLength(body),
                }
              : {}),
          },
          ...(r.signal !== undefined ? { signal: r.signal } : {}),
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => {
            observe('<error>');
            reject(err);
          });
          res.on('end', () => {
            const code = res.statusCode ?? 0;
            observe(String(code));
            const text = Buffer.concat(chunks).toString('utf8');
            if (code < 200 || code > 299) {
              reject(apiError(code, text, res.headers));
              return;
            }
            try {
              resolve((text === '' ? undefined : JSON.parse(text)) as T);
            } catch (err) {
              reject(err instanceof Error ? err : new Error(String(err)));
            }
          });
        },
      );
      req.on('timeout', () => {
        req.destroy(new Error(`${method} ${url.pathname}: no response in ${String(timeoutMs)} ms`));
      });
      req.on('error', (err) => {
        observe('<error>');
        reject(err);
      });
      req.end(body);
    });
  };

  const watchOnce = async (path: string, w: WatchRequest): Promise<void> => {
    const { agent: a, headers } = await connection();
    const url = urlOf(path, { ...w.query, watch: 'true' });
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const end = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        if (err === undefined) resolve();
        else reject(err);
      };
      // Reset on every byte: bookmarks come about once a minute on a quiet watch. One timer,
      // rescheduled in place: a busy watch gets a chunk per event.
      const stallWatch = (): void => {
        if (settled) return;
        if (timer !== undefined) {
          timer.refresh();
          return;
        }
        timer = setTimeout(() => {
          const err = new Error(
            `watch ${url.pathname}: nothing for ${String(w.stallTimeoutMs)} ms`,
          );
          err.name = 'TimeoutError';
          end(err);
        }, w.stallTimeoutMs);
        timer.unref();
      };
      const req = (secure ? https : http).request(
        url,
        {
          method: 'GET',
          agent: a,
          headers,
          signal: w.signal,
        },
        (res) => {
          const code = res.statusCode ?? 0;
          if (code !== 200) {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              end(Object.assign(apiError(code, text, res.headers), { statusCode: code }));
            });
            res.on('error', end);
            return;
          }
          stallWatch();
          w.onConnected();
          res.setEncoding('utf8');
          let partial = '';
          res.on('data', (chunk: string) => {
            stallWatch();
            const text = partial + chunk;
            let start = 0;
            for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
              const line = text.slice(start, nl);
              start = nl + 1;
              if (line.trim() === '') continue;
              try {
                const event = JSON.parse(line) as { type?: unknown; object?: unknown };
                w.onEvent(typeof event.type === 'string' ? event.type : '', event.object);
              } catch (err) {
                // A line that does not parse is a broken stream: watch again from the last
                // version seen rather than skip an event.
                end(err instanceof Error ? err : new Error(String(err)));
                return;
              }
            }
            partial = text.slice(start);
          });
          res.on('end', () => {
            end();
          });
          res.on('close', () => {
            end();
          });
          res.on('error', end);
        },
      );
      req.on('error', end);
      stallWatch();
      req.end();
    });
  };

  return {
    watch: watchOnce,
    async request<T>(method: string, path: string, r: RestRequest = {}): Promise<T> {
      try {
        return await once<T>(method, path, r);
      } catch (err) {
        // A token rotated since the headers were taken: ask the connection again, once.
        if (statusOf(err) !== 401) throw err;
        auth = undefined;
        return once<T>(method, path, r);
      }
    },
  };
}

/** The path of a namespaced collection, or of one object in it when `name` is given. */
export function objectPath(prefix: string, resource: string, namespace: string, name?: string) {
  const collection = `${prefix}/namespaces/${encodeURIComponent(namespace)}/${resource}`;
  return name === undefined ? collection : `${collection}/${encodeURIComponent(name)}`;
}

function pickTls(o: https.RequestOptions): https.AgentOptions {
  const out: https.AgentOptions = {};
  if (o.ca !== undefined) out.ca = o.ca;
  if (o.cert !== undefined) out.cert = o.cert;
  if (o.key !== undefined) out.key = o.key;
  if (o.pfx !== undefined) out.pfx = o.pfx;
  if (o.passphrase !== undefined) out.passphrase = o.passphrase;
  if (o.servername !== undefined) out.servername = o.servername;
  if (o.rejectUnauthorized !== undefined) out.rejectUnauthorized = o.rejectUnauthorized;
  return out;
}

function apiError(code: number, body: string, headers: http.IncomingHttpHeaders): ApiError {
  let message = body;
  try {
    const parsed = JSON.parse(body) as { message?: unknown } | null;
    if (typeof parsed?.message === 'string') message = parsed.message;
  } catch {
    // Not a Status object; the body is the message.
  }
  return new ApiError(code, message, body, flatHeaders(headers));
}

/** Node's header values (a number, a list) as the single strings fetch-style code expects. */
function flatHeaders(headers: object): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers) as [string, unknown][])
    if (Array.isArray(v)) flat[k] = v.join(', ');
    else if (typeof v === 'string' || typeof v === 'number') flat[k] = String(v);
  return flat;
}
