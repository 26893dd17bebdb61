// (Service, pods, current Endpoints) → what to write, as upstream's syncService decides it.
import { labelEndpointsManagedBy, managerName } from '../api/names.ts';
import type { V1EndpointSubset, V1Endpoints } from '@kubernetes/client-node';
import type { CachedPod, CachedService } from '../runtime/cached.ts';
import {
  endpointPort,
  findPort,
  isPodReady,
  podAddressForService,
  shouldPodBeInEndpoints,
} from './pod.ts';
import {
  countAddresses,
  maxCapacity,
  repackSubsets,
  subsetsEqual,
  truncateSubsets,
} from './subsets.ts';
import { formatRFC3339Nano } from './triggertime.ts';

export const annotationTriggerTime = 'endpoints.kubernetes.io/last-change-trigger-time';
export const annotationOverCapacity = 'endpoints.kubernetes.io/over-capacity';
export const labelHeadless = 'service.kubernetes.io/headless';

/** Whether outrigger's endpoints controller manages this Service at all (upstream's early returns). */
export function isSelectorService(svc: CachedService): boolean {
  return svc.spec?.type !== 'ExternalName' && svc.spec?.selector !== undefined;
}

export function isHeadless(svc: CachedService): boolean {
  const ip = svc.spec?.clusterIP;
  return ip === undefined || ip === '' || ip === 'None';
}

/** The subsets upstream would compute, in canonical form, before the capacity rule. */
export function desiredSubsets(svc: CachedService, pods: readonly CachedPod[]): V1EndpointSubset[] {
  const publishNotReady = svc.spec?.publishNotReadyAddresses === true;
  const ports = svc.spec?.ports ?? [];
  const raw: V1EndpointSubset[] = [];
  for (const pod of pods) {
    if (!shouldPodBeInEndpoints(pod, publishNotReady)) continue;
    const address = podAddressForService(svc, pod);
    if (address === undefined) continue;
    const ready = publishNotReady || isPodReady(pod);
    const entry = (p: NonNullable<V1EndpointSubset['ports']>): V1EndpointSubset =>
      ready ? { addresses: [address], ports: p } : { notReadyAddresses: [address], ports: p };
    if (ports.length === 0) {
      // Headless Services may have no ports; others without ports get no endpoints.
      if (svc.spec?.clusterIP === 'None') raw.push(entry([]));
      continue;
    }
    for (const sp of ports) {
      const port = findPort(pod, sp);
      if (port === undefined) continue;
      raw.push(entry([endpointPort(sp, port)]));
    }
  }
  return repackSubsets(raw);
}

function labelsCorrect(
  epLabels: Record<string, string> | undefined,
  svcLabels: Record<string, string> | undefined,
): boolean {
  if (epLabels?.[labelEndpointsManagedBy] !== managerName) return false;
  let skipped = 0;
  for (const [k, v] of Object.entries(epLabels)) {
    if (k === labelHeadless || k === labelEndpointsManagedBy) skipped++;
    else if (svcLabels?.[k] !== v) return false;
  }
  return Object.keys(svcLabels ?? {}).length === Object.keys(epLabels).length - skipped;
}

function capacityAnnotationCorrect(ep: V1Endpoints): boolean {
  const { ready, notReady } = countAddresses(ep.subsets);
  if (ready + notReady > maxCapacity) return false;
  return ep.metadata?.annotations?.[annotationOverCapacity] === undefined;
}

function without(
  record: Readonly<Record<string, string>> | undefined,
  keys: readonly string[],
): Record<string, string> {
  return Object.fromEntries(Object.entries(record ?? {}).filter(([k]) => !keys.includes(k)));
}

export type EndpointsPlan =
  | { readonly action: 'none' }
  | {
      readonly action: 'create' | 'update';
      readonly endpoints: V1Endpoints;
      readonly truncated: boolean;
    };

/**
 * Decides the write for a selector Service. `current` is the cached Endpoints (never modified);
 * `triggerTime` comes from the TriggerTimeTracker. A write is planned only when the subsets, the
 * labels or the capacity annotation are wrong — never for the trigger-time annotation alone.
 */
export function planEndpoints(
  svc: CachedService,
  pods: readonly CachedPod[],
  current: V1Endpoints | undefined,
  triggerTime: Date | undefined,
): EndpointsPlan {
  const subsets = desiredSubsets(svc, pods);
  const svcLabels = svc.metadata?.labels;
  if (
    current !== undefined &&
    subsetsEqual(current.subsets, subsets) &&
    labelsCorrect(current.metadata?.labels, svcLabels) &&
    capacityAnnotationCorrect(current)
  ) {
    return { action: 'none' };
  }

  const { subsets: kept, truncated } = truncateSubsets(subsets);
  const annotations = without(current?.metadata?.annotations, [
    annotationTriggerTime,
    annotationOverCapacity,
  ]);
  if (triggerTime !== undefined)
    annotations[annotationTriggerTime] = formatRFC3339Nano(triggerTime);
  if (truncated) annotations[annotationOverCapacity] = 'truncated';

  const labels = without(svcLabels, [labelHeadless, labelEndpointsManagedBy]);
  if (isHeadless(svc)) labels[labelHeadless] = '';
  labels[labelEndpointsManagedBy] = managerName;

  const metadata = {
    ...(current?.metadata ?? {
      name: svc.metadata?.name ?? '',
      namespace: svc.metadata?.namespace ?? '',
    }),
    labels,
    annotations,
  };
  if (Object.keys(annotations).length === 0)
    delete (metadata as { annotations?: unknown }).annotations;
  const endpoints: V1Endpoints = {
    apiVersion: 'v1',
    kind: 'Endpoints',
    ...current,
    metadata,
    subsets: kept,
  };
  return { action: current === undefined ? 'create' : 'update', endpoints, truncated };
}
