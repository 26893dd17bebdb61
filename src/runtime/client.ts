import { readFileSync } from 'node:fs';
import {
  IsomorphicFetchHttpLibrary,
  ServerConfiguration,
  createConfiguration,
  setHeaderMiddleware,
  wrapHttpLibrary,
  KubeConfig,
  VersionApi,
  type VersionInfo,
} from '@kubernetes/client-node';

/**
 * Loads the client configuration: an explicit --kubeconfig path, else client-node's default chain
 * ($KUBECONFIG, ~/.kube/config, then the in-cluster service account).
 */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path === undefined) kc.loadFromDefault();
  else kc.loadFromFile(path);
  if (kc.getCurrentCluster() === null) {
    throw new Error(
      'no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, or run in a cluster',
    );
  }
  return kc;
}

/** The namespace this pod runs in (from its service account), or undefined outside a cluster. */
export function inClusterNamespace(
  path = '/var/run/secrets/kubernetes.io/serviceaccount/namespace',
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
export function serviceAccountOf(kc: KubeConfig): string | undefined {
  const user = kc.getCurrentUser() as { token?: string; tokenFile?: string } | null;
  let token = user?.token;
  try {
    if (token === undefined && user?.tokenFile !== undefined)
      token = readFileSync(user.tokenFile, 'utf8').trim();
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

/** Told about every API request a client made: its method and status code ("<error>" if none). */
export type RequestObserver = (method: string, code: string, seconds: number, host: string) => void;

/**
 * A KubeConfig whose API clients report each request, for client-go's rest_client_requests_total.
 * client-node offers no hook for responses with their request's method, so its default HTTP library
 * is wrapped; the rest of makeApiClient is as client-node's own. The lean client (rest.ts) reports
 * to the same observer; watches are not counted (their restarts are
 * outrigger_informer_watch_restarts_total).
 */
export function observeRequests(
  kc: KubeConfig,
  observe: RequestObserver,
  userAgent: string,
): KubeConfig {
  const inner = new IsomorphicFetchHttpLibrary();
  const httpApi = wrapHttpLibrary({
    async send(request) {
      const method = request.getHttpMethod();
      const host = new URL(request.getUrl()).host;
      const started = performance.now();
      const seconds = () => (performance.now() - started) / 1000;
      try {
        const response = await inner.send(request).toPromise();
        observe(method, String(response.httpStatusCode), seconds(), host);
        return response;
      } catch (err) {
        observe(method, '<error>', seconds(), host);
        throw err;
      }
    },
  });
  // Every other property and method is the original's.
  const observed = Object.create(kc) as KubeConfig;
  const make = (api: new (config: ReturnType<typeof createConfiguration>) => unknown): unknown => {
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new Error('no active cluster');
    return new api(
      createConfiguration({
        baseServer: new ServerConfiguration(cluster.server, {}),
        authMethods: { default: kc },
        httpApi,
        middleware: [setHeaderMiddleware('User-Agent', userAgent)],
      }),
    );
  };
  observed.makeApiClient = make as KubeConfig['makeApiClient'];
  return observed;
}

export async function serverVersion(kc: KubeConfig): Promise<VersionInfo> {
  return kc.makeApiClient(VersionApi).getCode();
}
