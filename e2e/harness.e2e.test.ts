// Proves the local control plane behaves like a real cluster for what outrigger needs: admission-time
// CEL validation of custom resources, and Pods whose readiness tests drive through the status
// subresource (there is no kubelet).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
} from '@kubernetes/client-node';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { apiError, createTestNamespace, waitFor } from './helpers.ts';

let cluster: Cluster;
let kc: KubeConfig;

beforeAll(async () => {
  cluster = await startCluster();
  kc = cluster.kubeConfig();
}, 180_000);

afterAll(async () => {
  await cluster.stop();
});

describe('custom resources', () => {
  const group = 'harness.outrigger.dev';
  const crdName = `widgets.${group}`;

  beforeAll(async () => {
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name: crdName },
        spec: {
          group,
          scope: 'Namespaced',
          names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    spec: {
                      type: 'object',
                      required: ['min', 'max'],
                      properties: { min: { type: 'integer' }, max: { type: 'integer' } },
                      x_kubernetes_validations: [
                        { rule: 'self.min <= self.max', message: 'min must not exceed max' },
                      ],
                    },
                  },
                },
              },
            },
          ],
        },
      },
    });
    await waitFor('the CRD to be established', async () => {
      const crd = await ext.readCustomResourceDefinition({ name: crdName });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')
        ? true
        : undefined;
    });
  }, 60_000);

  it('rejects an object that breaks a CEL rule, with the rule message, and accepts a valid one', async () => {
    const ns = await createTestNamespace(kc, 'crd');
    const objects = kc.makeApiClient(CustomObjectsApi);
    const create = (name: string, min: number, max: number): Promise<unknown> =>
      objects.createNamespacedCustomObject({
        group,
        version: 'v1',
        namespace: ns,
        plural: 'widgets',
        body: { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name }, spec: { min, max } },
      });
    // A new CRD's REST endpoint can take a moment to appear after Established.
    const err = await waitFor('the CEL rule to reject an invalid Widget', async () => {
      const e = await apiError(create('bad', 5, 1));
      return e.code === 422 ? e : undefined;
    });
    expect(err.message).toContain('min must not exceed max');
    await expect(create('good', 1, 5)).resolves.toMatchObject({ spec: { min: 1, max: 5 } });
  });
});

describe('pods without a kubelet', () => {
  it('accepts a Pod bound to a node and reads back status written through the status subresource', async () => {
    const ns = await createTestNamespace(kc, 'pods');
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'web', labels: { app: 'web' } },
        spec: {
          nodeName: 'node-a',
          containers: [{ name: 'web', image: 'registry.invalid/web:1' }],
        },
      },
    });
    const pod = await core.readNamespacedPod({ name: 'web', namespace: ns });
    const now = new Date();
    await core.replaceNamespacedPodStatus({
      name: 'web',
      namespace: ns,
      body: {
        ...pod,
        status: {
          phase: 'Running',
          podIP: '10.244.0.5',
          podIPs: [{ ip: '10.244.0.5' }],
          conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
        },
      },
    });
    const back = await core.readNamespacedPod({ name: 'web', namespace: ns });
    expect(back.spec?.nodeName).toBe('node-a');
    expect(back.status?.podIP).toBe('10.244.0.5');
    expect(back.status?.phase).toBe('Running');
    expect(back.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });
});
