// The health-check kinds outrigger knows. To add one: write a module like tcp.ts (its API field
// under spec.healthCheck, how an address's probe is built, how it runs), then add it to
// `probeKinds` and `runners` below (the compiler insists on the second once the first has it) and run
// `npm run generate`: the CRD's field and rules, the admission policy's port list and the prober
// follow from this list.
import type { z } from 'zod';
import { http } from './http.ts';
import { tcp } from './tcp.ts';

export const probeKinds = [tcp, http] as const;

/** The probe of one address, of any kind: what the listed kinds build. */
export type ProbeSpec = ReturnType<(typeof probeKinds)[number]['spec']>;

export type ProbeKindName = (typeof probeKinds)[number]['name'];

export const probeKindNames: readonly ProbeKindName[] = probeKinds.map((k) => k.name);

/** The fields the kinds add under spec.healthCheck, each optional (the schema wants exactly one). */
export type CheckFields = {
  readonly [K in (typeof probeKinds)[number] as K['name']]: z.ZodOptional<K['check']>;
};

export function checkFields(): CheckFields {
  return Object.fromEntries(probeKinds.map((k) => [k.name, k.check.optional()])) as CheckFields;
}

type Runner<S> = (spec: S, timeoutMs: number) => Promise<string | undefined>;

const runners: { readonly [K in ProbeKindName]: Runner<Extract<ProbeSpec, { kind: K }>> } = {
  tcp: tcp.run,
  http: http.run,
};

/** Runs one probe of any kind (see ProbeKind.run). */
export function runProbe(spec: ProbeSpec, timeoutMs: number): Promise<string | undefined> {
  // TypeScript cannot correlate spec.kind with its runner across the union (microsoft/TypeScript
  // #30581); `runners` is checked kind by kind above.
  return (runners[spec.kind] as Runner<ProbeSpec>)(spec, timeoutMs);
}

/**
 * The probe of one address from a backend's health check (the kind that is set), or undefined
 * when none is set or its named port does not exist.
 */
export function probeFor(
  healthCheck: { readonly [K in ProbeKindName]?: z.output<CheckFields[K]> },
  ip: string,
  resolvePort: (port: number | string) => number | undefined,
): ProbeSpec | undefined {
  for (const k of probeKinds) {
    const check = healthCheck[k.name];
    if (check === undefined) continue;
    const port = resolvePort(check.port);
    if (port === undefined) return undefined;
    // As above: each kind's spec() is checked against its own field in its module.
    return (k.spec as (c: typeof check, ip: string, port: number) => ProbeSpec)(check, ip, port);
  }
  return undefined;
}
