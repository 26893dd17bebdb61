// Where the API server is and how to authenticate to it. The two forms a controller meets in
// production and in tests, the in-cluster ServiceAccount and a kubeconfig with a client
// certificate or a token, are read here; anything else a kubeconfig can say (exec plugins, auth
// providers, proxies, basic auth, impersonation, several files in $KUBECONFIG) is handed to
// client-node's KubeConfig, loaded only then. Loading client-node costs about 80 MiB of RSS and
// 25 MiB of heap (its generated models and APIs load with it, whichever one is used), more than
// everything else a pod checking 10 000 addresses keeps, so the common forms do without it.
import { existsSync, readFileSync } from 'node:fs';
import type https from 'node:https';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { load } from 'js-yaml';

/** What the REST client needs: the server, and its TLS material and headers when it asks. */
export interface Connection {
  readonly server: string;
  /** Set only by client-node's loader, whose agent speaks the proxy protocols. */
  readonly proxyUrl?: string;
  /** Fills TLS options and auth headers; asked again at every refresh (tokens rotate). */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
  /** The bearer token, when the user has one (to name the ServiceAccount in messages). */
  token(): string | undefined;
  /** Which loader read it: "in-cluster", "kubeconfig" or "client-node". */
  readonly loader: string;
}

export const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The configuration from an explicit path, else as client-node's loadFromDefault looks for it:
 * $KUBECONFIG, ~/.kube/config, then the in-cluster ServiceAccount.
 */
export async function loadConnection(
  path?: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Connection> {
  const file = path ?? defaultFile(env);
  // Several files in $KUBECONFIG are merged: client-node's rules.
  if (path === undefined && file?.includes(':') === true) return clientNodeConnection(undefined);
  if (file === undefined) {
    const inCluster = inClusterConnection(env);
    if (inCluster !== undefined) return inCluster;
    throw new Error(
      'no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, or run in a cluster',
    );
  }
  return leanKubeconfig(file) ?? clientNodeConnection(file);
}

function defaultFile(env: NodeJS.ProcessEnv): string | undefined {
  if (env.KUBECONFIG !== undefined && env.KUBECONFIG !== '') return env.KUBECONFIG;
  const home = join(homedir(), '.kube', 'config');
  return existsSync(home) ? home : undefined;
}

/** The ServiceAccount the kubelet mounts, with the token read again at every refresh. */
export function inClusterConnection(
  env: NodeJS.ProcessEnv,
  dir = serviceAccountDir,
): Connection | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  const tokenFile = join(dir, 'token');
  if (host === undefined || port === undefined || !existsSync(tokenFile)) return undefined;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  // Read once, as the REST client's agent is built once; the token is read at every refresh.
  const ca = readFileSync(join(dir, 'ca.crt'));
  return {
    server: `https://${hostPart}:${port}`,
    loader: 'in-cluster',
    applyToHTTPSOptions(opts) {
      opts.ca = ca;
      opts.headers = { ...opts.headers, Authorization: `Bearer ${readToken(tokenFile)}` };
      return Promise.resolve();
    },
    token: () => readToken(tokenFile),
  };
}

function readToken(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

type Fields = Record<string, unknown>;

/** The cluster and user keys read here; a kubeconfig with any other is client-node's to read. */
const leanClusterKeys = new Set([
  'server',
  'certificate-authority',
  'certificate-authority-data',
  'insecure-skip-tls-verify',
  'tls-server-name',
]);
const leanUserKeys = new Set([
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
  'token',
  'tokenFile',
]);

/**
 * A kubeconfig file whose current context names a cluster and a user of the forms above, or
 * undefined for anything else (then client-node reads it). Relative paths in it are relative to
 * its own directory, as kubectl reads them.
 */
export function leanKubeconfig(file: string): Connection | undefined {
  const doc = load(readFileSync(file, 'utf8')) as Fields | null;
  if (doc === null || typeof doc !== 'object') return undefined;
  const named = (list: unknown, name: unknown, key: string): Fields | undefined => {
    if (!Array.isArray(list)) return undefined;
    // A name must be a non-empty string: an entry without one matches nothing (client-node
    // refuses such a file, and so does client-node when it reads it instead).
    if (typeof name !== 'string' || name === '') return undefined;
    const entry = (list as Fields[]).find((e) => e.name === name);
    const value = entry?.[key];
    return value !== null && typeof value === 'object' ? (value as Fields) : undefined;
  };
  const context = named(doc.contexts, doc['current-context'], 'context');
  const cluster = named(doc.clusters, context?.cluster, 'cluster');
  // A context without a user is anonymous: client-node's case, like every rarer form.
  const user = named(doc.users, context?.user, 'user');
  // Only https here: client-node refuses plain http unless TLS verification is off, and a bearer
  // token must never go out in the clear because of which loader read the file.
  if (
    cluster === undefined ||
    user === undefined ||
    typeof cluster.server !== 'string' ||
    !cluster.server.startsWith('https://')
  )
    return undefined;
  if (Object.keys(cluster).some((k) => !leanClusterKeys.has(k))) return undefined;
  if (Object.keys(user).some((k) => !leanUserKeys.has(k))) return undefined;
  const base = dirname(file);
  const resolve = (p: unknown): string | undefined =>
    typeof p === 'string' && p !== '' ? (isAbsolute(p) ? p : join(base, p)) : undefined;
  const material = (data: unknown, path: unknown): Buffer | undefined => {
    if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64');
    const p = resolve(path);
    return p === undefined ? undefined : readFileSync(p);
  };
  const server = cluster.server;
  const insecure = cluster['insecure-skip-tls-verify'] === true;
  const serverName = cluster['tls-server-name'];
  const tokenFile = resolve(user.tokenFile);
  const token = (): string | undefined =>
    typeof user.token === 'string' && user.token !== ''
      ? user.token
      : tokenFile !== undefined
        ? readToken(tokenFile)
        : undefined;
  // Read once: the REST client builds its agent once, so a later read would not be used anyway,
  // and a file briefly missing later must not fail every request.
  const ca = material(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = material(user['client-certificate-data'], user['client-certificate']);
  const key = material(user['client-key-data'], user['client-key']);
  return {
    server,
    loader: 'kubeconfig',
    applyToHTTPSOptions(opts) {
      if (ca !== undefined) opts.ca = ca;
      if (cert !== undefined) opts.cert = cert;
      if (key !== undefined) opts.key = key;
      if (insecure) opts.rejectUnauthorized = false;
      if (typeof serverName === 'string' && serverName !== '') opts.servername = serverName;
      const t = token();
      if (t !== undefined) opts.headers = { ...opts.headers, Authorization: `Bearer ${t}` };
      return Promise.resolve();
    },
    token,
  };
}

/** Every other form, read by client-node (loaded now, and only now). */
async function clientNodeConnection(file: string | undefined): Promise<Connection> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (file === undefined) kc.loadFromDefault();
  else kc.loadFromFile(file);
  const cluster = kc.getCurrentCluster();
  if (cluster === null)
    throw new Error(
      'no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, or run in a cluster',
    );
  return {
    server: cluster.server,
    ...(cluster.proxyUrl !== undefined ? { proxyUrl: cluster.proxyUrl } : {}),
    loader: 'client-node',
    applyToHTTPSOptions: (opts) => kc.applyToHTTPSOptions(opts),
    token() {
      const user = kc.getCurrentUser() as { token?: string; tokenFile?: string } | null;
      if (user?.token !== undefined) return user.token;
      return user?.tokenFile !== undefined ? readToken(user.tokenFile) : undefined;
    },
  };
}
