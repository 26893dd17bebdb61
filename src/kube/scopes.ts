// Which namespaces the shared Service, Endpoints and Pod caches watch. A cache is sized by what
// outrigger manages, not by the cluster: the selector-mode scope, plus the namespaces that have an
// ExternalBackend (Services and Endpoints), plus those where one selects pods (Pods). The sets
// follow the ExternalBackend cache as backends come and go; a namespace stops being watched, and
// its objects leave memory, when its last backend goes.
import type { Informer } from './informer.ts';
import type { CachedExternalBackend } from './resources.ts';

export interface ScopeOptions {
  readonly backends: Pick<Informer<CachedExternalBackend>, 'list' | 'addHandlers'>;
  /** Informers scoped to the namespaces with backends (and the selector scope). */
  readonly withBackends: readonly Pick<Informer<never>, 'setNamespaces'>[];
  /** Informers scoped to the namespaces where a backend selects pods (and the selector scope). */
  readonly withPodSelectors: readonly Pick<Informer<never>, 'setNamespaces'>[];
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

/**
 * Keeps the informers' namespaces in line with the backends. Recomputed at most once per turn of
 * the event loop, however many backend events arrive in it (a relist brings thousands).
 */
export function followBackendNamespaces(o: ScopeOptions): { refresh(): void } {
  if (o.selectorNamespaces === undefined) return { refresh: () => undefined };
  const fixed = o.selectorNamespaces;
  let pending = false;
  const refresh = (): void => {
    const withBackends = new Set(fixed);
    const withPods = new Set(fixed);
    for (const xb of o.backends.list()) {
      const ns = xb.metadata?.namespace ?? '';
      if (!o.inBackendScope(ns)) continue;
      withBackends.add(ns);
      if (selectsPods(xb)) withPods.add(ns);
    }
    const sorted = (s: Set<string>): string[] => [...s].sort();
    for (const inf of o.withBackends) inf.setNamespaces(sorted(withBackends));
    for (const inf of o.withPodSelectors) inf.setNamespaces(sorted(withPods));
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
      if (selectsPods(before) !== selectsPods(after)) schedule();
    },
    delete: schedule,
  });
  refresh();
  return { refresh };
}
