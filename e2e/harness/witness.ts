// Witnesses for "nothing happened" that do not take outrigger's word for it: what the API server
// itself saw (a watch from the test, resumed from the last resourceVersion it delivered), and a
// positive signal that the operator has caught up before a quiet window is judged.
import { KubernetesObjectApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import { waitFor } from '../helpers.ts';
import type { OperatorProcess } from './operator.ts';

/** The resources a recorder can follow, with where they live in the API. */
const resources = {
  endpoints: {
    apiVersion: 'v1',
    kind: 'Endpoints',
    path: (ns: string) => `/api/v1/namespaces/${ns}/endpoints`,
  },
  endpointslices: {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    path: (ns: string) => `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
  },
  services: {
    apiVersion: 'v1',
    kind: 'Service',
    path: (ns: string) => `/api/v1/namespaces/${ns}/services`,
  },
  events: {
    apiVersion: 'v1',
    kind: 'Event',
    path: (ns: string) => `/api/v1/namespaces/${ns}/events`,
  },
} as const;
export type WatchedResource = keyof typeof resources;

export interface SeenWrite {
  /** When the test received it. */
  readonly at: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly resource: WatchedResource;
  readonly name: string;
  readonly resourceVersion: string;
  /** The field manager of the newest managedFields entry: who made this write. */
  readonly manager: string;
}

export interface WriteRecorder {
  /** Every create, update and delete the API server reported since the recorder started. */
  readonly writes: readonly SeenWrite[];
  /** The writes to objects other than `except`, as `resource/name type manager` for messages. */
  writesExcept(...except: readonly string[]): string[];
  /** Throws if a watch ended in a way that may have lost writes (e.g. 410 Gone). */
  stop(): void;
}

interface Meta {
  name?: string;
  resourceVersion?: string;
  managedFields?: { manager?: string; time?: string }[];
}

/**
 * Starts recording every write to `kinds` in `namespace`: a list for the current resourceVersion,
 * then a watch from it, resumed from the last resourceVersion delivered whenever the server ends
 * it. A write the recorder could not see (a resume refused) makes `stop` throw rather than pass.
 */
export async function recordWrites(
  kc: KubeConfig,
  kinds: readonly WatchedResource[],
  namespace: string,
): Promise<WriteRecorder> {
  const writes: SeenWrite[] = [];
  const lost: string[] = [];
  const controllers: AbortController[] = [];
  let on = true;
  const objects = kc.makeApiClient(KubernetesObjectApi);
  const follow = async (resource: WatchedResource, from: string): Promise<void> => {
    let last = from;
    let refused = false;
    const c = await new Watch(kc).watch(
      resources[resource].path(namespace),
      { allowWatchBookmarks: true, resourceVersion: last },
      (type: string, obj: { metadata?: Meta; code?: number; message?: string }) => {
        if (type === 'ERROR') {
          refused = true;
          lost.push(`${resource}: watch refused: ${JSON.stringify(obj)}`);
          return;
        }
        last = obj.metadata?.resourceVersion ?? last;
        if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return;
        const newest = [...(obj.metadata?.managedFields ?? [])].sort((a, b) =>
          (a.time ?? '').localeCompare(b.time ?? ''),
        );
        writes.push({
          at: Date.now(),
          type,
          resource,
          name: obj.metadata?.name ?? '',
          resourceVersion: last,
          manager: newest.at(-1)?.manager ?? '',
        });
      },
      () => {
        if (!on || refused) return;
        follow(resource, last).catch((e: unknown) =>
          lost.push(`${resource}: resume: ${String(e)}`),
        );
      },
    );
    controllers.push(c);
  };
  for (const resource of kinds) {
    const { apiVersion, kind } = resources[resource];
    const list = await objects.list(apiVersion, kind, namespace);
    await follow(resource, list.metadata?.resourceVersion ?? '');
  }
  return {
    writes,
    writesExcept: (...except) =>
      writes
        .filter((w) => !except.includes(`${w.resource}/${w.name}`))
        .map((w) => `${w.resource}/${w.name} ${w.type} by ${w.manager} at rv ${w.resourceVersion}`),
    stop() {
      on = false;
      for (const c of controllers) c.abort();
      if (lost.length > 0)
        throw new Error(`the write recorder may have missed writes: ${lost.join('; ')}`);
    },
  };
}

/**
 * Waits until `controller` of `op` has nothing queued and nothing in progress. After a marker
 * object's result is visible, this closes the gap the queue's ordering leaves: a key queued before
 * the marker was handed to a worker before it (first come first served within a namespace, and a
 * namespace already waiting has its turn before one that queues later), but with several workers
 * it may still be running when the marker's result appears.
 */
export async function idle(op: OperatorProcess, controller: string): Promise<void> {
  await waitFor(
    `controller ${controller} to be idle`,
    async () =>
      (await op.metric('workqueue_depth', { controller })) === 0 &&
      (await op.metric('controller_runtime_active_workers', { controller })) === 0
        ? true
        : undefined,
    30_000,
    50,
  );
}
