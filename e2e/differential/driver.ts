// Applies scenario operations to one cluster, the way a kubelet and a user would: Pods are bound to
// a node and their status is written through the status subresource; Services through the API.
import {
  ApiException,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Endpoints,
  type V1Pod,
  type V1PodStatus,
} from '@kubernetes/client-node';
import PQueue from 'p-queue';
import type { Op, PodDef, Scenario, ServiceDef } from './scenario.ts';

function podBody(def: PodDef): V1Pod {
  return {
    metadata: { name: def.name, labels: def.labels },
    spec: {
      nodeName: def.node,
      ...(def.hostname !== undefined ? { hostname: def.hostname } : {}),
      ...(def.subdomain !== undefined ? { subdomain: def.subdomain } : {}),
      containers: [
        {
          name: 'main',
          image: 'registry.invalid/app:1',
          ports: def.ports.map((p) => ({
            name: p.name,
            containerPort: p.port,
            protocol: p.protocol,
          })),
        },
      ],
      ...(def.sidecarPorts.length > 0
        ? {
            initContainers: def.sidecarPorts.map((p, i) => ({
              name: `sidecar-${i}`,
              image: 'registry.invalid/sidecar:1',
              ...(p.restartable ? { restartPolicy: 'Always' } : {}),
              ports: [{ name: p.name, containerPort: p.port, protocol: 'TCP' }],
            })),
          }
        : {}),
    },
  };
}

function status(def: Pick<PodDef, 'ips' | 'ready' | 'phase'>): V1PodStatus {
  return {
    phase: def.phase,
    ...(def.ips.length > 0
      ? { podIP: def.ips[0] ?? '', podIPs: def.ips.map((ip) => ({ ip })) }
      : {}),
    conditions: [
      { type: 'Ready', status: def.ready ? 'True' : 'False', lastTransitionTime: new Date() },
    ],
  };
}

function nextTransition(previous: { lastTransitionTime?: Date } | undefined): Date {
  const now = Date.now();
  const before = previous?.lastTransitionTime?.getTime();
  return new Date(
    before === undefined ? now : Math.max(now, Math.floor(before / 1000) * 1000 + 1000),
  );
}

export class ScenarioDriver {
  private readonly core: CoreV1Api;
  private readonly ns: string;

  constructor(kc: KubeConfig, namespace: string) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.ns = namespace;
  }

  async setup(s: Scenario): Promise<void> {
    await this.core.createNamespace({ body: { metadata: { name: this.ns } } });
    await this.createPods(s.pods);
    for (const svc of s.services) await this.createService(svc);
  }

  async apply(op: Op): Promise<void> {
    const namespace = this.ns;
    switch (op.op) {
      case 'createPod':
        await this.createPods([op.pod]);
        return;
      case 'createPods': {
        const defs: PodDef[] = Array.from({ length: op.count }, (_, i) => ({
          name: `${op.prefix}-${i}`,
          labels: op.labels,
          ips: [`${op.ipPrefix}.${Math.floor(i / 250)}.${i % 250}`],
          ready: op.ready,
          phase: 'Running',
          node: 'node-a',
          ports: op.ports,
          sidecarPorts: [],
        }));
        await this.createPods(defs);
        return;
      }
      case 'ready':
        await this.updateStatus(op.pod, (st) => {
          const ready = st.conditions?.find((c) => c.type === 'Ready');
          const want = op.ready ? 'True' : 'False';
          // As a kubelet does: the transition time moves only when the status changes. It is
          // stored with one-second precision, so a flip in the second the pod was made would carry
          // the same time and whether a controller writes a trigger time would depend on when it
          // synced; each flip is therefore at least a second after the previous transition.
          if (ready?.status !== want) {
            st.conditions = [
              { type: 'Ready', status: want, lastTransitionTime: nextTransition(ready) },
            ];
          }
        });
        return;
      case 'phase':
        await this.updateStatus(op.pod, (st) => {
          st.phase = op.phase;
        });
        return;
      case 'ips':
        await this.updateStatus(op.pod, (st) => {
          if (op.ips.length === 0) {
            delete st.podIP;
            delete st.podIPs;
          } else {
            st.podIP = op.ips[0] ?? '';
            st.podIPs = op.ips.map((ip) => ({ ip }));
          }
        });
        return;
      case 'labels': {
        const pod = await this.core.readNamespacedPod({ name: op.pod, namespace });
        await this.core.replaceNamespacedPod({
          name: op.pod,
          namespace,
          body: { ...pod, metadata: { ...pod.metadata, labels: op.labels } },
        });
        return;
      }
      case 'deletePod':
        await this.core.deleteNamespacedPod({ name: op.pod, namespace, gracePeriodSeconds: 0 });
        return;
      case 'terminatePod':
        // No kubelet confirms the deletion, so a bound pod stays with its deletionTimestamp set.
        await this.core.deleteNamespacedPod({ name: op.pod, namespace, gracePeriodSeconds: 30 });
        return;
      case 'createService':
        await this.createService(op.service);
        return;
      case 'patchService': {
        const body: Record<string, unknown> = {};
        if (op.spec) body.spec = op.spec;
        if (op.labels) body.metadata = { labels: op.labels };
        await this.core.patchNamespacedService(
          { name: op.name, namespace, body },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        return;
      }
      case 'deleteService':
        await this.core.deleteNamespacedService({ name: op.name, namespace });
        return;
      case 'deleteEndpoints':
        await this.core.deleteNamespacedEndpoints({ name: op.name, namespace });
        return;
    }
  }

  async readEndpoints(name: string): Promise<V1Endpoints | undefined> {
    try {
      return await this.core.readNamespacedEndpoints({ name, namespace: this.ns });
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  private async createService(def: ServiceDef): Promise<void> {
    await this.core.createNamespacedService({
      namespace: this.ns,
      body: {
        metadata: { name: def.name, ...(def.labels ? { labels: def.labels } : {}) },
        spec: def.spec,
      },
    });
  }

  private async createPods(defs: readonly PodDef[]): Promise<void> {
    const pool = new PQueue({ concurrency: 16 });
    await pool.addAll(
      defs.map((def) => async () => {
        const created = await this.core.createNamespacedPod({
          namespace: this.ns,
          body: podBody(def),
        });
        await this.core.replaceNamespacedPodStatus({
          name: def.name,
          namespace: this.ns,
          body: { ...created, status: status(def) },
        });
      }),
    );
  }

  private async updateStatus(name: string, edit: (st: V1PodStatus) => void): Promise<void> {
    const pod = await this.core.readNamespacedPod({ name, namespace: this.ns });
    const st: V1PodStatus = structuredClone(pod.status ?? {});
    edit(st);
    await this.core.replaceNamespacedPodStatus({
      name,
      namespace: this.ns,
      body: { ...pod, status: st },
    });
  }
}
