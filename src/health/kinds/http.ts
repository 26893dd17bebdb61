// The http check: a GET or HEAD (HTTP or HTTPS) whose response status is one of the expected codes
// or ranges. Redirects are never followed, at most 64 KiB of a body is read, and no credentials
// are sent but the headers the check names.
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { z } from 'zod';
import { cel, matching, portRef } from '../../runtime/crdfields.ts';
import { handshake } from './handshake.ts';
import type { ProbeBase, ProbeKind, ProbeOutcome } from './kind.ts';
import {
  headerRefs,
  headersField,
  probeHeaders,
  tlsFields,
  tlsRefs,
  tlsRules,
  tlsSettings,
  withRules,
  type ProbeHeader,
  type TlsSettings,
} from './options.ts';
import { redact } from './sensitive.ts';

/**
 * What an HTTP request target may carry (RFC 3986 path and query characters, with valid
 * percent-escapes). Node's HTTP client throws on anything else, and a header-breaking path such as
 * "/a\r\nHost: x" must never reach a socket.
 */
export const requestPathPattern = /^\/([A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*$/;

const statusRange = matching(
  z.string().max(7),
  /^[1-5][0-9]{2}(-[1-5][0-9]{2})?$/,
  'must be a status code like "200" or a range like "200-399"',
);

const check = withRules(
  z.object({
    port: portRef.describe(
      'The port to send the request to: a number, or the name of an entry in spec.ports.',
    ),
    path: matching(
      z.string().max(1024),
      requestPathPattern,
      'must be a request path starting with "/" and made of URL characters only: no spaces, control or non-ASCII characters (percent-encode them, e.g. %20)',
    )
      .describe('The request path, default "/". Redirects are never followed.')
      .default('/'),
    scheme: z
      .enum(['HTTP', 'HTTPS'])
      .describe(
        "HTTP (default) or HTTPS. HTTPS verifies the server's certificate only when caBundle is set.",
      )
      .default('HTTP'),
    method: z
      .enum(['GET', 'HEAD'])
      .describe('GET (default) or HEAD (no body is sent back).')
      .default('GET'),
    expectedStatuses: z
      .array(statusRange)
      .min(1)
      .max(16)
      .describe('Status codes ("200") or ranges ("200-399", the default) that count as healthy.')
      .default(['200-399'])
      .meta(
        cel({
          rule: 'self.all(r, size(r) == 3 || int(r.substring(0, 3)) <= int(r.substring(4, 7)))',
          message: 'a status range must go from low to high, e.g. "200-399"',
        }),
      ),
    headers: headersField.optional(),
    ...tlsFields,
  }),
  tlsRules({
    cel: "has(self.scheme) && self.scheme == 'HTTPS'",
    check: (c) => c.scheme === 'HTTPS',
    why: 'set scheme: HTTPS',
  }),
).describe('Sends an HTTP GET or HEAD and checks the response status.');

export interface HttpProbe extends ProbeBase<'http'> {
  readonly path: string;
  readonly scheme: 'HTTP' | 'HTTPS';
  readonly method: 'GET' | 'HEAD';
  readonly expectedStatuses: readonly string[];
  /** The Host header's name (and, with HTTPS, the SNI); absent: the IP. */
  readonly serverName?: string;
  readonly headers: readonly ProbeHeader[];
  /** With HTTPS. */
  readonly tls?: TlsSettings;
}

/** At most this much of a response body is read; the rest is discarded unread. */
export const maxBodyBytes = 64 * 1024;

/**
 * Interim (1xx) responses allowed before the final one: each brings a fresh header allowance,
 * so a server sending them without end would otherwise be read until the timeout.
 */
export const maxInterimResponses = 8;

/** Whether `status` falls in one of the "200" / "200-399" ranges. */
export function statusExpected(status: number, ranges: readonly string[]): boolean {
  return ranges.some((r) => {
    const [lo, hi = lo] = r.split('-').map(Number);
    return lo !== undefined && hi !== undefined && status >= lo && status <= hi;
  });
}

/** The Host header: a name without the scheme's default port (as clients send it), or ip:port. */
function hostHeader(spec: HttpProbe): string {
  if (spec.serverName !== undefined) {
    const defaultPort = spec.scheme === 'HTTPS' ? 443 : 80;
    return spec.port === defaultPort ? spec.serverName : `${spec.serverName}:${spec.port}`;
  }
  return `${spec.ip.includes(':') ? `[${spec.ip}]` : spec.ip}:${spec.port}`;
}

function requestHeaders(spec: HttpProbe): Record<string, string> {
  const out: Record<string, string> = {
    Host: hostHeader(spec),
    'User-Agent': 'outrigger-health-check',
    Accept: '*/*',
  };
  for (const h of spec.headers) {
    // The check's own header replaces a default of the same name (names ignore case).
    for (const k of Object.keys(out))
      if (k.toLowerCase() === h.name.toLowerCase()) Reflect.deleteProperty(out, k);
    out[h.name] = h.value.reveal();
  }
  return out;
}

function codeOf(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : 'invalid request';
}

function run(spec: HttpProbe, timeoutMs: number): Promise<ProbeOutcome> {
  const secrets = spec.headers.map((h) => h.value);
  return new Promise((resolve) => {
    let settled = false;
    let socket: Socket | undefined;
    let req: ClientRequest | undefined;
    let certificateNotAfter: number | undefined;
    const finish = (failure: string | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req?.destroy();
      socket?.destroy();
      resolve({
        // Socket and TLS errors do not quote headers; this guards against one that would.
        ...(failure !== undefined ? { failure: redact(failure, secrets) } : {}),
        ...(certificateNotAfter !== undefined ? { certificateNotAfter } : {}),
      });
    };
    const onResponse = (res: IncomingMessage): void => {
      const status = res.statusCode ?? 0;
      // Redirects are never followed: a 3xx is judged like any other status.
      const judged = (): string | undefined =>
        statusExpected(status, spec.expectedStatuses) ? undefined : `HTTP ${status}`;
      let read = 0;
      res.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > maxBodyBytes) finish(judged());
      });
      res.once('end', () => {
        finish(judged());
      });
      res.once('error', () => {
        finish(judged());
      });
    };
    const send = (s: Socket): void => {
      try {
        req = request(
          {
            host: spec.ip,
            port: spec.port,
            path: spec.path,
            method: spec.method,
            headers: requestHeaders(spec),
            setHost: false,
            // No agent: the request goes over this socket only, which is never reused.
            createConnection: () => s,
          },
          onResponse,
        );
        req.once('error', (e: NodeJS.ErrnoException) => {
          finish(e.code ?? e.message);
        });
        let interim = 0;
        req.on('information', () => {
          interim++;
          if (interim > maxInterimResponses)
            finish(`more than ${maxInterimResponses} interim (1xx) responses`);
        });
        req.end();
      } catch (e) {
        // Only the code: a message about a header may quote its value.
        finish(`cannot send the probe: ${codeOf(e)}`);
      }
    };
    const timer = setTimeout(() => {
      finish(`no response within ${timeoutMs} ms`);
    }, timeoutMs);
    try {
      if (spec.tls === undefined) {
        socket = connect({ host: spec.ip, port: spec.port });
        send(socket);
      } else {
        const tlsSocket = handshake(
          { host: spec.ip, port: spec.port },
          spec.ip,
          spec.tls,
          ['http/1.1'],
          (h) => {
            certificateNotAfter = h.certificateNotAfter;
            if (h.failure !== undefined) finish(h.failure);
            else send(tlsSocket);
          },
        );
        socket = tlsSocket;
      }
    } catch (e) {
      finish(`cannot send the probe: ${codeOf(e)}`);
    }
  });
}

export const http: ProbeKind<'http', typeof check, HttpProbe> = {
  name: 'http',
  check,
  spec: (c, ip, port, refs) => {
    const base = {
      kind: 'http' as const,
      ip,
      port,
      path: c.path,
      scheme: c.scheme,
      method: c.method,
      expectedStatuses: c.expectedStatuses,
      ...(c.serverName !== undefined ? { serverName: c.serverName } : {}),
    };
    const h = probeHeaders(c.headers ?? [], refs);
    if ('refused' in h) return { ...base, headers: [], refused: h.refused };
    if (c.scheme === 'HTTP') return { ...base, headers: h.headers };
    const t = tlsSettings(c, refs);
    return 'refused' in t
      ? { ...base, headers: h.headers, tls: {}, refused: t.refused }
      : { ...base, headers: h.headers, tls: t.tls };
  },
  refs: (c) => [...headerRefs(c.headers ?? []), ...(c.scheme === 'HTTPS' ? tlsRefs(c) : [])],
  run,
};
