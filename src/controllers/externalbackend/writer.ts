// The API calls the ExternalBackend reconciler makes. Creation is a plain create (POST), so that an
// object someone else made a moment ago, not yet in our cache, fails with AlreadyExists instead of
// being merged into; changes to objects we own are server-side applies, which replace only the fields
// outrigger sets and leave everything else (other managers' labels, annotations) alone.
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1EndpointSlice,
  type V1Endpoints,
  type V1Service,
  type V1ServicePort,
} from '@kubernetes/client-node';
import { group, plural, version } from '../../api/externalbackend.ts';
import { type ExternalBackendStatus } from '../../api/externalbackendstatus.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import type { Throttle } from '../../runtime/throttle.ts';

export const fieldManager = 'outrigger';

export type OwnedKind = 'Service' | 'Endpoints' | 'EndpointSlice';

export interface BackendWriter {
  create(kind: OwnedKind, obj: V1Service | V1Endpoints | V1EndpointSlice): Promise<void>;
  /**
   * Server-side apply, forced: only for the Endpoints and EndpointSlices the backend owns. Resolves
   * with the resourceVersion the object has afterwards.
   */
  apply(
    kind: 'Endpoints' | 'EndpointSlice',
    obj: V1Endpoints | V1EndpointSlice,
  ): Promise<string | undefined>;
  /**
   * Replaces the ports of a Service the backend owns (a merge patch: the list is replaced whole,
   * where an apply would keep ports the create recorded under another operation).
   */
  setServicePorts(namespace: string, name: string, ports: V1ServicePort[]): Promise<void>;
  /**
   * Removes one annotation of an Endpoints outrigger owns (a JSON merge patch); resolves with the
   * resourceVersion afterwards.
   */
  removeAnnotation(
    kind: 'Endpoints',
    namespace: string,
    name: string,
    key: string,
  ): Promise<string | undefined>;
  /** Deletes only the object with this uid; false when it was already gone. */
  delete(kind: OwnedKind, namespace: string, name: string, uid: string): Promise<boolean>;
  /**
   * Merge-patches the status; resolves with the resourceVersion the backend has afterwards, which
   * the mutation cache remembers until the watch delivers it.
   */
  patchStatus(
    namespace: string,
    name: string,
    status: ExternalBackendStatus,
  ): Promise<string | undefined>;
  /**
   * The EndpointSlice of that name as the API server has it, whoever manages it: the reconciler's
   * slice cache holds only slices with outrigger's label, so a create that finds one already there
   * asks what it is. A list by name, which the operator's RBAC has (it has no `get`).
   */
  findSlice(namespace: string, name: string): Promise<V1EndpointSlice | undefined>;
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

export function isAlreadyExists(err: unknown): boolean {
  return err instanceof ApiException && err.code === 409;
}

/** A precondition (resourceVersion) failed: same status code as AlreadyExists, for writes. */
export const isConflict = isAlreadyExists;

export function backendWriter(kc: KubeConfig, metrics: Metrics, throttle: Throttle): BackendWriter {
  const core = kc.makeApiClient(CoreV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const applyOptions = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
  const mergeOptions = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const count = async (kind: OwnedKind | 'ExternalBackendStatus', operation: string) => {
    await throttle.acquire();
    metrics.endpointWrites.inc({ kind, operation });
  };
  const where = (obj: { metadata?: { name?: string; namespace?: string } }) => ({
    name: obj.metadata?.name ?? '',
    namespace: obj.metadata?.namespace ?? '',
  });
  return {
    async create(kind, obj) {
      await count(kind, 'create');
      const { namespace } = where(obj);
      if (kind === 'Service')
        await core.createNamespacedService({ namespace, body: obj, fieldManager });
      else if (kind === 'Endpoints')
        await core.createNamespacedEndpoints({ namespace, body: obj, fieldManager });
      else
        await discovery.createNamespacedEndpointSlice({
          namespace,
          body: obj as V1EndpointSlice,
          fieldManager,
        });
    },
    async apply(kind, obj) {
      await count(kind, 'apply');
      const params = { ...where(obj), body: obj, fieldManager, force: true };
      const out =
        kind === 'Endpoints'
          ? await core.patchNamespacedEndpoints(params, applyOptions)
          : await discovery.patchNamespacedEndpointSlice(params, applyOptions);
      return out.metadata?.resourceVersion;
    },
    async setServicePorts(namespace, name, ports) {
      await count('Service', 'patch');
      await core.patchNamespacedService(
        { namespace, name, body: { spec: { ports } }, fieldManager },
        mergeOptions,
      );
    },
    async removeAnnotation(kind, namespace, name, key) {
      await count(kind, 'patch');
      const out = await core.patchNamespacedEndpoints(
        { namespace, name, body: { metadata: { annotations: { [key]: null } } }, fieldManager },
        mergeOptions,
      );
      return out.metadata?.resourceVersion;
    },
    async delete(kind, namespace, name, uid) {
      await count(kind, 'delete');
      const params = { name, namespace, body: { preconditions: { uid } } };
      try {
        if (kind === 'Service') await core.deleteNamespacedService(params);
        else if (kind === 'Endpoints') await core.deleteNamespacedEndpoints(params);
        else await discovery.deleteNamespacedEndpointSlice(params);
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },
    async findSlice(namespace, name) {
      const list = await discovery.listNamespacedEndpointSlice({
        namespace,
        fieldSelector: `metadata.name=${name}`,
      });
      return list.items[0];
    },
    async patchStatus(namespace, name, status) {
      await count('ExternalBackendStatus', 'patch');
      const out = (await custom.patchNamespacedCustomObjectStatus(
        { group, version, plural, namespace, name, body: { status }, fieldManager },
        mergeOptions,
      )) as { metadata?: { resourceVersion?: unknown } } | null;
      const rv = out?.metadata?.resourceVersion;
      return typeof rv === 'string' ? rv : undefined;
    },
  };
}
