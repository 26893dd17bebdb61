// How the informers list and watch each resource: one ResourceClient per kind, namespaced or
// cluster-wide, some narrowed by a label selector so that only what outrigger needs enters memory.
// Lists go through the lean client (rest.ts): a page of 500 pods arrives as JSON and goes to the
// informer's transform as parsed, with no typed-model round trip.
import type { Rest, WatchRequest } from './rest.ts';

export interface ListPage<T> {
  readonly items: readonly T[];
  readonly resourceVersion: string;
  readonly continueToken: string | undefined;
}

export interface ResourceClient<T> {
  /** Lists one page, cluster-wide when `namespace` is undefined. */
  list(
    namespace: string | undefined,
    limit: number,
    continueToken: string | undefined,
  ): Promise<ListPage<T>>;
  /**
   * Watches the same objects the list gives (the same scope and label selector); `w.query` says
   * from which resourceVersion and how.
   */
  watch(namespace: string | undefined, w: WatchRequest): Promise<void>;
}

interface ListBody {
  readonly items?: unknown[] | null;
  readonly metadata?: { resourceVersion?: string; continue?: string };
}

/**
 * A list+watch client of one resource at `prefix` (/api/v1 or /apis/<group>/<version>), its
 * objects in namespaces unless `clusterScoped`, narrowed by `labelSelector` when given.
 */
function resourceClient(
  rest: Rest,
  prefix: string,
  resource: string,
  labelSelector?: string,
): ResourceClient<unknown> {
  const pathOf = (ns: string | undefined): string =>
    ns === undefined ? `${prefix}/${resource}` : `${prefix}/namespaces/${ns}/${resource}`;
  return {
    async list(namespace, limit, continueToken) {
      const body = await rest.request<ListBody>('GET', pathOf(namespace), {
        query: { limit, continue: continueToken, labelSelector },
      });
      const next = body.metadata?.continue;
      return {
        items: body.items ?? [],
        resourceVersion: body.metadata?.resourceVersion ?? '',
        // The API server sends "" (or nothing) on the last page.
        continueToken: next === undefined || next === '' ? undefined : next,
      };
    },
    watch: (namespace, w) =>
      rest.watch(pathOf(namespace), { ...w, query: { ...w.query, labelSelector } }),
  };
}

/** EndpointSlices, only those matching `labelSelector` (so not every slice in the cluster). */
export const endpointSliceClient = (rest: Rest, labelSelector: string): ResourceClient<unknown> =>
  resourceClient(rest, '/apis/discovery.k8s.io/v1', 'endpointslices', labelSelector);

/** Lists and watches a custom resource, e.g. outrigger.dev/v1alpha1 externalbackends. */
export const customObjectClient = (
  rest: Rest,
  group: string,
  version: string,
  plural: string,
): ResourceClient<unknown> => resourceClient(rest, `/apis/${group}/${version}`, plural);

/**
 * Secrets or ConfigMaps, only those matching `labelSelector`: health checks may read only objects
 * labelled for them (see probeRefLabel), and no other Secret ever enters memory.
 */
export const probeSourceClient = (
  rest: Rest,
  resource: 'secrets' | 'configmaps',
  labelSelector: string,
): ResourceClient<unknown> => resourceClient(rest, '/api/v1', resource, labelSelector);

export const podClient = (rest: Rest): ResourceClient<unknown> =>
  resourceClient(rest, '/api/v1', 'pods');

export const serviceClient = (rest: Rest): ResourceClient<unknown> =>
  resourceClient(rest, '/api/v1', 'services');

export const endpointsClient = (rest: Rest): ResourceClient<unknown> =>
  resourceClient(rest, '/api/v1', 'endpoints');

/** Cluster-scoped: the namespace argument is never given. */
export const nodeClient = (rest: Rest): ResourceClient<unknown> =>
  resourceClient(rest, '/api/v1', 'nodes');

export const namespaceClient = (rest: Rest): ResourceClient<unknown> =>
  resourceClient(rest, '/api/v1', 'namespaces');
