import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { DenyList } from '../net/denylist.ts';

export interface ProbeResult {
  readonly ok: boolean;
  /** Wall time of the attempt in seconds. */
  readonly seconds: number;
  /** Why it failed (or the HTTP status), for status messages and Events. */
  readonly message: string;
}

export type ProbeSpec =
  | { readonly kind: 'tcp'; readonly ip: string; readonly port: number }
  | {
      readonly kind: 'http';
      readonly ip: string;
      readonly port: number;
      readonly path: string;
      readonly scheme: 'HTTP' | 'HTTPS';
      readonly expectedStatuses: readonly string[];
    };

/** At most this much of a response body is read; the rest is discarded unread. */
export const maxBodyBytes = 64 * 1024;

/** Whether `status` falls in one of the "200" / "200-399" ranges. */
export function statusExpected(status: number, ranges: readonly string[]): boolean {
  return ranges.some((r) => {
    const [lo, hi = lo] = r.split('-').map(Number);
    return lo !== undefined && hi !== undefined && status >= lo && status <= hi;
  });
}

function tcp(ip: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: ip, port, timeout: timeoutMs });
    const done = (err: string | undefined): void => {
      socket.destroy();
      resolve(err);
    };
    socket.once('connect', () => {
      done(undefined);
    });
    socket.once('timeout', () => {
      done(`no connection within ${timeoutMs} ms`);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      done(e.code ?? e.message);
    });
  });
}

function http(
  spec: Extract<ProbeSpec, { kind: 'http' }>,
  timeoutMs: number,
): Promise<string | undefined> {
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
      let read = 0;
      res.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > maxBodyBytes)
          finish(statusExpected(status, spec.expectedStatuses) ? undefined : `HTTP ${status}`);
      });
      res.once('end', () => {
        finish(statusExpected(status, spec.expectedStatuses) ? undefined : `HTTP ${status}`);
      });
      res.once('error', () => {
        finish(statusExpected(status, spec.expectedStatuses) ? undefined : `HTTP ${status}`);
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

/**
 * Runs one probe. Never rejects, whatever the spec holds: Node's socket and HTTP clients throw
 * synchronously on input they cannot send (a path with a space, a bad port), and a throw here would
 * escape into the scheduler. Any such error is a failed probe with its message. Never sends a packet
 * to a deny-listed address.
 */
export async function probe(
  spec: ProbeSpec,
  timeoutMs: number,
  denyList: Pick<DenyList, 'denies'>,
): Promise<ProbeResult> {
  const start = performance.now();
  let err: string | undefined;
  try {
    const denied = denyList.denies(spec.ip);
    if (denied !== undefined)
      return { ok: false, seconds: 0, message: `address is denied: ${denied}` };
    err =
      spec.kind === 'tcp' ? await tcp(spec.ip, spec.port, timeoutMs) : await http(spec, timeoutMs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException | null)?.code;
    err = `cannot send the probe: ${code ?? (e instanceof Error ? e.message : String(e))}`;
  }
  const seconds = (performance.now() - start) / 1000;
  return err === undefined
    ? { ok: true, seconds, message: '' }
    : { ok: false, seconds, message: err };
}
