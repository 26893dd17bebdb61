// Reading kube-apiserver's own counters, so that writes are counted the same way for any controller.
import { request } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

function get(kc: KubeConfig, path: string): Promise<string> {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (cluster === null || user === null)
    return Promise.reject(new Error('kubeconfig has no cluster or user'));
  const url = new URL(path, cluster.server);
  const b64 = (s: string | undefined): string | undefined =>
    s === undefined ? undefined : Buffer.from(s, 'base64').toString();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'GET',
        agent: false,
        ...(cluster.caData !== undefined ? { ca: b64(cluster.caData) } : {}),
        ...(user.certData !== undefined ? { cert: b64(user.certData) } : {}),
        ...(user.keyData !== undefined ? { key: b64(user.keyData) } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          resolve(body);
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The API server's /metrics text. */
export function apiServerMetrics(kc: KubeConfig): Promise<string> {
  return get(kc, '/metrics');
}

/** Mutating requests the API server has served for a resource (create, update, patch, delete). */
export async function writesTo(kc: KubeConfig, resource: string): Promise<number> {
  const text = await get(kc, '/metrics');
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    if (
      !line.includes(`resource="${resource}"`) ||
      !/verb="(POST|PUT|PATCH|DELETE|CREATE|UPDATE|APPLY)"/.test(line)
    )
      continue;
    if (!line.includes('subresource=""') && line.includes('subresource="')) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
