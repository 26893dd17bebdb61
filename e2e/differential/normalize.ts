// What "the same Endpoints" means when comparing outrigger with upstream: everything a client can
// observe except identity and bookkeeping (uid, resourceVersion, timestamps, managedFields), the
// value of the managed-by label (each controller names itself), the trigger-time value (checked for
// presence and format only), and the order of subsets, addresses and ports.
import type { V1EndpointAddress, V1Endpoints } from '@kubernetes/client-node';

const managedBy = 'endpoints.kubernetes.io/managed-by';
const triggerTime = 'endpoints.kubernetes.io/last-change-trigger-time';
const controllerNames = new Set(['endpoint-controller', 'controller.outrigger.dev']);
const rfc3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;

function address(a: V1EndpointAddress): string {
  return JSON.stringify({
    ip: a.ip,
    hostname: a.hostname ?? null,
    nodeName: a.nodeName ?? null,
    targetRef: a.targetRef
      ? { kind: a.targetRef.kind, namespace: a.targetRef.namespace, name: a.targetRef.name }
      : null,
  });
}

export type Normalized = null | {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  subsets: string[];
};

export function normalize(
  ep: V1Endpoints | undefined,
  ignoreTriggerTimePresence = false,
): Normalized {
  if (ep === undefined) return null;
  const labels = { ...ep.metadata?.labels };
  const owner = labels[managedBy];
  if (owner !== undefined && controllerNames.has(owner)) labels[managedBy] = '<controller>';
  const { [triggerTime]: t, ...annotations } = { ...ep.metadata?.annotations };
  const valid = t === undefined || rfc3339.test(t);
  if (t !== undefined && (!valid || !ignoreTriggerTimePresence)) {
    annotations[triggerTime] = valid ? '<RFC3339>' : `<malformed ${t}>`;
  }
  const subsets = (ep.subsets ?? [])
    .map((s) =>
      JSON.stringify({
        ready: (s.addresses ?? []).map(address).sort(),
        notReady: (s.notReadyAddresses ?? []).map(address).sort(),
        ports: (s.ports ?? [])
          .map((p) =>
            JSON.stringify([p.name ?? null, p.port, p.protocol ?? null, p.appProtocol ?? null]),
          )
          .sort(),
      }),
    )
    .sort();
  return { labels, annotations, subsets };
}

/** A short, readable account of what differs, for failure messages. */
export function describeDifference(
  service: string,
  upstream: Normalized,
  outrigger: Normalized,
): string {
  if (upstream === null || outrigger === null) {
    return `${service}: upstream ${upstream === null ? 'has no Endpoints' : 'has Endpoints'}, outrigger ${outrigger === null ? 'has none' : 'has Endpoints'}`;
  }
  const lines: string[] = [];
  if (JSON.stringify(upstream.labels) !== JSON.stringify(outrigger.labels)) {
    lines.push(
      `labels: upstream ${JSON.stringify(upstream.labels)} outrigger ${JSON.stringify(outrigger.labels)}`,
    );
  }
  if (JSON.stringify(upstream.annotations) !== JSON.stringify(outrigger.annotations)) {
    lines.push(
      `annotations: upstream ${JSON.stringify(upstream.annotations)} outrigger ${JSON.stringify(outrigger.annotations)}`,
    );
  }
  const only = (a: string[], b: string[]): string[] => a.filter((x) => !b.includes(x));
  for (const s of only(upstream.subsets, outrigger.subsets))
    lines.push(`only upstream: ${s.slice(0, 600)}`);
  for (const s of only(outrigger.subsets, upstream.subsets))
    lines.push(`only outrigger: ${s.slice(0, 600)}`);
  return `${service}:\n  ${lines.join('\n  ')}`;
}
