// What an address source is. A source turns part of a backend's spec (and, for sources that need
// it, what outrigger has learnt about the world) into candidate addresses; every candidate then
// goes through the same judge (deny list, address policy), health checks and publication, whatever
// its source. Pods selected by spec.podSelector are not a source of this kind: their readiness is
// the pods' own and they are neither judged nor probed (see podSubsets in controllers/externalbackend/desired.ts).
import type { Resolution } from '../dns/resolution.ts';
import type { ExternalBackendSpec } from '../api/externalbackend.ts';

/** What sources read: the spec, and what outrigger has learnt for it (DNS answers). */
export interface SourceInput {
  readonly spec: ExternalBackendSpec;
  /** What the resolver knows of each name of spec.dnsNames. */
  readonly resolutions: ReadonlyMap<string, Resolution>;
}

/** One address to judge, check and publish. */
export interface Candidate {
  readonly ip: string;
  readonly nodeName?: string;
  readonly hostname?: string;
  /** The spec.dnsNames entry it was resolved from. */
  readonly dnsName?: string;
  /** Taken out of new connections (spec drain or the drain annotation). */
  readonly drain?: boolean;
  /** Its zone, or the backend's spec.zone. */
  readonly zone?: string;
  /** Listed under spec.backup: published only while backups are needed. */
  readonly backup?: true;
}

export interface AddressSource {
  /** The spec field it reads, for messages and docs. */
  readonly field: string;
  /** Its candidates, in spec order (pure). */
  readonly addresses: (input: SourceInput) => readonly Candidate[];
}

/** `{ zone }` when there is one: spread into a candidate, it leaves no undefined field behind. */
export function zoneOf(zone: string | undefined): { zone?: string } {
  return zone === undefined ? {} : { zone };
}
