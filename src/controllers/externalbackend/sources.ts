// What a backend's health checks read from the labelled Secrets and ConfigMaps of its namespace,
// and what the reconciler makes of a namespace whose lists fail: read-only views of the caches at
// one instant (`now`, the controller's clock, against the informer's failure timestamps).
import { maxProbeSourceValueBytes, type CachedProbeSource } from '../../runtime/cached.ts';
import type { ParsedRefs, ProbeRef, ProbeRefs } from '../../health/kinds/index.ts';
import { isPermanent, type ListFailure } from '../../runtime/informer.ts';
import type { Cache } from './options.ts';

/** How long a failing Secret or ConfigMap list may hold a backend back (see listFailure). */
export const cacheFailureGraceMs = 30_000;

export interface CheckSources {
  readonly secrets: Cache<CachedProbeSource>;
  readonly configMaps: Cache<CachedProbeSource>;
  /** What checks made of the labelled values they read, per cached version. */
  readonly parsedRefs: ParsedRefs;
  /** The ClusterRole and ServiceAccount named in the hint of a check refused its reads. */
  readonly healthCheckReaderRole?: string | undefined;
  readonly serviceAccount?: string | undefined;
}

/**
 * What a check says when its namespace has not granted outrigger reads of its Secrets or
 * ConfigMaps: the grant is a RoleBinding the namespace's owner creates (the consent, enforced by
 * the API server), and the message gives the command. The ServiceAccount is the one the API server
 * names in its refusal, so the command binds whoever outrigger really runs as.
 */
export function notGranted(
  kind: ProbeRef['kind'],
  namespace: string,
  f: ListFailure,
  role = 'outrigger-health-check-reader',
  self?: string,
): string {
  // The message may carry the API server's Status as JSON text, its quotes escaped once or twice.
  const sa = /User \\*"system:serviceaccount:([^:"\\]+):([^:"\\]+)\\*"/.exec(f.message);
  const subject =
    sa !== null
      ? `${sa[1] ?? ''}:${sa[2] ?? ''}`
      : (self ?? '<outrigger-namespace>:<outrigger-serviceaccount>');
  return `outrigger may not read ${kind}s in namespace ${namespace} (403 Forbidden); to let health checks read the labelled ones, run: kubectl create rolebinding outrigger-health-check-reader --namespace=${namespace} --clusterrole=${role} --serviceaccount=${subject}`;
}

function cacheOf(s: CheckSources, k: ProbeRef['kind']): Cache<CachedProbeSource> {
  return k === 'Secret' ? s.secrets : s.configMaps;
}

/**
 * Why a namespace's Secrets or ConfigMaps cannot be listed, once that stands in for the cache:
 * at once when the API server refuses for good (no RBAC), after cacheFailureGraceMs of any
 * other failure (one Secret the API server cannot decrypt fails the whole list until removed).
 */
export function listFailure(
  inf: Cache<CachedProbeSource>,
  namespace: string,
  now: number,
): ListFailure | undefined {
  const f = inf.failure(namespace);
  if (f === undefined) return undefined;
  return isPermanent(f) || now - f.since >= cacheFailureGraceMs ? f : undefined;
}

/**
 * Whether the Secret and ConfigMap caches the checks read cover the namespace. One that cannot
 * list there does not hold the backend back for long: its checks fail saying why instead.
 */
export function sourcesCover(
  s: CheckSources,
  namespace: string,
  refs: readonly ProbeRef[],
  now: number,
): boolean {
  const covered = (k: ProbeRef['kind']): boolean => {
    const inf = cacheOf(s, k);
    return (
      !refs.some((r) => r.kind === k) ||
      inf.hasSyncedNamespace(namespace) ||
      listFailure(inf, namespace, now) !== undefined
    );
  };
  return covered('Secret') && covered('ConfigMap');
}

/**
 * Why the Secrets or ConfigMaps a check has already read can no longer be listed (403: the
 * namespace's grant was withdrawn, or an upgrade stopped reading them cluster-wide). The cache
 * keeps what it read, so the check goes on unchanged; status says so before a restart would
 * turn it into a check that cannot run.
 */
export function sourcesLost(
  s: CheckSources,
  namespace: string,
  refs: readonly ProbeRef[],
): string | undefined {
  for (const r of refs) {
    const inf = cacheOf(s, r.kind);
    const f = inf.failure(namespace);
    if (f?.code === 403 && inf.get(namespace, r.name) !== undefined)
      return `${r.kind} ${r.name}: ${notGranted(r.kind, namespace, f, s.healthCheckReaderRole, s.serviceAccount)}`;
  }
  return undefined;
}

/** What the backend's checks read, from the labelled Secrets and ConfigMaps of its namespace. */
export function refsOf(s: CheckSources, namespace: string, now: number): ProbeRefs {
  return {
    read: (r) => cacheOf(s, r.kind).get(namespace, r.name)?.data[r.key],
    parsed: (r, parse) => {
      const source = cacheOf(s, r.kind).get(namespace, r.name);
      const value = source?.data[r.key];
      return source === undefined || value === undefined
        ? undefined
        : s.parsedRefs.get(source, r.key, value, parse);
    },
    unavailable: (r) => {
      const inf = cacheOf(s, r.kind);
      if (inf.get(namespace, r.name)?.oversized?.includes(r.key) === true)
        return `key ${r.key} is larger than ${String(maxProbeSourceValueBytes / 1024)} KiB, more than any check reads`;
      if (inf.hasSyncedNamespace(namespace)) return undefined;
      const f = listFailure(inf, namespace, now);
      if (f === undefined) return undefined;
      if (f.code === 403)
        return notGranted(r.kind, namespace, f, s.healthCheckReaderRole, s.serviceAccount);
      return `${r.kind}s cannot be listed: ${f.message}`;
    },
  };
}
