// Installs the generated ExternalBackend CRD as users do (kubectl server-side apply; client-node
// re-serializes CRD bodies through its typed models, which drop x-kubernetes-* keys given in their
// wire form) and waits until the resource is served.
import { spawnSync } from 'node:child_process';
import { ApiextensionsV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { crdPath } from '../../src/externalbackend/render.ts';
import { group, plural, version } from '../../src/externalbackend/schema.ts';
import { waitFor } from '../helpers.ts';
import { ensureBinaries } from './binaries.ts';

export async function installCrd(kubeconfigPath: string): Promise<void> {
  const kubectl = ensureBinaries().kubectl;
  if (kubectl === undefined) throw new Error('kubectl is needed to install the CRD');
  const applied = spawnSync(
    kubectl,
    [
      `--kubeconfig=${kubeconfigPath}`,
      'apply',
      '--server-side',
      '--force-conflicts',
      '-f',
      crdPath,
    ],
    { encoding: 'utf8' },
  );
  if (applied.status !== 0) throw new Error(`kubectl apply of the CRD failed: ${applied.stderr}`);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const name = `${plural}.${group}`;
  await waitFor('the CRD to be established', async () => {
    const c = await ext.readCustomResourceDefinition({ name });
    return c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True')
      ? true
      : undefined;
  });
  // The resource is served a moment after the CRD reports Established.
  const objects = kc.makeApiClient(CustomObjectsApi);
  await waitFor('the ExternalBackend resource to be served', async () => {
    await objects.listClusterCustomObject({ group, version, plural, limit: 1 });
    return true;
  });
}
