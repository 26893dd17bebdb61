// The health-check kinds outrigger knows. To add one: write a module like tcp.ts (its API field
// under spec.healthCheck, how an address's probe is built, how it runs), then add it to
// `probeKinds` and `runners` below (the compiler insists on the second once the first has it) and run
// `npm run generate`: the CRD's field and rules, the admission policy's port list and the prober
// follow from this list.
import { isIP } from 'node:net';
import type { z } from 'zod';
import { grpc } from './grpc.ts';
import { http } from './http.ts';
import { noRefs, type ProbeOutcome, type ProbeRef, type ProbeRefs } from './kind.ts';
import { tcp } from './tcp.ts';
import { tls } from './tls.ts';

export type { ProbeOutcome, ProbeRef, ProbeRefs } from './kind.ts';
export { noRefs, ParsedRefs, probeRefLabel } from './kind.ts';

export const probeKinds = [tcp, http, tls, grpc] as const;

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

type Runner<S> = (spec: S, timeoutMs: number) => Promise<ProbeOutcome>;

const runners: { readonly [K in ProbeKindName]: Runner<Extract<ProbeSpec, { kind: K }>> } = {
  tcp: tcp.run,
  http: http.run,
  tls: tls.run,
  grpc: grpc.run,
};

/**
 * Runs one probe of any kind (see ProbeKind.run). A refused probe fails with its reason and sends
 * nothing; so does one whose address is not an IP, which a kind's client would otherwise look up
 * in DNS.
 */
export function runProbe(spec: ProbeSpec, timeoutMs: number): Promise<ProbeOutcome> {
  if (spec.refused !== undefined) return Promise.resolve({ failure: spec.refused });
  if (isIP(spec.ip) === 0) return Promise.resolve({ failure: 'the address is not an IP' });
  // TypeScript cannot correlate spec.kind with its runner across the union (microsoft/TypeScript
  // #30581); `runners` is checked kind by kind above.
  return (runners[spec.kind] as Runner<ProbeSpec>)(spec, timeoutMs);
}

/**
 * The probe of one address from a backend's health check (the kind that is set), or undefined
 * when none is set or its named port does not exist. What the check names in Secrets and
 * ConfigMaps is read through `refs`; a key that cannot be read gives a probe that fails saying
 * so (never one that runs without the CA bundle or header it names). The default reads nothing.
 */
export function probeFor(
  healthCheck: { readonly [K in ProbeKindName]?: z.output<CheckFields[K]> },
  ip: string,
  resolvePort: (port: number | string) => number | undefined,
  refs: ProbeRefs = noRefs,
): ProbeSpec | undefined {
  for (const k of probeKinds) {
    const check = healthCheck[k.name];
    if (check === undefined) continue;
    const port = resolvePort(check.port);
    if (port === undefined) return undefined;
    // As above: each kind's spec() is checked against its own field in its module.
    return (k.spec as (c: typeof check, ip: string, port: number, refs: ProbeRefs) => ProbeSpec)(
      check,
      ip,
      port,
      refs,
    );
  }
  return undefined;
}

/** The Secret and ConfigMap keys a backend's health check names (none without a check). */
export function probeRefsOf(healthCheck: {
  readonly [K in ProbeKindName]?: z.output<CheckFields[K]>;
}): readonly ProbeRef[] {
  for (const k of probeKinds) {
    const check = healthCheck[k.name];
    if (check === undefined) continue;
    // As in probeFor: each kind's refs() is checked against its own field in its module.
    return (k.refs as (c: typeof check) => readonly ProbeRef[])(check);
  }
  return [];
}
