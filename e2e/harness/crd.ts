// Installs the generated CRDs as users do (kubectl server-side apply; client-node re-serializes CRD
// bodies through its typed models, which drop x-kubernetes-* keys given in their wire form) and
// waits until the resources are served; then, unless told otherwise, an ExternalBackendPolicy that
// allows every address (suites about other things; the deny list still applies).
import { spawnSync } from 'node:child_process';
import { ApiextensionsV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { crdPath } from '../../src/manager/render.ts';
import { group, plural, version } from '../../src/api/externalbackend.ts';
import { policyKind, policyName, policyPlural } from '../../src/api/policy.ts';
import { proberReportPlural } from '../../src/api/proberreport.ts';
import { waitFor } from '../helpers.ts';
import { ensureBinaries } from './binaries.ts';

export const policyCrdPath = crdPath.replace(
  'externalbackends.yaml',
  'externalbackendpolicies.yaml',
);

export const proberReportCrdPath = crdPath.replace('externalbackends.yaml', 'proberreports.yaml');

/** A policy that lets every namespace register any address the deny list allows. */
export const allowAllPolicy = {
  apiVersion: `${group}/${version}`,
  kind: policyKind,
  metadata: { name: policyName },
  spec: { rules: [{ name: 'e2e-allow-all', namespaceSelector: {}, cidrs: ['0.0.0.0/0', '::/0'] }] },
};

/** kubectl of the control plane's version, with `args`; throws with its stderr on failure. */
export function kubectl(kubeconfigPath: string, args: readonly string[], input?: string): string {
  const bin = ensureBinaries().kubectl;
  if (bin === undefined) throw new Error('kubectl is needed');
  const r = spawnSync(bin, [`--kubeconfig=${kubeconfigPath}`, ...args], {
    encoding: 'utf8',
    ...(input !== undefined ? { input } : {}),
  });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

export async function installCrd(
  kubeconfigPath: string,
  o: { allowAllAddresses?: boolean } = {},
): Promise<void> {
  for (const file of [crdPath, policyCrdPath, proberReportCrdPath]) {
    try {
      kubectl(kubeconfigPath, ['apply', '--server-side', '--force-conflicts', '-f', file]);
    } catch (err) {
      throw new Error(`kubectl apply of the CRD failed: ${String(err)}`, { cause: err });
    }
  }
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  for (const p of [plural, policyPlural, proberReportPlural]) {
    const name = `${p}.${group}`;
    await waitFor(`the CRD ${name} to be established`, async () => {
      const c = await ext.readCustomResourceDefinition({ name });
      return c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True')
        ? true
        : undefined;
    });
    // The resource is served a moment after the CRD reports Established.
    const objects = kc.makeApiClient(CustomObjectsApi);
    await waitFor(`${p} to be served`, async () => {
      await objects.listClusterCustomObject({ group, version, plural: p, limit: 1 });
      return true;
    });
  }
  if (o.allowAllAddresses ?? true)
    kubectl(
      kubeconfigPath,
      ['apply', '--server-side', '--force-conflicts', '-f', '-'],
      JSON.stringify(allowAllPolicy),
    );
}

/**
 * Creates an ExternalBackendPolicy grant object as a platform team would, retrying until the API
 * server serves the kind (a CRD installed a moment ago, or upgraded) and admits the object.
 */
export async function createGrant(
  kc: KubeConfig,
  name: string,
  rules: readonly Record<string, unknown>[],
): Promise<void> {
  await waitFor(`the grant object ${name} to be admitted`, () =>
    kc.makeApiClient(CustomObjectsApi).createClusterCustomObject({
      group,
      version,
      plural: policyPlural,
      body: {
        apiVersion: `${group}/${version}`,
        kind: policyKind,
        metadata: { name },
        spec: { rules },
      },
    }),
  );
}
