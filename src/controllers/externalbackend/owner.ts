// Whose an object is: the owner reference an ExternalBackend puts on what it writes, and whether an
// existing Service, Endpoints or slice is this backend's, nobody's, or someone else's.

import { labelEndpointsManagedBy, managerName } from '../../api/names.ts';

import type { V1OwnerReference } from '@kubernetes/client-node';

import { apiVersion, kind } from '../../api/externalbackend.ts';

export interface BackendRef {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
}

export function ownerReference(xb: BackendRef): V1OwnerReference {
  return {
    apiVersion,
    kind,
    name: xb.name,
    uid: xb.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Whether an object is ours (owned by this ExternalBackend), free to take, or someone else's. */
export function ownership(
  obj:
    | {
        metadata?: {
          ownerReferences?: readonly V1OwnerReference[];
          labels?: Readonly<Record<string, string>>;
        };
      }
    | undefined,
  xb: BackendRef,
): 'absent' | 'ours' | 'foreign' {
  if (obj === undefined) return 'absent';
  if (obj.metadata?.ownerReferences?.some((o) => o.uid === xb.uid)) return 'ours';
  return 'foreign';
}

/**
 * Who holds an Endpoints that is not this backend's: another controller (a controller owner
 * reference, or the managed-by label of an endpoints controller other than outrigger) or nobody
 * in particular — written by hand, by kubectl or a GitOps tool, or left behind by an
 * ExternalBackend deleted with --cascade=orphan (outrigger's label, no owner). Only the latter
 * may stand beside a backend during a migration, and be adopted on the backend's opt-in: a
 * controller would fight over it.
 */
export function endpointsHolder(obj: {
  metadata?: {
    ownerReferences?: readonly V1OwnerReference[];
    labels?: Readonly<Record<string, string>>;
  };
}): 'controller' | 'unmanaged' {
  if (obj.metadata?.ownerReferences?.some((o) => o.controller === true)) return 'controller';
  const by = obj.metadata?.labels?.[labelEndpointsManagedBy];
  return by === undefined || by === managerName ? 'unmanaged' : 'controller';
}
