// What the informers cache of outrigger's own resources. Spec and status stay raw JSON, parsed by
// the reconcilers against the schemas, so a cached object never claims a shape it was not checked
// against.
import type { KubernetesObject, V1ObjectMeta } from '@kubernetes/client-node';
import { meta, rec } from '../runtime/transforms.ts';
import { adoptEndpointsAnnotation, drainAnnotation } from './externalbackend.ts';
import { maxReportLeaseMs, proberReportSpec } from './proberreport.ts';

/** An ExternalBackend as cached: spec and status stay raw JSON; the reconciler parses the spec. */
export interface CachedExternalBackend extends KubernetesObject {
  readonly spec?: unknown;
  readonly status?: unknown;
}

/**
 * Of the annotations only those outrigger reads: the others (kubectl's last-applied
 * configuration among them) can be as large as the object and would be kept for nothing.
 */
function backendMeta(raw: unknown): V1ObjectMeta {
  const out = meta(raw, ['generation']);
  const annotations = rec(rec(raw).annotations);
  const kept = Object.fromEntries(
    [drainAnnotation, adoptEndpointsAnnotation].flatMap((k) => {
      const v = annotations[k];
      return typeof v === 'string' ? [[k, v]] : [];
    }),
  );
  if (Object.keys(kept).length > 0) out.annotations = kept;
  return out;
}

export function transformExternalBackend(raw: unknown): CachedExternalBackend {
  const r = rec(raw);
  return {
    apiVersion: typeof r.apiVersion === 'string' ? r.apiVersion : '',
    kind: typeof r.kind === 'string' ? r.kind : '',
    metadata: backendMeta(r.metadata),
    ...(r.spec !== undefined ? { spec: r.spec } : {}),
    ...(r.status !== undefined ? { status: r.status } : {}),
  };
}

/** An ExternalBackendPolicy as cached: the spec stays raw JSON; the reconciler parses it. */
export interface CachedPolicy extends KubernetesObject {
  readonly spec?: unknown;
}

export function transformPolicy(raw: unknown): CachedPolicy {
  const r = rec(raw);
  return { metadata: meta(r.metadata), ...(r.spec !== undefined ? { spec: r.spec } : {}) };
}

/** A ProberReport as cached: its spec parsed once (a report that does not parse covers nothing). */
export interface CachedProberReport extends KubernetesObject {
  readonly report?: {
    readonly nodeName?: string;
    readonly zone?: string;
    /**
     * When it stops counting, by this process's clock: when this version of the report was seen
     * plus its lease (at most maxReportLeaseMs). Neither the writer's clock nor its lease is
     * trusted further: a renewal is a new version, seen anew.
     */
    readonly expiresAt: number;
    /** Each covered backend ("<namespace>/<name>") and the addresses seen unhealthy. */
    readonly backends: ReadonlyMap<string, ReadonlySet<string>>;
  };
  readonly partitioned?: boolean;
}

export function transformProberReport(raw: unknown): CachedProberReport {
  const r = rec(raw);
  const parsed = proberReportSpec.safeParse(r.spec);
  const renew = parsed.success ? Date.parse(parsed.data.renewTime) : Number.NaN;
  // Read when the event arrives (a transform runs once per version): the time it was seen.
  const status = rec(r.status);
  return {
    apiVersion: typeof r.apiVersion === 'string' ? r.apiVersion : '',
    kind: typeof r.kind === 'string' ? r.kind : '',
    metadata: meta(r.metadata),
    ...(parsed.success && Number.isFinite(renew)
      ? {
          report: {
            ...(parsed.data.nodeName !== undefined ? { nodeName: parsed.data.nodeName } : {}),
            ...(parsed.data.zone !== undefined ? { zone: parsed.data.zone } : {}),
            expiresAt:
              Date.now() + Math.min(parsed.data.leaseDurationSeconds * 1000, maxReportLeaseMs),
            backends: new Map(
              parsed.data.backends.map((b) => [b.name, new Set(b.unhealthy ?? [])] as const),
            ),
          },
        }
      : {}),
    ...(status.partitioned === true ? { partitioned: true } : {}),
  };
}
