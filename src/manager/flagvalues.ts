import { isIP } from 'node:net';
import { z } from 'zod';
import { isValidCIDR } from '../net/denylist.ts';

/**
 * The kinds of value a flag takes, as zod schemas from the string on the command line (or in the
 * environment) to what the operator uses. Shared by several rows of the flag table (flags.ts);
 * the bounds that concern one flag alone stay in its row.
 */

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const namespaceName = z
  .string()
  .max(63)
  .regex(dns1123Label, 'must be a DNS-1123 label (lowercase letters, digits and "-")');

/** Comma-separated, blanks and empty items ignored, so that "a, b," is what the user meant. */
function commaList<T extends z.ZodType<unknown, string>>(item: T) {
  return z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== ''),
    )
    .pipe(z.array(item));
}

export const namespaceList = commaList(namespaceName);

/** `host:port`, `:port` (all interfaces) or `0` (disabled), as controller-runtime accepts them. */
export const bindAddress = z.string().refine(
  (s) => {
    if (s === '0') return true;
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]*):(\d{1,5})$/.exec(s);
    return m !== null && Number(m[2]) <= 65535;
  },
  { message: 'must be "host:port", ":port" or "0" to disable' },
);

/** What Node's resolver.setServers accepts: an IP address, or "a.b.c.d:port" / "[v6]:port". */
function validDnsServer(x: string): boolean {
  if (isIP(x) !== 0) return true;
  const m = /^(\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(x);
  if (m === null) return false;
  const host = m[2] ?? m[3] ?? '';
  const port = Number(m[4]);
  const family = isIP(host);
  return port >= 1 && port <= 65535 && (m[2] !== undefined ? family === 6 : family === 4);
}

export const dnsServerList = commaList(
  z
    .string()
    .refine(
      (x) => validDnsServer(x),
      'must be IP addresses with an optional port, such as "10.96.0.10", "10.96.0.10:53" or "[fd00::10]:53"',
    ),
);

/** A Go duration with one unit ("500ms", "1s", "2m", "0"), in milliseconds. */
export const duration = z.string().transform((s, ctx) => {
  if (s === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s);
  if (m === null) {
    ctx.addIssue({ code: 'custom', message: 'must be a duration such as "500ms", "1s" or "0"' });
    return z.NEVER;
  }
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
});

export const dnsSubdomainName = z
  .string()
  .max(253)
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    'must be a DNS subdomain (lowercase letters, digits, "-" and ".")',
  );

/** A count from 1 to `max`. */
export function wholeNumber(max: number) {
  return z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(1).max(max));
}

export const fileName = z
  .string()
  .min(1)
  .regex(/^[^/]+$/, 'must be a file name');

export const cidrList = commaList(
  z.string().refine((c) => isValidCIDR(c), { message: 'must be CIDRs such as "10.0.0.0/8"' }),
);

export const booleanValue = z.enum(['true', 'false']).transform((v) => v === 'true');

export const logLevel = z.enum(['debug', 'info', 'warn', 'error']);

export type SelectorMode =
  | { readonly kind: 'off' }
  | { readonly kind: 'all' }
  | { readonly kind: 'namespaces'; readonly namespaces: readonly string[] };

export const selectorMode = z.string().transform((s, ctx): SelectorMode => {
  const v = s.trim();
  if (v === 'off' || v === '') return { kind: 'off' };
  if (v === 'all') return { kind: 'all' };
  const parsed = namespaceList.safeParse(v);
  if (!parsed.success || parsed.data.length === 0) {
    ctx.addIssue({
      code: 'custom',
      message: 'must be "off", "all" or a comma-separated list of namespace names',
    });
    return z.NEVER;
  }
  return { kind: 'namespaces', namespaces: parsed.data };
});
