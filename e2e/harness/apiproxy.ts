// A fault-injecting HTTPS proxy between a client under test (an outrigger process) and the real
// kube-apiserver: it records every request and can delay, fail, hang or silence chosen ones, and
// cut every connection at once. Faults are injected on the wire, so the client's own HTTP stack,
// retries and watch handling are what gets tested.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  request as httpRequest,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { Agent, createServer, request as httpsRequest, type RequestOptions } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig, type Cluster as KubeCluster } from '@kubernetes/client-node';
import type { Cluster } from './controlplane.ts';
import { generatePki } from './pki.ts';

export interface ProxiedRequest {
  /** 1, 2, 3, ... in the order the proxy received them. */
  readonly id: number;
  readonly method: string;
  /** The path without the query, as sent (not percent-decoded). */
  readonly path: string;
  readonly query: URLSearchParams;
  /** `?watch=true` (any spelling the API server accepts) or a legacy `/watch/` path. */
  readonly watch: boolean;
  /** Kubernetes' verb: get, list, watch, create, update, patch, delete, deletecollection; for
   * non-resource paths (/version, /readyz, discovery) the lower-cased method. */
  readonly verb: string;
  /** '' for the core group; undefined for non-resource paths. */
  readonly group: string | undefined;
  readonly resource: string | undefined;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
  /** Date.now() when received. */
  readonly at: number;
  /** The kind of fault the request got, if any (set on the recorded copy, not on the one that
   * rule predicates see). */
  readonly fault?: Fault['kind'];
  /** Date.now() when the exchange ended (response finished or cut); undefined while in flight.
   * Set on the recorded copy. */
  endedAt?: number;
  /** The status code the client was sent; 0 when its connection was cut before any. */
  status?: number;
  /** Date.now() when the proxy began sending it to the API server; undefined if it never did
   * (answered by a fault, or held until its client gave up). */
  forwardedAt?: number;
}

export type Fault =
  /** Holds the request this long, then forwards it. */
  | { readonly kind: 'delay'; readonly ms: number }
  /**
   * Answers with this status without forwarding. Without `body`, a metav1.Status like the API
   * server's own. 429 gets `Retry-After: 1` unless `retryAfter` (seconds) says otherwise.
   */
  | {
      readonly kind: 'status';
      readonly code: number;
      readonly body?: unknown;
      readonly retryAfter?: number;
    }
  /**
   * Accepts and never answers. When the rule is removed, the requests it holds are forwarded (an
   * API server that recovers); a client that gave up meanwhile is simply gone.
   */
  | { readonly kind: 'hang' }
  /**
   * Forwards the request and relays the response's status and headers, then no byte of its body:
   * the client sees an open, silent stream. A stream silenced this way stays silent after the rule
   * is removed, as a stalled watch would, until the client or the proxy cuts it.
   */
  | { readonly kind: 'silentWatch' }
  /** Answers with 200 and one `{"type":"ERROR","object":<Status>}` event, then ends the stream. */
  | { readonly kind: 'watchError'; readonly code: number; readonly reason?: string };

export type RequestMatcher = (r: ProxiedRequest) => boolean;

export interface ApiProxy {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** A kubeconfig for the proxy: its serving CA, and the cluster kubeconfig's user. */
  readonly kubeconfigPath: string;
  /** Every request seen, in order. */
  readonly requests: readonly ProxiedRequest[];
  /** Adds a rule: requests matching `match` get `fault`; returns a function removing the rule.
   * Rules added later win. */
  fault(match: RequestMatcher, fault: Fault): () => void;
  /**
   * Resolves with the first request matching `match` among `requests[from..]` (default 0) or
   * received later; rejects after `timeoutMs` (default 30 s).
   */
  waitForRequest(
    match: RequestMatcher,
    opts?: { readonly from?: number; readonly timeoutMs?: number },
  ): Promise<ProxiedRequest>;
  /** Cuts every open connection (both directions), like a network partition healing with resets. */
  resetConnections(): void;
  close(): Promise<void>;
}

export interface ApiProxyOptions {
  /** Where to write the kubeconfig; default: the cluster's directory, else a new temp directory. */
  readonly dir?: string;
}

// Predicate builders, to be combined with allOf(): `proxy.fault(allOf(isWatch('pods'),
// inNamespace(ns)), { kind: 'silentWatch' })`. A resource is named by its plural, optionally
// qualified by its group ('externalbackends.outrigger.io').

function isResource(r: ProxiedRequest, resource: string | undefined): boolean {
  if (r.resource === undefined) return false;
  return (
    resource === undefined ||
    resource === r.resource ||
    (r.group !== undefined && resource === `${r.resource}.${r.group}`)
  );
}

export const isList =
  (resource?: string): RequestMatcher =>
  (r) =>
    r.verb === 'list' && isResource(r, resource);

export const isWatch =
  (resource?: string): RequestMatcher =>
  (r) =>
    r.watch && isResource(r, resource);

export const isGet =
  (resource?: string): RequestMatcher =>
  (r) =>
    r.verb === 'get' && isResource(r, resource);

const writeMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export const isWrite =
  (resource?: string): RequestMatcher =>
  (r) =>
    writeMethods.has(r.method) && (resource === undefined || isResource(r, resource));

export const isLeaseRequest = (): RequestMatcher => (r) =>
  r.path.includes('/apis/coordination.k8s.io/');

export const inNamespace =
  (namespace: string): RequestMatcher =>
  (r) =>
    r.namespace === namespace;

export const allOf =
  (...matchers: readonly RequestMatcher[]): RequestMatcher =>
  (r) =>
    matchers.every((m) => m(r));

export const anyOf =
  (...matchers: readonly RequestMatcher[]): RequestMatcher =>
  (r) =>
    matchers.some((m) => m(r));

// The values strconv.ParseBool accepts as true, which is what the API server parses `watch` with.
const truthy = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);

// Subresources of namespaces, which would otherwise parse as resource kinds inside a namespace;
// the API server's RequestInfoFactory has the same special case.
const namespaceSubresources = new Set(['status', 'finalize']);

type Parsed = Omit<ProxiedRequest, 'id' | 'at' | 'fault'>;

/** What the API server's RequestInfoFactory would make of a request line. */
export function parseRequest(method: string, url: string): Parsed {
  const u = new URL(url, 'https://proxy.invalid');
  const path = u.pathname;
  const query = u.searchParams;
  const segs = path.split('/').filter((s) => s !== '');
  let rest: string[] | undefined;
  let group: string | undefined;
  if (segs[0] === 'api' && segs.length >= 2) {
    group = '';
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 3) {
    group = segs[1];
    rest = segs.slice(3);
  }
  let watch = truthy.has(query.get('watch') ?? '');
  let namespace: string | undefined;
  if (rest?.[0] === 'watch') {
    watch = true;
    rest = rest.slice(1);
  }
  if (
    rest?.[0] === 'namespaces' &&
    rest.length >= 3 &&
    !(rest.length === 3 && namespaceSubresources.has(rest[2] ?? ''))
  ) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource, name, subresource] = rest ?? [];
  if (resource === undefined) group = undefined;
  const m = method.toUpperCase();
  let verb = m.toLowerCase();
  if (resource !== undefined) {
    if (m === 'GET' || m === 'HEAD') verb = watch ? 'watch' : name !== undefined ? 'get' : 'list';
    else if (m === 'POST') verb = 'create';
    else if (m === 'PUT') verb = 'update';
    else if (m === 'DELETE') verb = name !== undefined ? 'delete' : 'deletecollection';
  }
  return {
    method: m,
    path,
    query,
    watch,
    verb,
    group,
    resource,
    namespace: resource === undefined ? undefined : namespace,
    name,
    subresource,
  };
}

const reasons: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

function status(code: number, reason: string | undefined, message: string): object {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: reason ?? reasons[code] ?? 'Unknown',
    code,
  };
}

// RFC 9110 §7.6.1: these describe one connection, not the request, so they are never relayed.
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function endToEnd(
  headers: NodeJS.Dict<string[]>,
  raw: IncomingHttpHeaders,
  drop: readonly string[] = [],
): OutgoingHttpHeaders {
  const listed = (raw.connection ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || hopByHop.has(k) || listed.includes(k) || drop.includes(k)) continue;
    out[k] = v.length === 1 ? v[0] : v;
  }
  return out;
}

interface Upstream {
  readonly https: boolean;
  readonly host: string;
  readonly port: number;
  readonly prefix: string;
  readonly headers: OutgoingHttpHeaders;
  readonly auth: string | undefined;
  readonly tls: Pick<RequestOptions, 'ca' | 'cert' | 'key' | 'servername' | 'rejectUnauthorized'>;
}

async function upstreamOf(kc: KubeConfig): Promise<Upstream> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('apiproxy: the cluster kubeconfig has no current cluster');
  const u = new URL(cluster.server);
  const opts: RequestOptions = {};
  // Resolved once: enough for the harness's client certificates and for static tokens; an exec
  // plugin's short-lived token would go stale in a proxy that outlives it.
  await kc.applyToHTTPSOptions(opts);
  const headers: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    if (v !== undefined) headers[k.toLowerCase()] = v;
  }
  const tls: Upstream['tls'] = {};
  if (opts.ca !== undefined) tls.ca = opts.ca;
  if (opts.cert !== undefined) tls.cert = opts.cert;
  if (opts.key !== undefined) tls.key = opts.key;
  if (opts.servername !== undefined) tls.servername = opts.servername;
  if (opts.rejectUnauthorized !== undefined) tls.rejectUnauthorized = opts.rejectUnauthorized;
  const https = u.protocol === 'https:';
  return {
    https,
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port === '' ? (https ? 443 : 80) : Number(u.port),
    prefix: u.pathname.replace(/\/+$/, ''),
    headers,
    auth: opts.auth ?? undefined,
    tls,
  };
}

interface Serving {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

async function servingCertificate(dir: string | undefined): Promise<Serving> {
  if (dir !== undefined) {
    try {
      // The API server's own certificate is issued for 127.0.0.1 by the CA that the cluster's
      // kubeconfig already trusts.
      return {
        caPem: readFileSync(join(dir, 'ca.crt'), 'utf8'),
        certPem: readFileSync(join(dir, 'apiserver.crt'), 'utf8'),
        keyPem: readFileSync(join(dir, 'apiserver.key'), 'utf8'),
      };
    } catch {
      // Not a directory of this harness: fall through to a throwaway CA.
    }
  }
  const pki = await generatePki(1);
  return { caPem: pki.ca.certPem, certPem: pki.server.certPem, keyPem: pki.server.keyPem };
}

function proxyKubeconfig(kc: KubeConfig, url: string, caPem: string): string {
  const user = kc.getCurrentUser();
  if (user === null) throw new Error('apiproxy: the cluster kubeconfig has no current user');
  // Nothing of the real cluster entry carries over: its CA file, TLS server name and proxy URL
  // describe how to reach the real API server.
  const cluster: KubeCluster = {
    name: 'outrigger-apiproxy',
    server: url,
    caData: Buffer.from(caPem).toString('base64'),
    skipTLSVerify: false,
  };
  const out = new KubeConfig();
  out.loadFromOptions({
    clusters: [cluster],
    users: [user],
    contexts: [{ name: 'outrigger-apiproxy', cluster: cluster.name, user: user.name }],
    currentContext: 'outrigger-apiproxy',
  });
  return out.exportConfig();
}

interface Rule {
  readonly match: RequestMatcher;
  readonly fault: Fault;
  /** Aborted when the rule is removed; releases the requests a `hang` holds. */
  readonly removed: AbortController;
}

/** One request in flight: aborting `stop` cancels whatever it waits for. */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly stop: AbortController;
  upstream?: ClientRequest;
  forwardedAt?: number;
}

function abortedPromise(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else
      signal.addEventListener(
        'abort',
        () => {
          resolve();
        },
        { once: true },
      );
  });
}

/**
 * Starts the proxy on 127.0.0.1 in front of `cluster`'s API server. It serves HTTP/1.1 only and
 * does not proxy protocol upgrades (exec, attach, port-forward), which the operator never uses.
 */
export async function startApiProxy(
  cluster: Cluster,
  opts: ApiProxyOptions = {},
): Promise<ApiProxy> {
  const kc = cluster.kubeConfig();
  const upstream = await upstreamOf(kc);
  const serving = await servingCertificate(cluster.dir);
  const newAgent = (): Agent => new Agent({ keepAlive: true, ...upstream.tls });
  let agent = newAgent();

  const requests: ProxiedRequest[] = [];
  /** waitForRequest() callers: called with every new request, and with undefined on close(). */
  const waiters = new Set<(r: ProxiedRequest | undefined) => void>();
  const rules: Rule[] = [];
  const exchanges = new Set<Exchange>();
  const sockets = new Set<Socket>();
  let nextId = 1;
  let closed = false;

  const record = (r: ProxiedRequest): void => {
    requests.push(r);
    for (const w of [...waiters]) w(r);
  };

  const answer = (ex: Exchange, code: number, body: string, headers: OutgoingHttpHeaders): void => {
    // The body of a request that is not forwarded must still be read, or a keep-alive client's
    // next request would sit behind it.
    ex.req.resume();
    ex.res.writeHead(code, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...headers,
    });
    ex.res.end(body);
  };

  const forward = (ex: Exchange, silent: boolean): void => {
    const { req, res } = ex;
    const options: RequestOptions = {
      host: upstream.host,
      port: upstream.port,
      method: req.method ?? 'GET',
      path: upstream.prefix + (req.url ?? '/'),
      headers: {
        // Host is node:http's to set for the upstream; Authorization is dropped because the proxy
        // speaks to the API server as the cluster kubeconfig's user, whatever the client presents.
        ...endToEnd(req.headersDistinct, req.headers, ['host', 'authorization']),
        ...upstream.headers,
      },
    };
    if (upstream.auth !== undefined) options.auth = upstream.auth;
    // The client's connection is cut rather than answered with a 502: through a transparent
    // network path a client sees an API server that is down or dies mid-response as a broken
    // connection, and that is what its error handling must be tested against.
    const fail = (): void => {
      res.destroy();
    };
    let up: ClientRequest;
    try {
      up = upstream.https
        ? httpsRequest({ ...options, agent })
        : httpRequest({ ...options, agent: false });
    } catch {
      // node:http throws synchronously on some malformed paths and headers.
      fail();
      return;
    }
    ex.upstream = up;
    ex.forwardedAt = Date.now();
    up.on('error', fail);
    up.on('response', (upRes) => {
      res.writeHead(
        upRes.statusCode ?? 502,
        upRes.statusMessage,
        endToEnd(upRes.headersDistinct, upRes.headers),
      );
      // A watch's headers must reach the client before its first event, which may be minutes away.
      res.flushHeaders();
      if (silent) {
        // Drained, so that the API server is never blocked on this connection; the client's
        // response stays open until someone cuts it.
        upRes.resume();
        return;
      }
      pipeline(upRes, res, (err) => {
        if (err) {
          upRes.destroy();
          res.destroy();
        }
      });
    });
    req.pipe(up);
  };

  const handle = async (ex: Exchange, r: ProxiedRequest, rule: Rule | undefined): Promise<void> => {
    const signal = ex.stop.signal;
    const fault = rule?.fault;
    switch (fault?.kind) {
      case undefined:
        forward(ex, false);
        return;
      case 'delay':
        try {
          await sleep(fault.ms, undefined, { signal });
        } catch {
          return; // the client, a reset or close() ended the exchange
        }
        forward(ex, false);
        return;
      case 'hang':
        await abortedPromise(AbortSignal.any([signal, rule?.removed.signal ?? signal]));
        if (!signal.aborted) forward(ex, false);
        return;
      case 'status': {
        const body =
          fault.body === undefined
            ? JSON.stringify(status(fault.code, undefined, `apiproxy: injected ${fault.code}`))
            : typeof fault.body === 'string'
              ? fault.body
              : JSON.stringify(fault.body);
        const retryAfter = fault.retryAfter ?? (fault.code === 429 ? 1 : undefined);
        answer(
          ex,
          fault.code,
          body,
          retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) },
        );
        return;
      }
      case 'silentWatch':
        forward(ex, true);
        return;
      case 'watchError': {
        const object = status(
          fault.code,
          fault.reason,
          `apiproxy: injected watch error ${fault.code} for ${r.path}`,
        );
        ex.req.resume();
        ex.res.writeHead(200, { 'content-type': 'application/json' });
        ex.res.end(`${JSON.stringify({ type: 'ERROR', object })}\n`);
        return;
      }
    }
  };

  const server = createServer(
    { cert: serving.certPem, key: serving.keyPem, ca: serving.caPem },
    (req, res) => {
      const parsed = parseRequest(req.method ?? 'GET', req.url ?? '/');
      const base: ProxiedRequest = { id: nextId++, at: Date.now(), ...parsed };
      const ex: Exchange = { req, res, stop: new AbortController() };
      let recorded: ProxiedRequest = base;
      exchanges.add(ex);
      res.on('close', () => {
        recorded.endedAt = Date.now();
        if (ex.forwardedAt !== undefined) recorded.forwardedAt = ex.forwardedAt;
        recorded.status = res.headersSent ? res.statusCode : 0;
        exchanges.delete(ex);
        ex.stop.abort();
        // Only when the client left early: a finished upstream request's socket is back in the
        // keep-alive pool and must not be destroyed.
        if (!res.writableFinished) ex.upstream?.destroy();
      });

      let rule: Rule | undefined;
      try {
        rule = rules.findLast((x) => x.match(base));
      } catch (err) {
        record(base);
        recorded = base;
        const message = `apiproxy: a fault rule's predicate threw: ${String(err)}`;
        answer(ex, 500, JSON.stringify(status(500, undefined, message)), {});
        return;
      }
      recorded = rule === undefined ? base : { ...base, fault: rule.fault.kind };
      record(recorded);
      handle(ex, base, rule).catch((err: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          answer(ex, 500, JSON.stringify(status(500, undefined, `apiproxy: ${String(err)}`)), {});
        } else {
          res.destroy();
        }
      });
    },
  );
  // Hung and delayed requests are the point here: no server-side timeouts on the client's side.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // A client that vanishes mid-handshake must not take the server down.
  server.on('tlsClientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  if (addr === null || typeof addr !== 'object') throw new Error('apiproxy: no listening address');
  const port = addr.port;
  const url = `https://127.0.0.1:${port}`;

  const ownDir = opts.dir === undefined && cluster.dir === undefined;
  const dir = opts.dir ?? cluster.dir ?? mkdtempSync(join(tmpdir(), 'outrigger-apiproxy-'));
  const kubeconfigPath = join(dir, `apiproxy-${port}.kubeconfig`);
  writeFileSync(kubeconfigPath, proxyKubeconfig(kc, url, serving.caPem), { mode: 0o600 });

  const cutAll = (): void => {
    for (const ex of [...exchanges]) {
      ex.stop.abort();
      ex.upstream?.destroy();
    }
    for (const s of [...sockets]) {
      // A TCP RST rather than a FIN, as a middlebox that lost its state would answer; the raw
      // socket is gone already if TLS has taken its handle over.
      try {
        s.resetAndDestroy();
      } catch {
        s.destroy();
      }
    }
    // Also the idle keep-alive connections to the API server.
    agent.destroy();
    agent = newAgent();
  };

  return {
    url,
    port,
    kubeconfigPath,
    requests,
    fault(match, fault) {
      const rule: Rule = { match, fault, removed: new AbortController() };
      rules.push(rule);
      return () => {
        const i = rules.indexOf(rule);
        if (i >= 0) rules.splice(i, 1);
        rule.removed.abort();
      };
    },
    waitForRequest(match, { from = 0, timeoutMs = 30_000 } = {}) {
      const seen = requests.slice(from).find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`apiproxy: no matching request within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = (r: ProxiedRequest | undefined): void => {
          if (r !== undefined && !match(r)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          if (r === undefined) reject(new Error('apiproxy: closed while waiting for a request'));
          else resolve(r);
        };
        waiters.add(waiter);
      });
    },
    resetConnections: cutAll,
    async close() {
      if (closed) return;
      closed = true;
      for (const rule of rules.splice(0)) rule.removed.abort();
      for (const w of [...waiters]) w(undefined);
      const done = new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
      cutAll();
      server.closeAllConnections();
      agent.destroy();
      await done;
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
