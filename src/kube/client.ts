import { readFileSync } from 'node:fs';
import { KubeConfig, VersionApi, type VersionInfo } from '@kubernetes/client-node';

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

export async function serverVersion(kc: KubeConfig): Promise<VersionInfo> {
  return kc.makeApiClient(VersionApi).getCode();
}
