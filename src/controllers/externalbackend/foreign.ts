// What outrigger says and decides about objects someone else holds: who manages them (for status
// messages), why adopting a hand-written Endpoints must wait, and the refusal of a foreign object.
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import { labelEndpointsManagedBy, labelSliceManagedBy } from '../../api/names.ts';
import { adoptEndpointsAnnotation } from '../../api/externalbackend.ts';
import type { AddressView } from './addresses.ts';
import type { OwnedKind } from './writer.ts';

function controllerOwner(obj: {
  metadata?: { ownerReferences?: { kind: string; name: string; controller?: boolean }[] };
}): { kind: string; name: string } | undefined {
  return obj.metadata?.ownerReferences?.find((o) => o.controller === true);
}

/** Who manages an object we will not touch, in words for a status message. */
export function describeManager(obj: V1Endpoints | V1EndpointSlice): string {
  const owner = controllerOwner(obj);
  if (owner !== undefined) return `it is owned by ${owner.kind} ${owner.name}`;
  const labels = obj.metadata?.labels ?? {};
  const by = labels[labelEndpointsManagedBy] ?? labels[labelSliceManagedBy];
  if (by !== undefined) return `it is managed by ${by}`;
  return 'it was written by hand or by another tool';
}

/**
 * Why an adoption must wait, or undefined when it may go ahead: kube-proxy must already have the
 * backend's own slices, as they will be, and they must say what the health checks found, because
 * marking the Endpoints skip-mirror makes the endpointslice-mirroring controller delete the slice
 * that carries the traffic until then. Addresses never checked are published ready, unverified;
 * those over the namespace's probe-target limit will never be, and do not hold it back.
 */
export function adoptionBlocker(
  sliceWrites: number,
  views: readonly AddressView[],
  unchecked: ReadonlySet<string>,
): string | undefined {
  const waiting = views.filter((v) => v.state === 'Unknown' && !unchecked.has(v.ip));
  const why = [
    sliceWrites > 0 ? "outrigger's EndpointSlices are being published" : '',
    waiting.length > 0
      ? `${String(waiting.length)} addresses have no health-check verdict yet (${waiting
          .slice(0, 3)
          .map((v) => v.ip)
          .join(', ')}${waiting.length > 3 ? ', …' : ''})`
      : '',
  ].filter(Boolean);
  return why.length === 0 ? undefined : why.join('; ');
}

export function heldMessage(name: string, ep: V1Endpoints, adopt: string | undefined): string {
  const who =
    controllerOwner(ep) === undefined &&
    ep.metadata?.labels?.[labelEndpointsManagedBy] !== undefined
      ? 'it was left behind by a deleted ExternalBackend'
      : describeManager(ep);
  const beside = `Endpoints ${name} is held by another writer (${who}); outrigger leaves it alone and publishes its own EndpointSlices beside the one the endpointslice-mirroring controller makes from it`;
  if (adopt !== undefined)
    return `${beside}. It is adopted (${adoptEndpointsAnnotation}) once nothing holds that back: ${adopt}`;
  return `${beside}. To finish the migration, annotate this ExternalBackend ${adoptEndpointsAnnotation}=true: outrigger then takes the Endpoints over in place, so that readers of Endpoints never see it missing (deleting it works too, but leaves a moment without one)`;
}

export function foreignMessage(
  k: OwnedKind,
  name: string,
  obj: V1Endpoints | V1EndpointSlice,
): string {
  return `${k} ${name} already exists and ${describeManager(obj)}; outrigger will not overwrite it. Delete it to let this ExternalBackend publish the Service's endpoints`;
}
