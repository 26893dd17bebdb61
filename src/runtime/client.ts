// Small facts about the client's identity and the API server it talks to, read through the
// connection (kubeconfig.ts) and the REST client (rest.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { serviceAccountDir, type Connection } from './kubeconfig.ts';
import type { Rest } from './rest.ts';

/** The namespace this pod runs in (from its service account), or undefined outside a cluster. */
export function inClusterNamespace(
  path = join(serviceAccountDir, 'namespace'),
): string | undefined {
  try {
    const ns = readFileSync(path, 'utf8').trim();
    return ns === '' ? undefined : ns;
  } catch {
    return undefined;
  }
}

/**
 * The ServiceAccount ("<namespace>:<name>") the client authenticates as, read from its token's
 * claims (not verified: it only fills in messages that tell a person which account to bind), or
 * undefined when it uses no ServiceAccount token.
 */
export function serviceAccountOf(conn: Pick<Connection, 'token'>): string | undefined {
  try {
    const token = conn.token();
    const claims: unknown = JSON.parse(
      Buffer.from(token?.split('.')[1] ?? '', 'base64url').toString('utf8'),
    );
    const sub = (claims as { sub?: unknown } | null)?.sub;
    const m = typeof sub === 'string' ? /^system:serviceaccount:([^:]+):([^:]+)$/.exec(sub) : null;
    return m === null ? undefined : `${m[1] ?? ''}:${m[2] ?? ''}`;
  } catch {
    return undefined;
  }
}

/**
 * Told about every API request a client made: its method and status code ("<error>" if none).
 * Feeds client-go's rest_client_requests_total; watches are not counted (their restarts are
 * outrigger_informer_watch_restarts_total).
 */
export type RequestObserver = (method: string, code: string, seconds: number, host: string) => void;

export interface VersionInfo {
  readonly gitVersion?: string;
  readonly platform?: string;
}

export function serverVersion(rest: Rest): Promise<VersionInfo> {
  return rest.request<VersionInfo>('GET', '/version');
}
