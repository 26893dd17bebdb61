import type { CachedPod, CachedService } from '../runtime/cached.ts';
import { isPodReady } from './pod.ts';
import { selectorMatches, type Labels } from '../runtime/labels.ts';

function sameLabels(a: Labels | undefined, b: Labels | undefined): boolean {
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => a?.[k] === b?.[k]);
}

function samePodIPs(a: CachedPod, b: CachedPod): boolean {
  const ia = a.status?.podIPs ?? [];
  const ib = b.status?.podIPs ?? [];
  return ia.length === ib.length && ia.every((ip, i) => ip.ip === ib[i]?.ip);
}

/**
 * Which Services a pod event concerns, by upstream's rules (endpointslice/util
 * GetPodUpdateProjectionKey and GetServicesToUpdate): on add or delete, every Service selecting the
 * pod; on update, nothing unless readiness, IPs, deletion or labels changed; with changed labels,
 * the Services of both label sets if the pod also changed, else only those whose membership changed.
 * Returns service names in the pod's namespace.
 */
export function servicesForPodEvent(
  services: readonly CachedService[],
  oldPod: CachedPod | undefined,
  newPod: CachedPod | undefined,
): Set<string> {
  const matching = (labels: Labels | undefined): Set<string> => {
    const out = new Set<string>();
    for (const s of services) {
      if (selectorMatches(s.spec?.selector, labels)) out.add(s.metadata?.name ?? '');
    }
    return out;
  };
  if (newPod === undefined)
    return oldPod === undefined ? new Set() : matching(oldPod.metadata?.labels);
  if (oldPod === undefined) return matching(newPod.metadata?.labels);
  if (newPod.metadata?.resourceVersion === oldPod.metadata?.resourceVersion) return new Set();

  const labelsChanged =
    !sameLabels(oldPod.metadata?.labels, newPod.metadata?.labels) ||
    oldPod.spec?.hostname !== newPod.spec?.hostname ||
    oldPod.spec?.subdomain !== newPod.spec?.subdomain;
  // Upstream compares the deletionTimestamp *pointers* of two decoded objects, so any pod that is
  // being deleted counts as changed on every update; kept for identical sync behaviour.
  const podChanged =
    oldPod.metadata?.deletionTimestamp != null ||
    newPod.metadata?.deletionTimestamp != null ||
    isPodReady(oldPod) !== isPodReady(newPod) ||
    !samePodIPs(oldPod, newPod);
  if (!podChanged && !labelsChanged) return new Set();
  const current = matching(newPod.metadata?.labels);
  if (!labelsChanged) return current;
  const previous = matching(oldPod.metadata?.labels);
  if (podChanged) return new Set([...current, ...previous]);
  return new Set([...current, ...previous].filter((s) => current.has(s) !== previous.has(s)));
}
