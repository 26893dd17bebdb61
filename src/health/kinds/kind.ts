// What a health-check kind is made of. Each kind (tcp.ts, http.ts, tls.ts, grpc.ts) is one module:
// the API field it adds under spec.healthCheck, how one address's probe is built from it (pure), and
// how that probe runs (the only I/O). index.ts lists the kinds; the schema, the planner, the
// admission policy and the prober all read that list, so a new kind is a new module plus one line
// there.
import type { z } from 'zod';

/** The part every kind's probe of one address has; the kind adds its own fields. */
export interface ProbeBase<Name extends string> {
  readonly kind: Name;
  readonly ip: string;
  readonly port: number;
  /**
   * Why this probe cannot be sent as the check asks (a Secret or ConfigMap key it names is
   * missing or unusable). Such a probe fails with this message and sends nothing: a check that
   * asked for verification or a credential must never run without it.
   */
  readonly refused?: string;
}

/** A key of a Secret or ConfigMap in the backend's namespace that a check names. */
export interface ProbeRef {
  readonly kind: 'Secret' | 'ConfigMap';
  readonly name: string;
  readonly key: string;
}

/**
 * The label a Secret or ConfigMap must carry (value "true") for a check to read it. outrigger
 * caches only objects with this label, and only in namespaces whose backends name one: whoever
 * labels the object says it may be used by health checks, so a user who may write an
 * ExternalBackend but not read a Secret cannot have outrigger send that Secret anywhere.
 */
export const probeRefLabel = 'outrigger.dev/health-check';

/**
 * Reads what checks name in Secrets and ConfigMaps (a CA bundle, a header value). The controller
 * implements it from its caches; spec() only reads through it, so building a probe stays pure.
 */
export interface ProbeRefs {
  /** The key's value as text, or undefined when the object or the key does not exist. */
  read(ref: ProbeRef): string | undefined;
  /**
   * Why the key cannot be read although it may exist (its value is too large to keep, or no
   * object of its kind can be listed), if that is so.
   */
  unavailable?(ref: ProbeRef): string | undefined;
  /**
   * The key's value through `parse`, remembered while the object is unchanged: a CA bundle of
   * 256 KiB is then parsed once per version of its Secret, not at every address of every
   * reconcile. Without it, parse(read(ref)).
   */
  parsed?<T>(ref: ProbeRef, parse: (value: string) => T): T | undefined;
}

/**
 * Remembers what a parser made of a key of a cached object, for as long as that object is the
 * cached version: cached objects are frozen and replaced on every change, so the object itself
 * is the key (never the value's text, whose hash a tenant could make collide).
 */
export class ParsedRefs {
  readonly #byObject = new WeakMap<object, Map<(value: string) => unknown, Map<string, unknown>>>();

  get<T>(object: object, key: string, value: string, parse: (value: string) => T): T {
    let byParser = this.#byObject.get(object);
    if (byParser === undefined) {
      byParser = new Map();
      this.#byObject.set(object, byParser);
    }
    let byKey = byParser.get(parse);
    if (byKey === undefined) {
      byKey = new Map();
      byParser.set(parse, byKey);
    }
    if (byKey.has(key)) return byKey.get(key) as T;
    const out = parse(value);
    byKey.set(key, out);
    return out;
  }
}

/** Refs that read nothing: a check that names a Secret or ConfigMap gets a refused probe. */
export const noRefs: ProbeRefs = { read: () => undefined };

/** What one probe found. */
export interface ProbeOutcome {
  /** Why it failed; absent when it passed. */
  readonly failure?: string;
  /**
   * The notAfter of the leaf certificate the server presented (ms since epoch), whenever a TLS
   * handshake got that far, verified or not, passed or failed.
   */
  readonly certificateNotAfter?: number;
}

// The instants an RFC 3339 date-time (status, the CRD's format) can carry: years 0000 to 9999.
const earliest = Date.parse('0000-01-01T00:00:00.000Z');
const latest = Date.parse('9999-12-31T23:59:59.999Z');

/**
 * Whether a certificate's notAfter (ms) is a time status can show. A certificate with a malformed
 * time still completes an unverified handshake, and its parsed date is then NaN.
 */
export function isCertificateTime(t: number | undefined): t is number {
  return t !== undefined && Number.isFinite(t) && t >= earliest && t <= latest;
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
  /**
   * The probe of one address, with the check's port already resolved to a number and what the
   * check names in Secrets and ConfigMaps read through `refs`. Pure, and never throws: what it
   * cannot resolve becomes `refused`.
   */
  readonly spec: (check: z.output<Check>, ip: string, port: number, refs: ProbeRefs) => Spec;
  /** The Secret and ConfigMap keys the check names, so that their changes redo the probe. */
  readonly refs: (check: z.output<Check>) => readonly ProbeRef[];
  /**
   * Runs one probe (never a refused one) and resolves with what it found. May throw
   * synchronously on input the socket layer refuses (the caller turns that into a failure); must
   * give up by `timeoutMs` and send nothing but the probe.
   */
  readonly run: (spec: Spec, timeoutMs: number) => Promise<ProbeOutcome>;
}
