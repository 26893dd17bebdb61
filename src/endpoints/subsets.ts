// Canonical form of Endpoints subsets, as upstream's RepackSubsets (pkg/api/v1/endpoints) produces
// it, plus the 1000-address capacity rule and the semantic comparison that decides whether to write.
import type {
  V1EndpointAddress,
  CoreV1EndpointPort,
  V1EndpointSubset,
} from '@kubernetes/client-node';

/** Upstream's cap on addresses (ready + not ready) stored in one Endpoints object. */
export const maxCapacity = 1000;

function addressKey(a: V1EndpointAddress): string {
  return `${a.ip}\u0000${a.targetRef?.uid ?? ''}`;
}

function portKey(p: CoreV1EndpointPort | undefined): string {
  return p === undefined
    ? '-'
    : JSON.stringify([p.name ?? '', p.port, p.protocol ?? '', p.appProtocol ?? null]);
}

/** Byte-wise IP order, then UID, with addresses lacking a targetRef first — as upstream sorts. */
export function compareAddresses(a: V1EndpointAddress, b: V1EndpointAddress): number {
  if (a.ip !== b.ip) return a.ip < b.ip ? -1 : 1;
  const ua = a.targetRef?.uid;
  const ub = b.targetRef?.uid;
  if (ub === undefined) return ua === undefined ? 0 : 1;
  if (ua === undefined) return -1;
  return ua < ub ? -1 : ua > ub ? 1 : 0;
}

function comparePorts(a: CoreV1EndpointPort, b: CoreV1EndpointPort): number {
  const ka = portKey(a);
  const kb = portKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * Merges subsets into canonical form: one entry per address (IP + pod UID; the first occurrence's
 * fields win), an address not ready on a port stays not ready there, and ports that carry exactly
 * the same addresses with the same readiness share one subset. Addresses are sorted by IP then UID.
 * Upstream orders subsets and ports by a hash; here they are ordered by port, which the API treats
 * as equivalent (compare with subsetsEqual, never by position).
 */
export function repackSubsets(subsets: readonly V1EndpointSubset[]): V1EndpointSubset[] {
  const addresses = new Map<string, V1EndpointAddress>();
  const byPort = new Map<
    string,
    { port: CoreV1EndpointPort | undefined; ready: Map<string, boolean> }
  >();

  const record = (
    port: CoreV1EndpointPort | undefined,
    addr: V1EndpointAddress,
    ready: boolean,
  ): void => {
    const key = addressKey(addr);
    if (!addresses.has(key)) addresses.set(key, addr);
    const pk = portKey(port);
    let entry = byPort.get(pk);
    if (entry === undefined) {
      entry = { port, ready: new Map() };
      byPort.set(pk, entry);
    }
    if (entry.ready.get(key) !== false) entry.ready.set(key, ready);
  };

  for (const subset of subsets) {
    const ports: (CoreV1EndpointPort | undefined)[] = subset.ports?.length
      ? subset.ports
      : [undefined];
    for (const port of ports) {
      for (const a of subset.addresses ?? []) record(port, a, true);
      for (const a of subset.notReadyAddresses ?? []) record(port, a, false);
    }
  }

  const groups = new Map<string, { ports: CoreV1EndpointPort[]; ready: Map<string, boolean> }>();
  for (const { port, ready } of byPort.values()) {
    const groupKey = [...ready.entries()]
      .map(([k, r]) => `${k}\u0000${r ? '1' : '0'}`)
      .sort()
      .join('\u0001');
    let group = groups.get(groupKey);
    if (group === undefined) {
      group = { ports: [], ready };
      groups.set(groupKey, group);
    }
    if (port !== undefined) group.ports.push(port);
  }

  const result: V1EndpointSubset[] = [];
  for (const { ports, ready } of groups.values()) {
    const readyAddrs: V1EndpointAddress[] = [];
    const notReadyAddrs: V1EndpointAddress[] = [];
    for (const [key, isReady] of ready) {
      const addr = addresses.get(key);
      if (addr !== undefined) (isReady ? readyAddrs : notReadyAddrs).push(addr);
    }
    const subset: V1EndpointSubset = {};
    if (readyAddrs.length > 0) subset.addresses = readyAddrs.sort(compareAddresses);
    if (notReadyAddrs.length > 0) subset.notReadyAddresses = notReadyAddrs.sort(compareAddresses);
    if (ports.length > 0) subset.ports = ports.sort(comparePorts);
    result.push(subset);
  }
  return result.sort((a, b) => {
    const ka = portKey(a.ports?.[0]);
    const kb = portKey(b.ports?.[0]);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

export function countAddresses(subsets: readonly V1EndpointSubset[] | undefined): {
  ready: number;
  notReady: number;
} {
  let ready = 0;
  let notReady = 0;
  for (const s of subsets ?? []) {
    ready += s.addresses?.length ?? 0;
    notReady += s.notReadyAddresses?.length ?? 0;
  }
  return { ready, notReady };
}

/**
 * Applies the capacity rule: over maxCapacity addresses, keep ready ones and drop not-ready ones
 * first, sharing what is kept between subsets in proportion (rounded up, the last subset taking what
 * is left). Returns a new array and whether anything was cut; the input is not modified.
 */
export function truncateSubsets(subsets: readonly V1EndpointSubset[]): {
  subsets: V1EndpointSubset[];
  truncated: boolean;
} {
  const { ready, notReady } = countAddresses(subsets);
  if (ready + notReady <= maxCapacity) return { subsets: [...subsets], truncated: false };
  const truncateReady = ready > maxCapacity;
  const max = truncateReady ? maxCapacity : maxCapacity - ready;
  const total = truncateReady ? ready : notReady;
  let canBeAdded = max;
  const out = subsets.map((subset) => {
    const inSubset = (truncateReady ? subset.addresses : subset.notReadyAddresses)?.length ?? 0;
    const toBeAdded = Math.min(Math.ceil((inSubset / total) * max), canBeAdded);
    const next: V1EndpointSubset = { ...subset };
    if (truncateReady) {
      const kept = (subset.addresses ?? []).slice(0, toBeAdded);
      if (kept.length > 0) next.addresses = kept;
      else delete next.addresses;
      delete next.notReadyAddresses;
      canBeAdded -= kept.length;
    } else {
      const kept = (subset.notReadyAddresses ?? []).slice(0, toBeAdded);
      if (kept.length > 0) next.notReadyAddresses = kept;
      else delete next.notReadyAddresses;
      canBeAdded -= kept.length;
    }
    return next;
  });
  return { subsets: out, truncated: true };
}

/** The fields of an address that matter, in a fixed shape (targetRef.resourceVersion ignored). */
function addressShape(a: V1EndpointAddress): unknown {
  const r = a.targetRef;
  return [
    a.ip,
    a.hostname ?? null,
    a.nodeName ?? null,
    r === undefined
      ? null
      : [
          r.kind ?? '',
          r.namespace ?? '',
          r.name ?? '',
          r.uid ?? '',
          r.apiVersion ?? '',
          r.fieldPath ?? '',
        ],
  ];
}

/** A canonical string for a subset list: equal strings mean semantically equal subsets. */
export function subsetsFingerprint(subsets: readonly V1EndpointSubset[] | undefined): string {
  const shapes = (subsets ?? []).map((s) =>
    JSON.stringify([
      (s.addresses ?? [])
        .map(addressShape)
        .map((x) => JSON.stringify(x))
        .sort(),
      (s.notReadyAddresses ?? [])
        .map(addressShape)
        .map((x) => JSON.stringify(x))
        .sort(),
      (s.ports ?? []).map(portKey).sort(),
    ]),
  );
  return JSON.stringify(shapes.sort());
}

/**
 * Whether the stored subsets already say what `desired` says, ignoring the order of subsets,
 * addresses and ports and the pods' resourceVersions. Like upstream, a stored list that is not in
 * canonical form (written by hand, say) is compared again after repacking it.
 */
export function subsetsEqual(
  current: readonly V1EndpointSubset[] | undefined,
  desired: readonly V1EndpointSubset[] | undefined,
): boolean {
  const want = subsetsFingerprint(desired);
  return (
    subsetsFingerprint(current) === want ||
    subsetsFingerprint(repackSubsets(current ?? [])) === want
  );
}
