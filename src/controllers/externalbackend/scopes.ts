// Which namespaces the shared Service, Endpoints and Pod caches watch. A cache is sized by what
// outrigger manages, not by the cluster: the selector-mode scope, plus the namespaces that have an
// ExternalBackend (Services and Endpoints), plus those where one selects pods (Pods), plus those
// where one's health check names a Secret or ConfigMap (the labelled Secrets and ConfigMaps). The sets
// follow the ExternalBackend cache as backends come and go; a namespace stops being watched, and
// its objects leave memory, when its last backend goes.
import type { Informer } from '../../runtime/informer.ts';
import type { CachedExternalBackend } from '../../api/resources.ts';
import { parsedSpec } from '../../api/parsed.ts';
import { probeRefsOf } from '../../health/kinds/index.ts';

export interface ScopeOptions {
  readonly backends: Pick<Informer<CachedExternalBackend>, 'list' | 'addHandlers'>;
  /** Informers scoped to the namespaces with backends (and the selector scope). */
  readonly withBackends: readonly Pick<Informer<never>, 'setNamespaces'>[];
  /** Informers scoped to the namespaces where a backend selects pods (and the selector scope). */
  readonly withPodSelectors: readonly Pick<Informer<never>, 'setNamespaces'>[];
  /** Informers scoped to the namespaces where a health check names a Secret or ConfigMap. */
  readonly withProbeRefs?: readonly Pick<Informer<never>, 'setNamespaces'>[];
  /**
   * What selector mode watches: undefined for every namespace (then nothing follows backends),
   * else its namespaces (none when it is off).
   */
  readonly selectorNamespaces: readonly string[] | undefined;
  /** Namespaces whose backends are reconciled (--watch-namespaces), or all. */
  readonly inBackendScope: (namespace: string) => boolean;
}

function selectsPods(xb: CachedExternalBackend): boolean {
  const spec = xb.spec;
  return spec !== null && typeof spec === 'object' && 'podSelector' in spec;
}

function namesProbeRefs(xb: CachedExternalBackend): boolean {
  const p = parsedSpec(xb);
  return (
    p.success && p.data.healthCheck !== undefined && probeRefsOf(p.data.healthCheck).length > 0
  );
}

/**
 * Keeps the informers' namespaces in line with the backends. Recomputed at most once per turn of
 * the event loop, however many backend events arrive in it (a relist brings thousands).
 */
export function followBackendNamespaces(o: ScopeOptions): { refresh(): void } {
  // Selector mode over every namespace watches Services, Endpoints and Pods cluster-wide: then
  // only the Secret and ConfigMap caches follow the backends.
  const fixed = o.selectorNamespaces;
  const shared = fixed !== undefined;
  let pending = false;
  const refresh = (): void => {
    const withBackends = new Set(fixed ?? []);
    const withPods = new Set(fixed ?? []);
    // Not the selector scope: selector mode reads no Secret or ConfigMap.
    const withRefs = new Set<string>();
    for (const xb of o.backends.list()) {
      const ns = xb.metadata?.namespace ?? '';
      if (!o.inBackendScope(ns)) continue;
      withBackends.add(ns);
      if (selectsPods(xb)) withPods.add(ns);
      if (namesProbeRefs(xb)) withRefs.add(ns);
    }
    const sorted = (s: Set<string>): string[] => [...s].sort();
    if (shared) {
      for (const inf of o.withBackends) inf.setNamespaces(sorted(withBackends));
      for (const inf of o.withPodSelectors) inf.setNamespaces(sorted(withPods));
    }
    for (const inf of o.withProbeRefs ?? []) inf.setNamespaces(sorted(withRefs));
  };
  const schedule = (): void => {
    if (pending) return;
    pending = true;
    setImmediate(() => {
      pending = false;
      refresh();
    });
  };
  o.backends.addHandlers({
    add: schedule,
    update: (before, after) => {
      if (
        selectsPods(before) !== selectsPods(after) ||
        namesProbeRefs(before) !== namesProbeRefs(after)
      )
        schedule();
    },
    delete: schedule,
  });
  refresh();
  return { refresh };
}
