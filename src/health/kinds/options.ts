// The options the TLS-speaking kinds share (serverName, caBundle, insecureSkipVerify) and the
// request headers of the http kind: their schema, and how a check's references to Secrets and
// ConfigMaps become a probe (pure; what cannot be read becomes a refusal, never a weaker probe).
import { isIP } from 'node:net';
import { z } from 'zod';
import { cel, type Rule } from '../../runtime/crdfields.ts';
import { CaBundle, readCaBundle } from './cabundle.ts';
import { probeRefLabel, type ProbeRef, type ProbeRefs } from './kind.ts';
import { Sensitive } from './sensitive.ts';

/**
 * A string that must match `pattern` and pass `extra`, refused at admission with the CEL rules
 * (one .meta() for all of them: a later .meta() would replace the earlier rules).
 */
function text(
  base: z.ZodString,
  pattern: RegExp,
  message: string,
  extra: readonly { check: (s: string) => boolean; rule: Rule }[] = [],
) {
  if (pattern.source.includes('"')) throw new Error('pattern must not contain a double quote');
  let s = base.regex(pattern, message);
  for (const e of extra) s = s.refine(e.check, e.rule.message);
  return s.meta(
    cel({ rule: `self.matches(r"${pattern.source}")`, message }, ...extra.map((e) => e.rule)),
  );
}

const dnsSubdomainPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const objectName = text(
  z.string().min(1).max(253),
  dnsSubdomainPattern,
  'must be the name of a Secret or ConfigMap: lowercase letters, digits, "-" and "."',
);

const keyName = text(
  z.string().min(1).max(253),
  /^[-._a-zA-Z0-9]+$/,
  'must be a key of a Secret or ConfigMap: letters, digits, "-", "_" and "."',
);

const serverName = text(
  z.string().min(1).max(253),
  dnsSubdomainPattern,
  'must be a DNS name in lowercase, e.g. "db.example.com" (no wildcard, no port)',
  [
    {
      check: (s) => isIP(s) === 0,
      // SNI cannot carry an IP (RFC 6066); leaving serverName out already uses the address.
      rule: {
        rule: '!isIP(self)',
        message: 'must be a DNS name, not an IP address: leave serverName out to use the address',
      },
    },
  ],
);

const caBundle = z
  .object({
    secretName: objectName
      .describe("A Secret in the backend's namespace that holds the bundle.")
      .optional(),
    configMapName: objectName
      .describe("A ConfigMap in the backend's namespace that holds the bundle.")
      .optional(),
    key: keyName.describe('The key that holds the PEM certificates, e.g. "ca.crt".'),
  })
  .refine((c) => (c.secretName === undefined) !== (c.configMapName === undefined), {
    message: 'set exactly one of secretName and configMapName',
  })
  .meta(
    cel({
      rule: 'has(self.secretName) != has(self.configMapName)',
      message: 'set exactly one of secretName and configMapName',
    }),
  );

/** The fields every TLS-speaking kind has. */
export const tlsFields = {
  serverName: serverName
    .describe(
      "The server's DNS name: sent in TLS as SNI and, for HTTP, as the Host header; with caBundle, the name the certificate must carry. Default: none (no SNI; the Host header and the name checked are the address's IP).",
    )
    .optional(),
  caBundle: caBundle
    .describe(
      "PEM CA certificates, from a Secret or ConfigMap key, that the server's certificate is verified against: its chain must lead to one of them (the system's roots are not used) and it must name serverName, or the address's IP when serverName is not set. Without caBundle the certificate is NOT verified: any certificate passes (its expiry is still reported). A missing key fails the check; it never runs unverified.",
    )
    .optional(),
  insecureSkipVerify: z
    .boolean()
    .describe(
      "true says plainly that the server's certificate is not verified (as without caBundle). It cannot be combined with caBundle, and false needs a caBundle.",
    )
    .optional(),
};

export type TlsFields = z.output<z.ZodObject<typeof tlsFields>>;

interface ObjectRule<T> {
  readonly check: (c: T) => boolean;
  readonly rule: Rule;
}

/** The rules between the TLS fields of a check; `tlsOn` is a CEL expression over `self`. */
export function tlsRules<T extends TlsFields>(tlsOn?: {
  readonly cel: string;
  readonly check: (c: T) => boolean;
  readonly why: string;
}): ObjectRule<T>[] {
  const rules: ObjectRule<T>[] = [
    {
      check: (c) => c.caBundle === undefined || c.insecureSkipVerify !== true,
      rule: {
        rule: '!has(self.caBundle) || !has(self.insecureSkipVerify) || !self.insecureSkipVerify',
        message:
          'insecureSkipVerify: true turns off the verification that caBundle asks for: set one of them',
      },
    },
    {
      check: (c) => c.insecureSkipVerify !== false || c.caBundle !== undefined,
      rule: {
        rule: '!has(self.insecureSkipVerify) || self.insecureSkipVerify || has(self.caBundle)',
        message:
          'insecureSkipVerify: false needs a caBundle to verify against (without one the certificate is not verified): set caBundle, or leave insecureSkipVerify out',
      },
    },
  ];
  if (tlsOn !== undefined)
    rules.push({
      check: (c) =>
        tlsOn.check(c) || (c.caBundle === undefined && c.insecureSkipVerify === undefined),
      rule: {
        rule: `(${tlsOn.cel}) || (!has(self.caBundle) && !has(self.insecureSkipVerify))`,
        message: `caBundle and insecureSkipVerify apply to TLS only: ${tlsOn.why}`,
      },
    });
  return rules;
}

/** Attaches object rules to a check schema, both for zod at run time and as CEL for admission. */
export function withRules<S extends z.ZodObject>(
  schema: S,
  rules: readonly ObjectRule<z.output<S>>[],
): S {
  let s = schema;
  for (const r of rules) s = s.refine(r.check, r.rule.message);
  return s.meta(cel(...rules.map((r) => r.rule)));
}

/** How a probe speaks TLS, resolved from a check. */
export interface TlsSettings {
  /** SNI and the name verified; absent: no SNI, and the IP is verified. */
  readonly serverName?: string;
  /** The CA bundle to verify against; absent: the certificate is not verified. */
  readonly ca?: CaBundle;
}

/** Reads one reference through `parse`, remembered by refs when they can (see ProbeRefs.parsed). */
function readParsed<T>(refs: ProbeRefs, ref: ProbeRef, parse: (value: string) => T): T | undefined {
  if (refs.parsed === undefined) {
    const v = read(refs, ref);
    return v === undefined ? undefined : parse(v);
  }
  try {
    return refs.parsed(ref, parse);
  } catch {
    return undefined;
  }
}

/** Reads one reference; a refs implementation that throws reads nothing (spec() never throws). */
function read(refs: ProbeRefs, ref: ProbeRef): string | undefined {
  try {
    const v = refs.read(ref);
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

const describeRef = (r: ProbeRef): string => `${r.kind} ${r.name}`;

function caRef(c: TlsFields): ProbeRef | undefined {
  if (c.caBundle === undefined) return undefined;
  const { secretName, configMapName, key } = c.caBundle;
  return secretName !== undefined
    ? { kind: 'Secret', name: secretName, key }
    : { kind: 'ConfigMap', name: configMapName ?? '', key };
}

/** The Secret or ConfigMap key a check's caBundle names, if any. */
export function tlsRefs(c: TlsFields): ProbeRef[] {
  const ref = caRef(c);
  return ref === undefined ? [] : [ref];
}

/** Why a key cannot be read: it is missing, or the object is not labelled for health checks. */
function unreadable(refs: ProbeRefs, ref: ProbeRef): string {
  let why: string | undefined;
  try {
    why = refs.unavailable?.(ref);
  } catch {
    why = undefined;
  }
  if (why !== undefined) return `${describeRef(ref)} cannot be read: ${why}`;
  return `${describeRef(ref)} has no key ${ref.key}, or does not exist or lacks the label ${probeRefLabel}: "true"`;
}

/** The TLS settings of a check, or why they cannot be had. */
export function tlsSettings(
  c: TlsFields,
  refs: ProbeRefs,
): { readonly tls: TlsSettings } | { readonly refused: string } {
  const serverName = c.serverName !== undefined ? { serverName: c.serverName } : {};
  const ref = caRef(c);
  if (ref === undefined) return { tls: serverName };
  const ca = readParsed(refs, ref, readCaBundle);
  if (ca === undefined) return { refused: `caBundle: ${unreadable(refs, ref)}` };
  if (!(ca instanceof CaBundle))
    return { refused: `caBundle: ${describeRef(ref)} key ${ref.key} ${ca.refused}` };
  return { tls: { ...serverName, ca } };
}

// Request headers (http kind).

/** Header names the prober sets itself, or that would change how the request is framed. */
const reservedHeaders = [
  'connection',
  'content-length',
  'expect',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];

/** RFC 7230 token characters. */
const headerNamePattern = /^[-!#$%&'*+.^_`|~0-9A-Za-z]+$/;

export const maxHeaderValueLength = 4096;

/** Printable ASCII and tab: no CR, LF or NUL that could split the request. */
const headerValuePattern = /^[\t\x20-\x7e]*$/;
const headerValueMessage = 'must be printable ASCII: no CR, LF, NUL or other control characters';

const headerName = text(
  z.string().min(1).max(128),
  headerNamePattern,
  "must be a header name (an RFC 7230 token: letters, digits and !#$%&'*+-.^_`|~)",
  [
    {
      check: (s) => s.toLowerCase() !== 'host',
      rule: {
        rule: "self.lowerAscii() != 'host'",
        message: 'the Host header comes from serverName: set serverName instead',
      },
    },
    {
      check: (s) => !reservedHeaders.includes(s.toLowerCase()),
      rule: {
        rule: `!(self.lowerAscii() in [${reservedHeaders.map((h) => `'${h}'`).join(', ')}])`,
        message:
          'hop-by-hop and framing headers (Connection, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade, Content-Length, Expect) are set by the prober and cannot be given',
      },
    },
  ],
);

const header = withRules(
  z.object({
    name: headerName.describe('The header name, e.g. "Authorization".'),
    value: text(z.string().max(maxHeaderValueLength), headerValuePattern, headerValueMessage)
      .describe(
        'The value, as text in the spec (not secret: anyone who can read the object sees it).',
      )
      .optional(),
    valueFrom: z
      .object({
        secretKeyRef: z
          .object({
            name: objectName.describe("A Secret in the backend's namespace."),
            key: keyName.describe('The key whose value is sent.'),
          })
          .describe(
            'The value from a Secret key (a single trailing line break is dropped). A missing key fails the check; the header is never left out.',
          ),
      })
      .describe('Where the value comes from instead of value.')
      .optional(),
  }),
  [
    {
      check: (h) => (h.value === undefined) !== (h.valueFrom === undefined),
      rule: {
        rule: 'has(self.value) != has(self.valueFrom)',
        message: 'set exactly one of value and valueFrom',
      },
    },
  ],
);

export const headersField = z
  .array(header)
  .max(16)
  .refine(
    (hs) => new Set(hs.map((h) => h.name.toLowerCase())).size === hs.length,
    'header names must be unique (case does not matter)',
  )
  .describe(
    'Request headers to send, at most 16. Their values never appear in status messages or logs, but they go to whatever answers at the address: over HTTP, or HTTPS without caBundle, nothing checks who that is.',
  )
  .meta(
    cel({
      rule: 'self.all(h, self.exists_one(o, o.name.lowerAscii() == h.name.lowerAscii()))',
      message: 'header names must be unique (case does not matter)',
    }),
  );

export type HeaderFields = z.output<typeof headersField>;

/** A header as a probe sends it; the value hides from logs and JSON (see sensitive.ts). */
export interface ProbeHeader {
  readonly name: string;
  readonly value: Sensitive;
}

/** The Secret keys a check's headers name. */
export function headerRefs(hs: HeaderFields): ProbeRef[] {
  return hs.flatMap((h) => {
    const from = h.valueFrom?.secretKeyRef;
    return from === undefined ? [] : [{ kind: 'Secret' as const, name: from.name, key: from.key }];
  });
}

/** The headers of a check with their Secret values read, or why they cannot be had. */
export function probeHeaders(
  hs: HeaderFields,
  refs: ProbeRefs,
): { readonly headers: readonly ProbeHeader[] } | { readonly refused: string } {
  const headers: ProbeHeader[] = [];
  for (const [i, h] of hs.entries()) {
    if (h.value !== undefined) {
      headers.push({ name: h.name, value: new Sensitive(h.value) });
      continue;
    }
    const from = h.valueFrom?.secretKeyRef;
    const where = `headers[${i}] (${h.name})`;
    if (from === undefined) return { refused: `${where}: has no value` };
    const ref: ProbeRef = { kind: 'Secret', name: from.name, key: from.key };
    const raw = read(refs, ref);
    if (raw === undefined) return { refused: `${where}: ${unreadable(refs, ref)}` };
    // A Secret made from a file usually ends with a line break, which is no part of the value.
    const value = raw.replace(/\r?\n$/, '');
    if (value.length > maxHeaderValueLength || !headerValuePattern.test(value))
      return {
        refused: `${where}: ${describeRef(ref)} key ${from.key} is not a valid header value (printable ASCII without control characters, at most ${maxHeaderValueLength} characters)`,
      };
    headers.push({ name: h.name, value: new Sensitive(value) });
  }
  return { headers };
}
