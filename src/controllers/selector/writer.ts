// The API calls selector mode makes: one interface, so that a unit test can pass a fake writer.
import type { V1Endpoints } from '@kubernetes/client-node';
import type { Metrics } from '../../runtime/metrics.ts';
import { objectPath, statusOf, type Rest } from '../../runtime/rest.ts';
import type { Throttle } from '../../runtime/throttle.ts';
import { transformEndpoints } from '../../runtime/transforms.ts';

export interface EndpointsWriter {
  /** Resolves with the object the server stored (its resourceVersion the new one), as cached. */
  create(ep: V1Endpoints): Promise<V1Endpoints>;
  update(ep: V1Endpoints): Promise<V1Endpoints>;
  /** Resolves false when there was nothing to delete. */
  delete(namespace: string, name: string): Promise<boolean>;
}

const endpoints = (namespace: string, name?: string): string =>
  objectPath('/api/v1', 'endpoints', namespace, name);

/**
 * The writer against the API server: every call waits its turn in the shared write budget. The
 * Endpoints go out as the JSON they are and come back as the informer would cache them.
 */
export function endpointsWriter(rest: Rest, metrics: Metrics, throttle: Throttle): EndpointsWriter {
  const count = async (operation: string): Promise<void> => {
    await throttle.acquire();
    metrics.endpointWrites.inc({ kind: 'Endpoints', operation });
  };
  return {
    async create(ep) {
      await count('create');
      const ns = ep.metadata?.namespace ?? '';
      return transformEndpoints(await rest.request('POST', endpoints(ns), { body: ep }));
    },
    async update(ep) {
      await count('update');
      const path = endpoints(ep.metadata?.namespace ?? '', ep.metadata?.name ?? '');
      return transformEndpoints(await rest.request('PUT', path, { body: ep }));
    },
    async delete(namespace, name) {
      await count('delete');
      try {
        await rest.request('DELETE', endpoints(namespace, name));
        return true;
      } catch (err) {
        if (statusOf(err) === 404) return false;
        throw err;
      }
    },
  };
}
