// Builders for Pods and Services as the API server returns them, for the pure-core tables.
import type { V1Container, V1Pod, V1Service, V1ServicePort } from '@kubernetes/client-node';

export interface PodSpec {
  ns?: string;
  ips?: string[];
  ready?: boolean;
  labels?: Record<string, string>;
  phase?: string;
  deleting?: boolean;
  ports?: { name: string; port: number; protocol?: string }[];
  sidecarPorts?: { name: string; port: number; restartPolicy?: string }[];
  hostname?: string;
  subdomain?: string;
  node?: string;
  readySince?: string;
  rv?: string;
}

export function pod(name: string, o: PodSpec = {}): V1Pod {
  const ips = o.ips ?? ['10.0.0.1'];
  const containers: V1Container[] = [
    {
      name: 'main',
      ports: (o.ports ?? []).map((p) => ({
        name: p.name,
        containerPort: p.port,
        protocol: p.protocol ?? 'TCP',
      })),
    },
  ];
  return {
    metadata: {
      name,
      namespace: o.ns ?? 'ns',
      uid: `uid-${name}`,
      resourceVersion: o.rv ?? '1',
      labels: o.labels ?? { app: 'web' },
      ...(o.deleting ? { deletionTimestamp: new Date('2026-01-01T00:00:00Z') } : {}),
    },
    spec: {
      containers,
      ...(o.sidecarPorts
        ? {
            initContainers: o.sidecarPorts.map((p, i) => ({
              name: `init-${i}`,
              ...(p.restartPolicy !== undefined ? { restartPolicy: p.restartPolicy } : {}),
              ports: [{ name: p.name, containerPort: p.port, protocol: 'TCP' }],
            })),
          }
        : {}),
      nodeName: o.node ?? 'node-a',
      ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
      ...(o.subdomain !== undefined ? { subdomain: o.subdomain } : {}),
    },
    status: {
      phase: o.phase ?? 'Running',
      ...(ips.length > 0 ? { podIP: ips[0] ?? '', podIPs: ips.map((ip) => ({ ip })) } : {}),
      conditions: [
        {
          type: 'Ready',
          status: o.ready === false ? 'False' : 'True',
          lastTransitionTime: new Date(o.readySince ?? '2026-01-01T00:00:00Z'),
        },
      ],
    },
  };
}

export interface SvcSpec {
  ns?: string;
  selector?: Record<string, string> | null;
  ports?: V1ServicePort[];
  clusterIP?: string;
  ipFamilies?: readonly string[];
  type?: string;
  publishNotReadyAddresses?: boolean;
  labels?: Record<string, string>;
  created?: string;
}

export function svc(name: string, o: SvcSpec = {}): V1Service {
  const selector = o.selector === null ? undefined : (o.selector ?? { app: 'web' });
  return {
    metadata: {
      name,
      namespace: o.ns ?? 'ns',
      uid: `svc-${name}`,
      creationTimestamp: new Date(o.created ?? '2025-12-31T00:00:00Z'),
      ...(o.labels ? { labels: o.labels } : {}),
    },
    spec: {
      ...(selector !== undefined ? { selector } : {}),
      ports: o.ports ?? [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
      clusterIP: o.clusterIP ?? '10.96.0.10',
      ...(o.ipFamilies ? { ipFamilies: [...o.ipFamilies] } : {}),
      ...(o.type ? { type: o.type } : {}),
      ...(o.publishNotReadyAddresses !== undefined
        ? { publishNotReadyAddresses: o.publishNotReadyAddresses }
        : {}),
    },
  };
}
