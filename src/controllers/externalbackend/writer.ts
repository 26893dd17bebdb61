// The API calls the ExternalBackend reconciler makes. Creation is a plain create (POST), so that an
// object someone else made a moment ago, not yet in our cache, fails with AlreadyExists instead of
// being merged into; changes to objects we own are server-side applies, which replace only the fields
// outrigger sets and leave everything else (other managers' labels, annotations) alone.
import type {
  V1EndpointSlice,
  V1Endpoints,
  V1Service,
  V1ServicePort,
} from '@kubernetes/client-node';
import { group, plural, version } from '../../api/externalbackend.ts';
import type { ExternalBackendStatus } from '../../api/externalbackendstatus.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import { objectPath, statusOf, type Rest } from '../../runtime/rest.ts';
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
  return statusOf(err) === 404;
}

export function isAlreadyExists(err: unknown): boolean {
  return statusOf(err) === 409;
}

/** A precondition (resourceVersion) failed: same status code as AlreadyExists, for writes. */
export const isConflict = isAlreadyExists;

const paths: Record<OwnedKind, { prefix: string; resource: string }> = {
  Service: { prefix: '/api/v1', resource: 'services' },
  Endpoints: { prefix: '/api/v1', resource: 'endpoints' },
  EndpointSlice: { prefix: '/apis/discovery.k8s.io/v1', resource: 'endpointslices' },
};

const pathOf = (kind: OwnedKind, namespace: string, name?: string): string =>
  objectPath(paths[kind].prefix, paths[kind].resource, namespace, name);

export const applyPatch = 'application/apply-patch+yaml';
const mergePatch = 'application/merge-patch+json';

interface Versioned {
  readonly metadata?: { readonly resourceVersion?: unknown };
}

const versionOf = (out: Versioned | undefined): string | undefined => {
  const rv = out?.metadata?.resourceVersion;
  return typeof rv === 'string' ? rv : undefined;
};

/** The writer on the lean client: objects go out as the JSON they are (see runtime/rest.ts). */
export function backendWriter(rest: Rest, metrics: Metrics, throttle: Throttle): BackendWriter {
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
      await rest.request('POST', pathOf(kind, where(obj).namespace), {
        query: { fieldManager },
        body: obj,
      });
    },
    async apply(kind, obj) {
      await count(kind, 'apply');
      const { namespace, name } = where(obj);
      // The desired objects name their apiVersion and kind, as server-side apply requires.
      return versionOf(
        await rest.request<Versioned>('PATCH', pathOf(kind, namespace, name), {
          query: { fieldManager, force: 'true' },
          body: obj,
          contentType: applyPatch,
        }),
      );
    },
    async setServicePorts(namespace, name, ports) {
      await count('Service', 'patch');
      await rest.request('PATCH', pathOf('Service', namespace, name), {
        query: { fieldManager },
        body: { spec: { ports } },
        contentType: mergePatch,
      });
    },
    async removeAnnotation(kind, namespace, name, key) {
      await count(kind, 'patch');
      return versionOf(
        await rest.request<Versioned>('PATCH', pathOf(kind, namespace, name), {
          query: { fieldManager },
          body: { metadata: { annotations: { [key]: null } } },
          contentType: mergePatch,
        }),
      );
    },
    async delete(kind, namespace, name, uid) {
      await count(kind, 'delete');
      try {
        await rest.request('DELETE', pathOf(kind, namespace, name), {
          body: { preconditions: { uid } },
        });
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },
    async findSlice(namespace, name) {
      const list = await rest.request<{ items?: V1EndpointSlice[] | null }>(
        'GET',
        pathOf('EndpointSlice', namespace),
        { query: { fieldSelector: `metadata.name=${name}` } },
      );
      return list.items?.[0];
    },
    async patchStatus(namespace, name, status) {
      await count('ExternalBackendStatus', 'patch');
      const path = `${objectPath(`/apis/${group}/${version}`, plural, namespace, name)}/status`;
      return versionOf(
        await rest.request<Versioned>('PATCH', path, {
          query: { fieldManager },
          body: { status },
          contentType: mergePatch,
        }),
      );
    },
  };
}
