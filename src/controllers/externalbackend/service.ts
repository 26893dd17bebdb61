// The Service an ExternalBackend names: create it, adopt the selectorless one a user wrote, or refuse
// one that selects pods; and its ports, kept in line with the backend's.
import { labelAppManagedBy } from '../../api/names.ts';
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';
import type { CachedService } from '../../runtime/cached.ts';
import type { ExternalBackendSpec } from '../../api/externalbackend.ts';
import { ownerReference, ownership, type BackendRef } from './owner.ts';

export function serviceName(xb: BackendRef, spec: ExternalBackendSpec): string {
  return spec.service.name ?? xb.name;
}

export function desiredService(xb: BackendRef, spec: ExternalBackendSpec): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: serviceName(xb, spec),
      namespace: xb.namespace,
      labels: { [labelAppManagedBy]: 'outrigger' },
      ownerReferences: [ownerReference(xb)],
    },
    spec: {
      ...(spec.service.clusterIP === 'None' ? { clusterIP: 'None' } : {}),
      ports: spec.ports.map((p) => ({
        name: p.name,
        port: p.port,
        targetPort: p.port,
        protocol: p.protocol,
        ...(p.appProtocol !== undefined ? { appProtocol: p.appProtocol } : {}),
      })),
    },
  };
}

export type ServiceDecision =
  | { readonly action: 'create'; readonly service: V1Service }
  | { readonly action: 'update'; readonly ports: V1ServicePort[] }
  | { readonly action: 'none'; readonly adopted: boolean }
  | {
      readonly action: 'refuse';
      readonly reason: 'ServiceNotFound' | 'ServiceHasSelector';
      readonly message: string;
    };

function samePorts(a: CachedService, b: CachedService): boolean {
  const key = (s: CachedService): string =>
    JSON.stringify(
      (s.spec?.ports ?? [])
        .map((p) => [
          p.name ?? '',
          p.port,
          String(p.targetPort ?? p.port),
          p.protocol ?? 'TCP',
          p.appProtocol ?? '',
        ])
        .sort(),
    );
  return key(a) === key(b);
}

/**
 * Creates and owns a selectorless Service when none exists (if allowed), keeps an owned one's ports
 * in line, adopts (reads only) an existing selectorless one, and refuses one with a selector: its
 * Endpoints belong to the endpoints controller.
 */
export function decideService(
  xb: BackendRef,
  spec: ExternalBackendSpec,
  existing: CachedService | undefined,
): ServiceDecision {
  const name = serviceName(xb, spec);
  const want = desiredService(xb, spec);
  if (existing === undefined) {
    if (spec.service.create) return { action: 'create', service: want };
    return {
      action: 'refuse',
      reason: 'ServiceNotFound',
      message: `Service ${name} does not exist and spec.service.create is false`,
    };
  }
  if (existing.spec?.selector !== undefined) {
    return {
      action: 'refuse',
      reason: 'ServiceHasSelector',
      message: `Service ${name} has a selector; its Endpoints belong to the endpoints controller. Remove the selector or name another Service`,
    };
  }
  if (ownership(existing, xb) === 'ours') {
    if (samePorts(existing, want)) return { action: 'none', adopted: false };
    return { action: 'update', ports: want.spec?.ports ?? [] };
  }
  return { action: 'none', adopted: true };
}
