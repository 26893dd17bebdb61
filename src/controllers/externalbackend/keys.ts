// Which ExternalBackends an event concerns, as pure functions of the event and the backends of its
// namespace: the controller's handlers only call these and queue what they return, so that what
// wakes a backend can be tested without informers or a queue.
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import type { CachedExternalBackend } from '../../api/resources.ts';
import type { CachedNamespace } from '../../runtime/transforms.ts';
import { kind } from '../../api/externalbackend.ts';
import { parsedSpec } from '../../api/parsed.ts';
import { probeRefsOf, type ProbeRef } from '../../health/kinds/index.ts';
import type { CachedPod, CachedService } from '../../runtime/cached.ts';
import { objectKey, splitKey } from '../../runtime/keys.ts';
import { labelSelectorMatches } from '../../runtime/labels.ts';

/** "<namespace>/<name>" of the ExternalBackend a probe target ("<ns>/<name>/<ip>") belongs to. */
export function backendKeyOfTarget(target: string): string {
  return target.slice(0, target.lastIndexOf('/'));
}

function controllerOwner(obj: {
  metadata?: {
    ownerReferences?: readonly { kind: string; name: string; controller?: boolean }[];
  };
}): { kind: string; name: string } | undefined {
  return obj.metadata?.ownerReferences?.find((o) => o.controller === true);
}

/** The Secret and ConfigMap keys the backend's health check names. */
export function probeRefsOfBackend(xb: CachedExternalBackend): readonly ProbeRef[] {
  const p = parsedSpec(xb);
  return p.success && p.data.healthCheck !== undefined ? probeRefsOf(p.data.healthCheck) : [];
}

/** The Service a backend publishes into; undefined while its spec is invalid. */
export function serviceNameOfBackend(xb: CachedExternalBackend): string | undefined {
  const p = parsedSpec(xb);
  return p.success ? (p.data.service.name ?? xb.metadata?.name) : undefined;
}

/** A Service, Endpoints or slice: the backend that owns it, and those whose Service it is. */
export function keysForRelated(
  obj: CachedService | V1Endpoints | V1EndpointSlice,
  service: string | undefined,
  backends: readonly CachedExternalBackend[],
): string[] {
  const ns = obj.metadata?.namespace ?? '';
  const owner = controllerOwner(obj);
  const keys = owner?.kind === kind ? [`${ns}/${owner.name}`] : [];
  if (obj.metadata?.namespace === undefined || service === undefined) return keys;
  for (const xb of backends) if (serviceNameOfBackend(xb) === service) keys.push(objectKey(xb));
  return keys;
}

/** The Service an object of this kind belongs to, by name or (slices) by label. */
export function serviceOfSlice(s: V1EndpointSlice): string | undefined {
  return s.metadata?.labels?.['kubernetes.io/service-name'];
}

/** Pods changed (an update gives both versions): the backends whose podSelector matches one. */
export function keysForPods(
  pods: readonly (CachedPod | undefined)[],
  backends: readonly CachedExternalBackend[],
): string[] {
  const keys: string[] = [];
  for (const xb of backends) {
    const p = parsedSpec(xb);
    const selector = p.success ? p.data.podSelector : undefined;
    if (selector === undefined) continue;
    if (
      pods.some((pod) => pod !== undefined && labelSelectorMatches(selector, pod.metadata?.labels))
    )
      keys.push(objectKey(xb));
  }
  return keys;
}

/** A Namespace event: its backends, unless an update left its labels (what policy reads) alone. */
export function keysForNamespace(
  before: CachedNamespace | undefined,
  after: CachedNamespace,
  backends: readonly CachedExternalBackend[],
): string[] {
  if (
    before !== undefined &&
    JSON.stringify(before.metadata.labels) === JSON.stringify(after.metadata.labels)
  )
    return [];
  return backends.map(objectKey);
}

/** A Secret or ConfigMap a check may name: the backends of its namespace that name it. */
export function keysForSource(
  k: ProbeRef['kind'],
  name: string | undefined,
  backends: readonly CachedExternalBackend[],
): string[] {
  return backends
    .filter((xb) => probeRefsOfBackend(xb).some((r) => r.kind === k && r.name === name))
    .map(objectKey);
}

/**
 * A namespace's Secret or ConfigMap list starting or ceasing to fail (a grant made or withdrawn):
 * its backends whose checks read that kind.
 */
export function keysForSourceFailure(
  k: ProbeRef['kind'],
  backends: readonly CachedExternalBackend[],
): string[] {
  return backends.filter((xb) => probeRefsOfBackend(xb).some((r) => r.kind === k)).map(objectKey);
}

/**
 * Room freed under a namespace's probe-target limit: the backends of that namespace left with
 * unchecked addresses, which may now check them.
 */
export function keysForFreedRoom(key: string, limited: Iterable<string>): string[] {
  const [namespace] = splitKey(key);
  const keys: string[] = [];
  for (const other of limited)
    if (other !== key && splitKey(other)[0] === namespace) keys.push(other);
  return keys;
}
