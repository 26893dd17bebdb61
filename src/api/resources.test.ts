import { describe, expect, it } from '@jest/globals';
import { transformExternalBackend } from './resources.ts';

const managedFields = [{ manager: 'kubelet', operation: 'Update', time: '2026-01-01T00:00:00Z' }];

describe('the ExternalBackend as cached', () => {
  it('keeps the annotations an ExternalBackend is steered by, and drops the rest', () => {
    const xb = transformExternalBackend({
      metadata: {
        name: 'etcd-k8s',
        namespace: 'kube-system',
        generation: 2,
        annotations: {
          'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(1000),
          'outrigger.dev/drain': '192.0.2.10',
          'outrigger.dev/adopt-endpoints': 'true',
        },
        managedFields,
      },
      spec: {},
    });
    expect(xb.metadata?.annotations).toEqual({
      'outrigger.dev/drain': '192.0.2.10',
      'outrigger.dev/adopt-endpoints': 'true',
    });
    expect(
      transformExternalBackend({ metadata: { name: 'x', annotations: { a: 'b' } } }).metadata
        ?.annotations,
    ).toBeUndefined();
  });
});
