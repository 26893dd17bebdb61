// The API calls selector mode makes: one interface, so that a unit test can pass a fake writer.
import {
  ApiException,
  CoreV1Api,
  type KubeConfig,
  type V1Endpoints,
} from '@kubernetes/client-node';
import type { Metrics } from '../../runtime/metrics.ts';
import type { Throttle } from '../../runtime/throttle.ts';

export interface EndpointsWriter {
  /** Resolves with the object the server stored (its resourceVersion the new one). */
  create(ep: V1Endpoints): Promise<V1Endpoints>;
  update(ep: V1Endpoints): Promise<V1Endpoints>;
  /** Resolves false when there was nothing to delete. */
  delete(namespace: string, name: string): Promise<boolean>;
}

/** The writer against the API server: every call waits its turn in the shared write budget. */
export function endpointsWriter(
  kc: KubeConfig,
  metrics: Metrics,
  throttle: Throttle,
): EndpointsWriter {
  const core = kc.makeApiClient(CoreV1Api);
  const count = async (operation: string): Promise<void> => {
    await throttle.acquire();
    metrics.endpointWrites.inc({ kind: 'Endpoints', operation });
  };
  return {
    async create(ep) {
      await count('create');
      return core.createNamespacedEndpoints({ namespace: ep.metadata?.namespace ?? '', body: ep });
    },
    async update(ep) {
      await count('update');
      return core.replaceNamespacedEndpoints({
        name: ep.metadata?.name ?? '',
        namespace: ep.metadata?.namespace ?? '',
        body: ep,
      });
    },
    async delete(namespace, name) {
      await count('delete');
      try {
        await core.deleteNamespacedEndpoints({ name, namespace });
        return true;
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return false;
        throw err;
      }
    },
  };
}
