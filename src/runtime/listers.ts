// How the informers list and watch each resource: one ResourceClient per kind, namespaced or
// cluster-wide, some narrowed by a label selector so that only what outrigger needs enters memory.
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';

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
  /** The watch URL path, e.g. /api/v1/pods or /api/v1/namespaces/ns/pods. */
  watchPath(namespace: string | undefined): string;
  /** Extra watch query parameters, e.g. the labelSelector the list uses too. */
  readonly watchQuery?: Readonly<Record<string, string>>;
}

function page<T>(list: {
  items: T[];
  metadata?: { resourceVersion?: string; _continue?: string };
}) {
  return {
    items: list.items,
    resourceVersion: list.metadata?.resourceVersion ?? '',
    // The API server sends "" on the last page.
    continueToken: list.metadata?._continue === '' ? undefined : list.metadata?._continue,
  };
}

function path(resource: string): (ns: string | undefined) => string {
  return (ns) =>
    ns === undefined ? `/api/v1/${resource}` : `/api/v1/namespaces/${ns}/${resource}`;
}

interface Paged {
  limit: number;
  _continue?: string;
}
type Lister = (
  core: CoreV1Api,
  namespace: string | undefined,
  paging: Paged,
) => Promise<{ items: unknown[]; metadata?: { resourceVersion?: string; _continue?: string } }>;

function coreClient(kc: KubeConfig, resource: string, list: Lister): ResourceClient<unknown> {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    list: async (namespace, limit, _continue) =>
      page(await list(core, namespace, { limit, ...(_continue ? { _continue } : {}) })),
    watchPath: path(resource),
  };
}

/** EndpointSlices, only those matching `labelSelector` (so not every slice in the cluster). */
export const endpointSliceClient = (
  kc: KubeConfig,
  labelSelector: string,
): ResourceClient<unknown> => {
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  return {
    watchQuery: { labelSelector },
    list: async (namespace, limit, _continue) => {
      const p = { limit, labelSelector, ...(_continue ? { _continue } : {}) };
      return page(
        namespace === undefined
          ? await discovery.listEndpointSliceForAllNamespaces(p)
          : await discovery.listNamespacedEndpointSlice({ namespace, ...p }),
      );
    },
    watchPath: (ns) =>
      ns === undefined
        ? '/apis/discovery.k8s.io/v1/endpointslices'
        : `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
  };
};

/** Lists and watches a custom resource, e.g. outrigger.dev/v1alpha1 externalbackends. */
export const customObjectClient = (
  kc: KubeConfig,
  group: string,
  version: string,
  plural: string,
): ResourceClient<unknown> => {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return {
    list: async (namespace, limit, _continue) => {
      const p = { group, version, plural, limit, ...(_continue ? { _continue } : {}) };
      const list = (
        namespace === undefined
          ? await custom.listClusterCustomObject(p)
          : await custom.listNamespacedCustomObject({ namespace, ...p })
      ) as { items?: unknown[]; metadata?: { resourceVersion?: string; continue?: string } };
      // Custom object lists arrive as plain JSON: `continue`, not the typed models' `_continue`.
      return page({
        items: list.items ?? [],
        metadata: {
          ...(list.metadata?.resourceVersion !== undefined
            ? { resourceVersion: list.metadata.resourceVersion }
            : {}),
          ...(list.metadata?.continue !== undefined ? { _continue: list.metadata.continue } : {}),
        },
      });
    },
    watchPath: (ns) =>
      ns === undefined
        ? `/apis/${group}/${version}/${plural}`
        : `/apis/${group}/${version}/namespaces/${ns}/${plural}`,
  };
};

/**
 * Secrets or ConfigMaps, only those matching `labelSelector`: health checks may read only objects
 * labelled for them (see probeRefLabel), and no other Secret ever enters memory.
 */
export const probeSourceClient = (
  kc: KubeConfig,
  resource: 'secrets' | 'configmaps',
  labelSelector: string,
): ResourceClient<unknown> => {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    watchQuery: { labelSelector },
    list: async (namespace, limit, _continue) => {
      const p = { limit, labelSelector, ...(_continue ? { _continue } : {}) };
      if (resource === 'secrets')
        return page(
          namespace === undefined
            ? await core.listSecretForAllNamespaces(p)
            : await core.listNamespacedSecret({ namespace, ...p }),
        );
      return page(
        namespace === undefined
          ? await core.listConfigMapForAllNamespaces(p)
          : await core.listNamespacedConfigMap({ namespace, ...p }),
      );
    },
    watchPath: path(resource),
  };
};

export const podClient = (kc: KubeConfig): ResourceClient<unknown> =>
  coreClient(kc, 'pods', (core, namespace, p) =>
    namespace === undefined
      ? core.listPodForAllNamespaces(p)
      : core.listNamespacedPod({ namespace, ...p }),
  );

export const serviceClient = (kc: KubeConfig): ResourceClient<unknown> =>
  coreClient(kc, 'services', (core, namespace, p) =>
    namespace === undefined
      ? core.listServiceForAllNamespaces(p)
      : core.listNamespacedService({ namespace, ...p }),
  );

export const endpointsClient = (kc: KubeConfig): ResourceClient<unknown> =>
  coreClient(kc, 'endpoints', (core, namespace, p) =>
    namespace === undefined
      ? core.listEndpointsForAllNamespaces(p)
      : core.listNamespacedEndpoints({ namespace, ...p }),
  );

export const nodeClient = (kc: KubeConfig): ResourceClient<unknown> =>
  coreClient(kc, 'nodes', (core, _namespace, p) => core.listNode(p));

export const namespaceClient = (kc: KubeConfig): ResourceClient<unknown> =>
  coreClient(kc, 'namespaces', (core, _namespace, p) => core.listNamespace(p));
