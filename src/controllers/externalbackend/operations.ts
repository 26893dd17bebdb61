// The writes of one reconcile as data: planOperations turns the object plan (plan.ts) into the
// exact list of API calls apply.ts makes, in order, each with the Events it earns once it
// succeeded. Nothing is decided at apply time except by the pure functions here.
import type {
  V1EndpointSlice,
  V1Endpoints,
  V1Service,
  V1ServicePort,
} from '@kubernetes/client-node';
import { labelSliceManagedBy, managerName } from '../../api/names.ts';
import { adoptEndpointsAnnotation } from '../../api/externalbackend.ts';
import { annotationOverCapacity } from '../../endpoints/desired.ts';
import { ownership, type BackendRef } from './owner.ts';
import { foreignMessage } from './foreign.ts';
import type { BackendPlan, OwnedKind } from './plan.ts';

export interface PlannedEvent {
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

export type Operation =
  | ({
      readonly op: 'create';
      readonly events: readonly PlannedEvent[];
    } & (
      | { readonly kind: 'Service'; readonly obj: V1Service }
      | { readonly kind: 'Endpoints'; readonly obj: V1Endpoints }
      | { readonly kind: 'EndpointSlice'; readonly obj: V1EndpointSlice }
    ))
  | {
      /**
       * Server-side apply (forced) of an object this backend owns. Forcing takes every field, so
       * `obj` carries the resourceVersion the plan judged as a precondition: an object replaced
       * since (by anyone) fails with 409 and is looked at again from a fresh cache instead of
       * being taken over.
       */
      readonly op: 'apply';
      readonly kind: 'Endpoints' | 'EndpointSlice';
      readonly obj: V1Endpoints | V1EndpointSlice;
      /**
       * Annotations to remove after the apply. One set by the create (a plain POST) is not the
       * apply's to remove by leaving it out: the over-capacity mark is taken off explicitly when
       * the backend shrinks.
       */
      readonly dropAnnotations: readonly string[];
      readonly events: readonly PlannedEvent[];
    }
  | {
      readonly op: 'ports';
      readonly name: string;
      readonly ports: V1ServicePort[];
    }
  | {
      readonly op: 'delete';
      readonly kind: OwnedKind;
      readonly name: string;
      readonly uid: string;
    };

export function applyOperation<T extends V1Endpoints | V1EndpointSlice>(
  kind: 'Endpoints' | 'EndpointSlice',
  want: T,
  current: T,
  events: readonly PlannedEvent[] = [],
): Operation {
  const resourceVersion = current.metadata?.resourceVersion;
  const drop =
    kind === 'Endpoints' &&
    current.metadata?.annotations?.[annotationOverCapacity] !== undefined &&
    want.metadata?.annotations?.[annotationOverCapacity] === undefined;
  return {
    op: 'apply',
    kind,
    obj: {
      ...want,
      metadata: { ...want.metadata, ...(resourceVersion !== undefined ? { resourceVersion } : {}) },
    },
    dropAnnotations: drop ? [annotationOverCapacity] : [],
    events,
  };
}

/** Every write the object plan asks for, in order: Service, Endpoints, slices, deletes. */
export function planOperations(plan: BackendPlan): Operation[] {
  if (plan.refused !== undefined) return [];
  const ops: Operation[] = [];
  if (plan.service?.op === 'create') {
    const name = plan.service.service.metadata?.name ?? '';
    ops.push({
      op: 'create',
      kind: 'Service',
      obj: plan.service.service,
      events: [
        {
          type: 'Normal',
          reason: 'ServiceCreated',
          message: `Created selectorless Service ${name}`,
        },
      ],
    });
  } else if (plan.service?.op === 'ports')
    ops.push({ op: 'ports', name: plan.service.name, ports: plan.service.ports });
  const ep = plan.endpoints;
  if (ep?.op === 'create') ops.push({ op: 'create', kind: 'Endpoints', obj: ep.want, events: [] });
  else if (ep?.op === 'apply') ops.push(applyOperation('Endpoints', ep.want, ep.current));
  else if (ep?.op === 'adopt')
    ops.push(
      applyOperation('Endpoints', ep.want, ep.current, [
        {
          type: 'Normal',
          reason: 'EndpointsAdopted',
          message: `Took over Endpoints ${ep.want.metadata?.name ?? ''} in place (${adoptEndpointsAnnotation}): it is now owned by this ExternalBackend and marked skip-mirror, so the mirrored EndpointSlice goes and outrigger's slices carry the Service alone`,
        },
      ]),
    );
  // Creates before updates: endpoints moving out of a slice that shrinks (a lowered
  // --max-endpoints-per-slice, a slice of 1000 from an older version) are published in their
  // new slice before they leave the old one. For a moment they are in both, which consumers
  // tolerate; never in neither.
  for (const slice of plan.sliceCreates)
    ops.push({ op: 'create', kind: 'EndpointSlice', obj: slice, events: [] });
  for (const u of plan.sliceUpdates) ops.push(applyOperation('EndpointSlice', u.want, u.current));
  for (const d of plan.deletes) ops.push({ op: 'delete', ...d });
  return ops;
}

/**
 * What a slice create that found the name taken does next, from the slice the API server has
 * under that name. The slice cache holds only slices with outrigger's label: if this backend owns
 * the slice, someone changed its labels by hand and they are put back (it would feed kube-proxy
 * stale endpoints otherwise); if someone else does, it is left alone and reported; if it has our
 * labels, or is gone again, the cache lags.
 */
export function onSliceTaken(
  ref: BackendRef,
  want: V1EndpointSlice,
  existing: V1EndpointSlice | undefined,
):
  | { readonly next: 'retry'; readonly message: string }
  | { readonly next: 'refuse'; readonly message: string }
  | { readonly next: 'restore'; readonly operation: Operation } {
  const name = want.metadata?.name ?? '';
  if (existing === undefined)
    return { next: 'retry', message: `EndpointSlice ${name} was deleted while being created` };
  if (ownership(existing, ref) !== 'ours')
    return { next: 'refuse', message: foreignMessage('EndpointSlice', name, existing) };
  if (existing.metadata?.labels?.[labelSliceManagedBy] === managerName)
    return { next: 'retry', message: `EndpointSlice ${name} exists but is not in the cache yet` };
  return {
    next: 'restore',
    operation: applyOperation('EndpointSlice', want, existing, [
      {
        type: 'Warning',
        reason: 'EndpointSliceRestored',
        message: `EndpointSlice ${name} had lost outrigger's labels (changed by hand?); they are restored, so that it is kept up to date again`,
      },
    ]),
  };
}
