// What a health-check kind is made of. Each kind (tcp.ts, http.ts) is one module: the API field it
// adds under spec.healthCheck, how one address's probe is built from it (pure), and how that probe
// runs (the only I/O). index.ts lists the kinds; the schema, the planner, the admission policy and
// the prober all read that list, so a new kind is a new module plus one line there.
import type { z } from 'zod';

/** The part every kind's probe of one address has; the kind adds its own fields. */
export interface ProbeBase<Name extends string> {
  readonly kind: Name;
  readonly ip: string;
  readonly port: number;
}

/** The schema of a kind's field: described (it lands in the CRD), and with a `port`. */
export type CheckSchema = z.ZodType<{ readonly port: number | string }>;

export interface ProbeKind<
  Name extends string,
  Check extends CheckSchema,
  Spec extends ProbeBase<Name>,
> {
  /** The field under spec.healthCheck, and the probe's `kind`. */
  readonly name: Name;
  readonly check: Check;
  /** The probe of one address, with the check's port already resolved to a number. */
  readonly spec: (check: z.output<Check>, ip: string, port: number) => Spec;
  /**
   * Runs one probe and resolves with why it failed, or undefined when it passed. May throw
   * synchronously on input the socket layer refuses (the caller turns that into a failure); must
   * give up by `timeoutMs` and send nothing but the probe.
   */
  readonly run: (spec: Spec, timeoutMs: number) => Promise<string | undefined>;
}
