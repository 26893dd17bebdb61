// Per-pod rules of the upstream endpoints controller (kube-controller-manager v1.36:
// pkg/controller/endpoint and k8s.io/endpointslice/util), re-implemented as pure functions.
import type { V1EndpointAddress, CoreV1EndpointPort, V1ServicePort } from '@kubernetes/client-node';
import type { CachedPod, CachedService } from '../runtime/cached.ts';
import ipaddr from 'ipaddr.js';

export type IPFamily = 'IPv4' | 'IPv6';

/** Parses an IP the way Go's net.ParseIP does: IPv4-mapped IPv6 counts as IPv4. */
export function parseIP(ip: string): { family: IPFamily; text: string } | undefined {
  if (!ipaddr.isValid(ip)) return undefined;
  const addr = ipaddr.process(ip);
  return { family: addr.kind() === 'ipv6' ? 'IPv6' : 'IPv4', text: addr.toString() };
}

export function isPodReady(pod: CachedPod): boolean {
  return pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
}

/** The Ready condition's last transition, the trigger time upstream reports for a pod. */
export function podReadyTransitionTime(pod: CachedPod): Date | undefined {
  const t = pod.status?.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime;
  return t === undefined ? undefined : new Date(t);
}

function isPodTerminal(pod: CachedPod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Failed' || phase === 'Succeeded';
}

/**
 * Whether a pod appears in a Service's Endpoints at all (ready or not): not terminal, has an IP,
 * and is not being deleted unless the Service publishes not-ready addresses.
 */
export function shouldPodBeInEndpoints(pod: CachedPod, includeTerminating: boolean): boolean {
  if (isPodTerminal(pod)) return false;
  if (!pod.status?.podIP && !pod.status?.podIPs?.length) return false;
  if (!includeTerminating && pod.metadata?.deletionTimestamp != null) return false;
  return true;
}

export function shouldSetHostname(pod: CachedPod, svc: CachedService): boolean {
  return (
    !!pod.spec?.hostname &&
    pod.spec.subdomain === svc.metadata?.name &&
    svc.metadata?.namespace === pod.metadata?.namespace
  );
}

/**
 * The container port a Service port targets on this pod. A named targetPort is looked up by name
 * and protocol in the containers, then in restartable (sidecar) init containers; no match means the
 * pod is skipped for this port only.
 */
export function findPort(pod: CachedPod, svcPort: V1ServicePort): number | undefined {
  const target = svcPort.targetPort;
  if (typeof target === 'number') return target;
  if (target === undefined) return svcPort.port;
  // The API server stores an integer targetPort as a number; a numeric string is still a name.
  const protocol = svcPort.protocol ?? 'TCP';
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (p.name === target && (p.protocol ?? 'TCP') === protocol) return p.containerPort;
    }
  }
  for (const c of pod.spec?.initContainers ?? []) {
    if (c.restartPolicy !== 'Always') continue;
    for (const p of c.ports ?? []) {
      if (p.name === target && (p.protocol ?? 'TCP') === protocol) return p.containerPort;
    }
  }
  return undefined;
}

/**
 * The IP family a Service's endpoints use: its first ipFamilies entry, else its ClusterIP's family,
 * else (headless without families) the pod's primary IP family.
 */
export function serviceIPFamily(svc: CachedService, pod: CachedPod): IPFamily {
  const families = svc.spec?.ipFamilies;
  if (families !== undefined && families.length > 0)
    return families[0] === 'IPv6' ? 'IPv6' : 'IPv4';
  const clusterIP = svc.spec?.clusterIP;
  if (clusterIP && clusterIP !== 'None') return parseIP(clusterIP)?.family ?? 'IPv4';
  const podIP = pod.status?.podIP;
  return podIP && parseIP(podIP)?.family === 'IPv6' ? 'IPv6' : 'IPv4';
}

/** The pod's address for this Service, or undefined when the pod has no IP of the Service's family. */
export function podAddressForService(
  svc: CachedService,
  pod: CachedPod,
): V1EndpointAddress | undefined {
  const family = serviceIPFamily(svc, pod);
  let ip: string | undefined;
  for (const podIP of pod.status?.podIPs ?? []) {
    const parsed = parseIP(podIP.ip);
    if (parsed?.family === family) {
      ip = parsed.text;
      break;
    }
  }
  if (ip === undefined) return undefined;
  const address: V1EndpointAddress = {
    ip,
    nodeName: pod.spec?.nodeName ?? '',
    targetRef: {
      kind: 'Pod',
      namespace: pod.metadata?.namespace ?? '',
      name: pod.metadata?.name ?? '',
      uid: pod.metadata?.uid ?? '',
    },
  };
  if (shouldSetHostname(pod, svc) && pod.spec?.hostname) address.hostname = pod.spec.hostname;
  return address;
}

export function endpointPort(svcPort: V1ServicePort, port: number): CoreV1EndpointPort {
  const p: CoreV1EndpointPort = { port, protocol: svcPort.protocol ?? 'TCP' };
  if (svcPort.name) p.name = svcPort.name;
  if (svcPort.appProtocol) p.appProtocol = svcPort.appProtocol;
  return p;
}
