// The EndpointSlice planner: the slices a backend owns and the endpoints it wants published in,
// creates, updates and deletes out. A pure function (no I/O, no clock), applied in one place by the
// reconciler. Like the upstream EndpointSlice reconciler it keeps churn low: an endpoint stays in
// the slice it is in, so one address changing state rewrites one slice; new endpoints go first into
// slices that are rewritten anyway, then into one slice with room, and only then into new slices;
// slices left empty are reused before new ones are made, and deleted otherwise.
import type { V1Endpoint, DiscoveryV1EndpointPort, V1EndpointSlice } from '@kubernetes/client-node';

export type AddressType = 'IPv4' | 'IPv6';

/** A slice this backend owns, as far as the planner cares. */
export interface OwnedSlice {
  readonly name: string;
  readonly addressType: string;
  readonly endpoints: readonly V1Endpoint[];
  /** Labels, owner and ports already what the template says (else the slice is rewritten). */
  readonly metaUpToDate: boolean;
}

export interface SlicePlanInput {
  /** Every slice this backend owns, of every address type. */
  readonly existing: readonly OwnedSlice[];
  /** The endpoints to publish per address type (each endpoint has exactly one address). */
  readonly desired: ReadonlyMap<AddressType, readonly V1Endpoint[]>;
  /** Names are `<base>-<family>` for the first slice and `<base>-<family>-<n>` after it. */
  readonly baseName: string;
  readonly maxEndpointsPerSlice: number;
  /** The slice to write around a name and its endpoints: labels, owner, ports. */
  readonly template: (
    name: string,
    addressType: AddressType,
    endpoints: V1Endpoint[],
  ) => V1EndpointSlice;
}

export interface SlicePlan {
  readonly creates: readonly V1EndpointSlice[];
  readonly updates: readonly V1EndpointSlice[];
  /** Names of owned slices to delete. */
  readonly deletes: readonly string[];
}

const families: readonly AddressType[] = ['IPv4', 'IPv6'];

export function sliceBaseName(base: string, family: AddressType): string {
  return `${base}-${family.toLowerCase()}`;
}

function endpointKey(e: V1Endpoint): string {
  return e.addresses[0] ?? '';
}

/** What about an endpoint is published: equal fingerprints mean nothing to write. */
export function endpointFingerprint(e: V1Endpoint): string {
  return JSON.stringify([
    e.addresses,
    e.conditions?.ready ?? null,
    e.conditions?.serving ?? null,
    e.conditions?.terminating ?? null,
    e.nodeName ?? null,
    e.hostname ?? null,
    e.zone ?? null,
    (e.hints?.forZones ?? []).map((z) => z.name),
    e.targetRef?.uid ?? null,
    e.targetRef?.name ?? null,
  ]);
}

export function portsFingerprint(ports: readonly DiscoveryV1EndpointPort[] | undefined): string {
  return JSON.stringify(
    (ports ?? [])
      .map((p) =>
        JSON.stringify([p.name ?? '', p.port, p.protocol ?? 'TCP', p.appProtocol ?? null]),
      )
      .sort(),
  );
}

/** Slice index from its name: 0 for `<base>`, n for `<base>-<n>`, undefined for anything else. */
function indexOf(name: string, base: string): number | undefined {
  if (name === base) return 0;
  if (!name.startsWith(`${base}-`)) return undefined;
  const rest = name.slice(base.length + 1);
  return /^[1-9]\d{0,5}$/.test(rest) ? Number(rest) : undefined;
}

interface Working {
  readonly name: string;
  endpoints: V1Endpoint[];
  changed: boolean;
}

function planFamily(
  input: SlicePlanInput,
  family: AddressType,
  out: { creates: V1EndpointSlice[]; updates: V1EndpointSlice[]; deletes: string[] },
): void {
  const max = input.maxEndpointsPerSlice;
  const base = sliceBaseName(input.baseName, family);
  const wanted = new Map<string, V1Endpoint>();
  for (const e of input.desired.get(family) ?? []) {
    const k = endpointKey(e);
    if (!wanted.has(k)) wanted.set(k, e);
  }
  // Lowest index first, so that the same inputs always give the same plan.
  // Slices under other names (a renamed Service) are deleted, not rewritten under their old name.
  const mine = input.existing
    .filter((s) => s.addressType === family && indexOf(s.name, base) !== undefined)
    .slice()
    .sort((a, b) => (indexOf(a.name, base) ?? 0) - (indexOf(b.name, base) ?? 0));
  const placed = new Set<string>();
  const kept: Working[] = [];
  const emptied: string[] = [];
  for (const s of mine) {
    const w: Working = { name: s.name, endpoints: [], changed: !s.metaUpToDate };
    for (const e of s.endpoints) {
      const k = endpointKey(e);
      const want = wanted.get(k);
      // Gone, a duplicate of one placed already, or over a lowered limit: dropped from here.
      if (want === undefined || placed.has(k) || w.endpoints.length >= max) {
        w.changed = true;
        continue;
      }
      placed.add(k);
      if (endpointFingerprint(want) !== endpointFingerprint(e)) w.changed = true;
      w.endpoints.push(want);
    }
    if (w.endpoints.length === 0) emptied.push(s.name);
    else kept.push(w);
  }
  const pending = [...wanted.values()].filter((e) => !placed.has(endpointKey(e)));
  const take = (w: Working, n: number): void => {
    const moved = pending.splice(0, Math.min(n, max - w.endpoints.length));
    if (moved.length === 0) return;
    w.endpoints.push(...moved);
    w.changed = true;
  };
  // 1. Slices rewritten anyway take new endpoints for free.
  for (const w of kept) if (w.changed) take(w, pending.length);
  // 2. Whole slices' worth of new endpoints go to emptied slices, then to new ones; what is left
  //    over goes into the one unchanged slice that fits it best, if any, else a new slice.
  const fresh: Working[] = [];
  const used = new Set(mine.map((s) => s.name));
  let next = 0;
  const newName = (): string => {
    for (;;) {
      const name = next === 0 ? base : `${base}-${String(next)}`;
      next++;
      if (!used.has(name)) {
        used.add(name);
        return name;
      }
    }
  };
  while (pending.length >= max) {
    const reuse = emptied.shift();
    const w: Working = { name: reuse ?? newName(), endpoints: [], changed: true };
    take(w, max);
    (reuse === undefined ? fresh : kept).push(w);
  }
  if (pending.length > 0) {
    const fits = kept
      .filter((w) => !w.changed && max - w.endpoints.length >= pending.length)
      .sort((a, b) => b.endpoints.length - a.endpoints.length)[0];
    if (fits !== undefined) take(fits, pending.length);
    else {
      const reuse = emptied.shift();
      const w: Working = { name: reuse ?? newName(), endpoints: [], changed: true };
      take(w, pending.length);
      (reuse === undefined ? fresh : kept).push(w);
    }
  }
  for (const w of kept)
    if (w.changed) out.updates.push(input.template(w.name, family, w.endpoints));
  for (const w of fresh) out.creates.push(input.template(w.name, family, w.endpoints));
  out.deletes.push(...emptied);
}

/** Existing owned slices and desired endpoints → the writes that make one into the other. */
export function planSlices(input: SlicePlanInput): SlicePlan {
  const out = {
    creates: [] as V1EndpointSlice[],
    updates: [] as V1EndpointSlice[],
    deletes: [] as string[],
  };
  for (const family of families) planFamily(input, family, out);
  // Owned slices under no name the plan uses (another Service name, an FQDN slice) go.
  for (const s of input.existing) {
    const family = families.find((f) => f === s.addressType);
    if (
      family === undefined ||
      indexOf(s.name, sliceBaseName(input.baseName, family)) === undefined
    )
      out.deletes.push(s.name);
  }
  return out;
}
