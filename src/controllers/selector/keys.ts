// Which Service keys ("namespace/name") a watch event concerns. Pure: the controller's handlers
// call these and put the keys on the queue; keys.test.ts holds the cases.
import { labelEndpointsManagedBy, managerName } from '../../api/names.ts';
import type { CachedEndpoints, CachedPod, CachedService } from '../../runtime/cached.ts';
import { objectKey } from '../../runtime/keys.ts';
import { isSelectorService } from '../../endpoints/desired.ts';
import { servicesForPodEvent } from '../../endpoints/selector.ts';

/** Whether selector mode covers this namespace. */
export type InScope = (namespace: string) => boolean;

const namespaceOf = (obj: { metadata?: { namespace?: string } } | undefined): string =>
  obj?.metadata?.namespace ?? '';

const ours = (ep: CachedEndpoints | undefined): boolean =>
  ep?.metadata?.labels?.[labelEndpointsManagedBy] === managerName;

/** A Service added, changed or deleted: its own key, when in scope. */
export function serviceKey(svc: CachedService, inScope: InScope): string | undefined {
  return inScope(namespaceOf(svc)) ? objectKey(svc) : undefined;
}

/**
 * A pod added (`oldPod` undefined), changed or deleted (`newPod` undefined): the Services of its
 * namespace whose Endpoints it may change, by upstream's rules (endpoints/selector.ts).
 */
export function podEventKeys(
  oldPod: CachedPod | undefined,
  newPod: CachedPod | undefined,
  inScope: InScope,
  servicesIn: (namespace: string) => readonly CachedService[],
): string[] {
  const ns = namespaceOf(newPod ?? oldPod);
  if (!inScope(ns)) return [];
  return [...servicesForPodEvent(servicesIn(ns), oldPod, newPod)].map((name) => `${ns}/${name}`);
}

/**
 * An Endpoints changed. Unlike upstream, which ignores Endpoints updates, another writer replacing
 * outrigger's managed-by label is a reason to look: that is how a second endpoints controller
 * shows itself (endpoints/conflict.ts), and the reconcile decides what it means.
 */
export function endpointsUpdateKey(
  old: CachedEndpoints,
  ep: CachedEndpoints,
  inScope: InScope,
): string | undefined {
  return ours(old) && !ours(ep) && inScope(namespaceOf(ep)) ? objectKey(ep) : undefined;
}

/** An Endpoints deleted: as upstream, its Service is synced (to recreate it). */
export function endpointsDeleteKey(ep: CachedEndpoints, inScope: InScope): string | undefined {
  return inScope(namespaceOf(ep)) ? objectKey(ep) : undefined;
}

/**
 * At start-up, the Endpoints outrigger manages in scope, so that those whose Service went while it
 * was not running are deleted. Upstream looks at every Endpoints; outrigger touches only its own.
 */
export function startupKeys(endpoints: readonly CachedEndpoints[], inScope: InScope): string[] {
  return endpoints.filter((ep) => ours(ep) && inScope(namespaceOf(ep))).map(objectKey);
}

/**
 * At start-up, from the cache alone: how many Endpoints of selector Services in scope each other
 * controller (by its managed-by label, '' for none) wrote last.
 */
export function otherWriters(
  endpoints: readonly CachedEndpoints[],
  service: (namespace: string, name: string) => CachedService | undefined,
  inScope: InScope,
): Map<string, number> {
  const writers = new Map<string, number>();
  for (const ep of endpoints) {
    const ns = namespaceOf(ep);
    if (ours(ep) || !inScope(ns)) continue;
    const svc = service(ns, ep.metadata?.name ?? '');
    if (svc === undefined || !isSelectorService(svc)) continue;
    const by = ep.metadata?.labels?.[labelEndpointsManagedBy] ?? '';
    writers.set(by, (writers.get(by) ?? 0) + 1);
  }
  return writers;
}
