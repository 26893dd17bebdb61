// The http check: a GET (HTTP or HTTPS) whose response status is one of the expected codes or
// ranges. Redirects are never followed, at most 64 KiB of a body is read, no credentials are sent.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { z } from 'zod';
import { cel, matching, portRef } from '../../externalbackend/fields.ts';
import type { ProbeBase, ProbeKind } from './kind.ts';

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

const check = z
  .object({
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
      .describe("HTTP (default) or HTTPS; HTTPS does not verify the server's certificate.")
      .default('HTTP'),
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
  })
  .describe('Sends an HTTP GET and checks the response status.');

export interface HttpProbe extends ProbeBase<'http'> {
  readonly path: string;
  readonly scheme: 'HTTP' | 'HTTPS';
  readonly expectedStatuses: readonly string[];
}

/** At most this much of a response body is read; the rest is discarded unread. */
export const maxBodyBytes = 64 * 1024;

/** Whether `status` falls in one of the "200" / "200-399" ranges. */
export function statusExpected(status: number, ranges: readonly string[]): boolean {
  return ranges.some((r) => {
    const [lo, hi = lo] = r.split('-').map(Number);
    return lo !== undefined && hi !== undefined && status >= lo && status <= hi;
  });
}

function run(spec: HttpProbe, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const host = spec.ip.includes(':') ? `[${spec.ip}]` : spec.ip;
    let settled = false;
    const finish = (err: string | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(err);
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
    const options = {
      host: spec.ip,
      port: spec.port,
      path: spec.path,
      method: 'GET',
      agent: false as const,
      headers: {
        Host: `${host}:${spec.port}`,
        'User-Agent': 'outrigger-health-check',
        Accept: '*/*',
      },
      // Backends are addressed by IP; their certificates rarely name it. The check is about
      // liveness, and no credentials are sent.
      rejectUnauthorized: false,
    };
    const req =
      spec.scheme === 'HTTPS'
        ? httpsRequest(options, onResponse)
        : httpRequest(options, onResponse);
    const timer = setTimeout(() => {
      finish(`no response within ${timeoutMs} ms`);
    }, timeoutMs);
    req.once('error', (e: NodeJS.ErrnoException) => {
      finish(e.code ?? e.message);
    });
    req.end();
  });
}

export const http: ProbeKind<'http', typeof check, HttpProbe> = {
  name: 'http',
  check,
  spec: (c, ip, port) => ({
    kind: 'http',
    ip,
    port,
    path: c.path,
    scheme: c.scheme,
    expectedStatuses: c.expectedStatuses,
  }),
  run,
};
