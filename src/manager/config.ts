import { isIP } from 'node:net';
import { z } from 'zod';
import { isValidCIDR } from '../net/denylist.ts';

/**
 * Command-line flags and OUTRIGGER_* environment variables, parsed into one validated config object.
 *
 * Flags follow Go's `flag` package as controller-runtime operators use it: `--name=value` or
 * `--name value`, and boolean flags accept `--name`, `--name=true` and `--name=false`. Node's
 * util.parseArgs has no `--flag=false` for booleans, which is why the small tokenizer below exists;
 * every value is then validated by zod.
 */

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const namespaceName = z
  .string()
  .max(63)
  .regex(dns1123Label, 'must be a DNS-1123 label (lowercase letters, digits and "-")');

const namespaceList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== ''),
  )
  .pipe(z.array(namespaceName));

/** `host:port`, `:port` (all interfaces) or `0` (disabled), as controller-runtime accepts them. */
const bindAddress = z.string().refine(
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

/** A Go duration with one unit ("500ms", "1s", "2m", "0"), in milliseconds. */
const duration = z.string().transform((s, ctx) => {
  if (s === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s);
  if (m === null) {
    ctx.addIssue({ code: 'custom', message: 'must be a duration such as "500ms", "1s" or "0"' });
    return z.NEVER;
  }
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
});

const dnsSubdomainName = z
  .string()
  .max(253)
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    'must be a DNS subdomain (lowercase letters, digits, "-" and ".")',
  );

const positiveInt = z
  .string()
  .regex(/^\d+$/, 'must be a whole number')
  .transform(Number)
  .pipe(z.number().int().min(1).max(1000));

function wholeNumber(max: number) {
  return z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(1).max(max));
}

const cidrList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((c) => c.trim())
      .filter((c) => c !== ''),
  )
  .pipe(
    z.array(
      z.string().refine((c) => isValidCIDR(c), { message: 'must be CIDRs such as "10.0.0.0/8"' }),
    ),
  );

const booleanValue = z.enum(['true', 'false']).transform((v) => v === 'true');

const logLevel = z.enum(['debug', 'info', 'warn', 'error']);

export type SelectorMode =
  | { readonly kind: 'off' }
  | { readonly kind: 'all' }
  | { readonly kind: 'namespaces'; readonly namespaces: readonly string[] };

const selectorMode = z.string().transform((s, ctx): SelectorMode => {
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

interface FlagSpec {
  readonly name: string;
  readonly boolean?: true;
  readonly default?: string;
  readonly help: string;
}

/** Every flag the operator takes; the help text and the env variable names come from this table. */
export const flags: readonly FlagSpec[] = [
  {
    name: 'kubeconfig',
    help: 'Path to a kubeconfig file. Default: $KUBECONFIG, ~/.kube/config, then in-cluster.',
  },
  {
    name: 'metrics-bind-address',
    default: ':8080',
    help: 'Address the /metrics endpoint binds to; "0" disables it.',
  },
  {
    name: 'metrics-secure',
    boolean: true,
    default: 'true',
    help: 'Serve /metrics over HTTPS, only to bearer tokens that the API server authenticates (TokenReview) and authorizes for get on the non-resource URL /metrics (SubjectAccessReview), as controller-runtime does. "false" serves plain HTTP to anyone who can reach the port.',
  },
  {
    name: 'metrics-cert-path',
    default: '',
    help: 'Directory holding the certificate and key /metrics serves, re-read when they change (a mounted Secret). Empty: a self-signed certificate generated at start.',
  },
  {
    name: 'metrics-cert-name',
    default: 'tls.crt',
    help: 'File name of the metrics certificate in --metrics-cert-path.',
  },
  {
    name: 'metrics-cert-key',
    default: 'tls.key',
    help: 'File name of the metrics key in --metrics-cert-path.',
  },
  {
    name: 'health-probe-bind-address',
    default: ':8081',
    help: 'Address /healthz and /readyz bind to; "0" disables them.',
  },
  {
    name: 'leader-elect',
    boolean: true,
    default: 'false',
    help: 'Elect a leader through a coordination.k8s.io Lease so that only one replica writes.',
  },
  {
    name: 'leader-election-namespace',
    help: 'Namespace of the leader-election Lease. Default: the namespace the operator runs in.',
  },
  {
    name: 'leader-election-id',
    default: 'outrigger-leader',
    help: 'Name of the leader-election Lease.',
  },
  {
    name: 'leader-elect-lease-duration',
    default: '15s',
    help: 'How long a standby waits, after it last saw the Lease change, before taking it over.',
  },
  {
    name: 'leader-elect-renew-deadline',
    default: '10s',
    help: 'How long the leader keeps trying to renew before it stops writing and exits; shorter than the lease duration.',
  },
  {
    name: 'leader-elect-retry-period',
    default: '2s',
    help: 'How often the leader renews and standbys try to acquire.',
  },
  {
    name: 'watch-namespaces',
    default: '',
    help: 'Comma-separated namespaces to watch for ExternalBackends. Default: all namespaces.',
  },
  {
    name: 'selector-mode',
    default: 'off',
    help: 'Own the Endpoints of selector Services: "off", "all", or a comma-separated list of namespaces.',
  },
  {
    name: 'pod-selector',
    boolean: true,
    default: 'true',
    help: 'Serve ExternalBackend spec.podSelector (watches pods in the namespaces that use it). With false, no pods are watched unless selector mode needs them, and a backend that selects pods says it is not enabled.',
  },
  {
    name: 'health-check-reader-role',
    default: 'outrigger-health-check-reader',
    help: 'The ClusterRole a namespace binds to let health checks read its labelled Secrets and ConfigMaps; named in the status of a backend whose check cannot read them.',
  },
  {
    name: 'concurrent-endpoint-syncs',
    default: '5',
    help: 'Endpoints syncs run at once (kube-controller-manager flag of the same name).',
  },
  {
    name: 'endpoint-updates-batch-period',
    default: '0',
    help: 'Delay pod-triggered Endpoints syncs to batch changes, e.g. "500ms" (kube-controller-manager flag).',
  },
  {
    name: 'concurrent-externalbackend-syncs',
    default: '5',
    help: 'ExternalBackend reconciles run at once.',
  },
  {
    name: 'max-concurrent-probes',
    default: '100',
    help: 'Health-check probes in flight at once, across every ExternalBackend.',
  },
  {
    name: 'sync-period',
    default: '10h',
    help: 'How often every ExternalBackend and Service is reconciled even when nothing changed, to repair anything a lost event left behind (controller-runtime\'s SyncPeriod); "0" never.',
  },
  {
    name: 'watch-stall-timeout',
    default: '90s',
    help: 'A watch that receives nothing, not even a bookmark, for this long is treated as stalled and re-established from its last resourceVersion (a proxy or load balancer can hold a dead stream open).',
  },
  {
    name: 'status-batch-period',
    default: '5s',
    help: 'After an ExternalBackend status write, further ones for the same backend wait this long, so that a burst of address transitions makes one write and one Event per reason; the first is written at once, and Endpoints and EndpointSlices are never held back. "0" writes every change.',
  },
  {
    name: 'max-endpoints-per-slice',
    default: '100',
    help: 'Most endpoints in one EndpointSlice that outrigger writes (kube-controller-manager flag of the same name; 1 to 1000). A Service has as many slices as it needs; one endpoint changing state rewrites one slice.',
  },
  {
    name: 'max-probe-targets-per-namespace',
    default: '1000',
    help: 'Health-check targets (checked addresses) one namespace may have; further addresses are published not ready and their ExternalBackend says so.',
  },
  {
    name: 'denied-cidrs',
    default: '',
    help: "Comma-separated CIDRs that ExternalBackend addresses may not use, in addition to the built-in list (loopback, link-local, multicast, cloud metadata) and the cluster ranges discovered by watching (ServiceCIDRs, Node podCIDRs and addresses, the API server), e.g. CNI pod pools outside the Nodes' podCIDRs. Denied addresses are never published or probed.",
  },
  {
    name: 'dns-servers',
    default: '',
    help: 'Comma-separated DNS servers ("10.96.0.10", "10.96.0.10:53", "[fd00::10]:53") that resolve spec.dnsNames; empty: those of resolv.conf (in a pod, the cluster DNS). Names are looked up as written, without search domains.',
  },
  {
    name: 'dns-min-ttl',
    default: '5s',
    help: 'A DNS answer is looked up again when its TTL runs out, but never sooner than this.',
  },
  {
    name: 'dns-max-ttl',
    default: '5m',
    help: 'A DNS answer is looked up again after at most this long, whatever its TTL.',
  },
  {
    name: 'dns-stale-timeout',
    default: '10m',
    help: "While lookups of a name fail, its last answer stays published this long after it was last confirmed; then the name's addresses are withdrawn.",
  },
  {
    name: 'certificate-expiry-warning',
    default: '336h',
    help: 'A backend whose TLS check sees a certificate expiring within this long gets the condition CertificateExpiringSoon and a Warning Event (default 14 days).',
  },
  {
    name: 'dns-timeout',
    default: '2s',
    help: 'How long one DNS query attempt may take (each is tried twice).',
  },
  {
    name: 'max-concurrent-dns-lookups',
    default: '16',
    help: 'DNS lookups in flight at once, across every ExternalBackend (fair across namespaces).',
  },
  {
    name: 'kube-api-qps',
    default: '20',
    help: 'Requests per second to the API server, after the burst (kube-controller-manager flag).',
  },
  {
    name: 'kube-api-burst',
    default: '30',
    help: 'Requests allowed in a burst before --kube-api-qps applies (kube-controller-manager flag).',
  },
  {
    name: 'zap-log-level',
    default: 'info',
    help: 'Log level: debug, info, warn or error. Logs are JSON lines on stderr.',
  },
  { name: 'help', boolean: true, default: 'false', help: 'Print this help and exit.' },
  { name: 'version', boolean: true, default: 'false', help: 'Print the version and exit.' },
];

const rawSchema = z.object({
  kubeconfig: z.string().min(1).optional(),
  'metrics-bind-address': bindAddress,
  'metrics-secure': booleanValue,
  'metrics-cert-path': z.string(),
  'metrics-cert-name': z
    .string()
    .min(1)
    .regex(/^[^/]+$/, 'must be a file name'),
  'metrics-cert-key': z
    .string()
    .min(1)
    .regex(/^[^/]+$/, 'must be a file name'),
  'health-probe-bind-address': bindAddress,
  'leader-elect': booleanValue,
  'leader-election-namespace': namespaceName.optional(),
  'leader-election-id': dnsSubdomainName,
  'leader-elect-lease-duration': duration,
  'leader-elect-renew-deadline': duration,
  'leader-elect-retry-period': duration,
  'watch-namespaces': namespaceList,
  'selector-mode': selectorMode,
  'pod-selector': booleanValue,
  'health-check-reader-role': dnsSubdomainName,
  'concurrent-endpoint-syncs': positiveInt,
  'endpoint-updates-batch-period': duration,
  'concurrent-externalbackend-syncs': positiveInt,
  'max-concurrent-probes': positiveInt,
  'sync-period': duration,
  // Node timers take at most 2^31-1 ms; a longer one would fire at once and abort every watch.
  'watch-stall-timeout': duration.refine(
    (ms) => ms >= 1000 && ms <= 86_400_000,
    'must be between 1s and 24h',
  ),
  'status-batch-period': duration.refine((ms) => ms <= 3_600_000, 'must be at most 1h'),
  'max-endpoints-per-slice': z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(1).max(1000)),
  'max-probe-targets-per-namespace': z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(1).max(100_000)),
  'denied-cidrs': cidrList,
  'dns-servers': z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== ''),
    )
    .pipe(
      z.array(
        z
          .string()
          .refine(
            (x) => validDnsServer(x),
            'must be IP addresses with an optional port, such as "10.96.0.10", "10.96.0.10:53" or "[fd00::10]:53"',
          ),
      ),
    ),
  'dns-min-ttl': duration.refine(
    (ms) => ms >= 100 && ms <= 3_600_000,
    'must be between 100ms and 1h',
  ),
  'dns-max-ttl': duration.refine(
    (ms) => ms >= 1000 && ms <= 86_400_000,
    'must be between 1s and 24h',
  ),
  'dns-stale-timeout': duration.refine((ms) => ms <= 86_400_000, 'must be at most 24h'),
  'certificate-expiry-warning': duration.refine(
    (ms) => ms >= 60_000 && ms <= 8760 * 3_600_000,
    'must be between 1m and 8760h (a year)',
  ),
  'dns-timeout': duration.refine((ms) => ms >= 100 && ms <= 60_000, 'must be between 100ms and 1m'),
  'max-concurrent-dns-lookups': positiveInt,
  // Up to a rate no API server serves: a very large value turns pacing off, as in client-go.
  'kube-api-qps': wholeNumber(1_000_000),
  'kube-api-burst': wholeNumber(1_000_000),
  'zap-log-level': logLevel,
  help: booleanValue,
  version: booleanValue,
});

export interface Config {
  readonly kubeconfig?: string;
  readonly metricsBindAddress: string;
  readonly metricsSecure: boolean;
  /** Empty: a self-signed certificate generated at start. */
  readonly metricsCertPath: string;
  readonly metricsCertName: string;
  readonly metricsCertKey: string;
  readonly healthProbeBindAddress: string;
  readonly leaderElect: boolean;
  readonly leaderElectionNamespace?: string;
  readonly leaderElectionId: string;
  /** Milliseconds. */
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  /** Empty means every namespace. */
  readonly watchNamespaces: readonly string[];
  readonly selectorMode: SelectorMode;
  /** Whether ExternalBackend spec.podSelector is served (and pods watched for it). */
  readonly podSelector: boolean;
  /** The ClusterRole to name when a namespace has not granted Secret and ConfigMap reads. */
  readonly healthCheckReaderRole: string;
  readonly concurrentEndpointSyncs: number;
  /** Milliseconds. */
  readonly endpointUpdatesBatchPeriodMs: number;
  readonly concurrentExternalBackendSyncs: number;
  readonly maxConcurrentProbes: number;
  readonly maxProbeTargetsPerNamespace: number;
  readonly maxEndpointsPerSlice: number;
  /** Milliseconds. */
  readonly statusBatchMs: number;
  /** Milliseconds; 0 never. */
  readonly syncPeriodMs: number;
  /** Milliseconds. */
  readonly watchStallTimeoutMs: number;
  /** Added to the built-in deny list. */
  readonly deniedCidrs: readonly string[];
  /** Empty: the system's. */
  readonly dnsServers: readonly string[];
  /** Milliseconds. */
  readonly dnsMinTtlMs: number;
  readonly dnsMaxTtlMs: number;
  readonly dnsStaleMs: number;
  readonly dnsTimeoutMs: number;
  /** A certificate expiring within this long makes CertificateExpiringSoon true. */
  readonly certificateWarningMs: number;
  readonly maxConcurrentDnsLookups: number;
  readonly kubeApiQps: number;
  readonly kubeApiBurst: number;
  readonly logLevel: z.infer<typeof logLevel>;
  readonly help: boolean;
  readonly version: boolean;
}

export function envName(flag: string): string {
  return `OUTRIGGER_${flag.toUpperCase().replaceAll('-', '_')}`;
}

/** Splits argv into flag values; throws ConfigError for unknown flags, missing values, positionals. */
function tokenize(argv: readonly string[]): Map<string, string> {
  const byName = new Map(flags.map((f) => [f.name, f]));
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      if (i + 1 < argv.length) throw new ConfigError(`unexpected argument "${argv[i + 1] ?? ''}"`);
      break;
    }
    const m = /^--?([^=]+)(?:=(.*))?$/s.exec(arg);
    if (m === null) throw new ConfigError(`unexpected argument "${arg}"`);
    const name = m[1] ?? '';
    const spec = byName.get(name);
    if (spec === undefined) throw new ConfigError(`unknown flag --${name}`);
    let value = m[2];
    if (value === undefined) {
      if (spec.boolean) {
        value = 'true';
      } else {
        const next = argv[i + 1];
        if (next === undefined) throw new ConfigError(`flag --${name} needs a value`);
        value = next;
        i++;
      }
    }
    values.set(name, value);
  }
  return values;
}

export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): Config {
  const fromArgs = tokenize(argv);
  const raw: Record<string, string> = {};
  for (const f of flags) {
    const value = fromArgs.get(f.name) ?? env[envName(f.name)] ?? f.default;
    if (value !== undefined) raw[f.name] = value;
  }
  const parsed = rawSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const flag = String(issue?.path[0] ?? '');
    const source = fromArgs.has(flag) ? `--${flag}` : `${envName(flag)} (for --${flag})`;
    throw new ConfigError(
      `invalid value "${raw[flag] ?? ''}" for ${source}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const v = parsed.data;
  if (v['dns-min-ttl'] > v['dns-max-ttl'])
    throw new ConfigError('--dns-min-ttl must not be longer than --dns-max-ttl');
  // client-go's rules: the leader must give up before its lease can expire, and retry within that.
  if (v['leader-elect-renew-deadline'] >= v['leader-elect-lease-duration'])
    throw new ConfigError(
      '--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration',
    );
  if (v['leader-elect-retry-period'] >= v['leader-elect-renew-deadline'])
    throw new ConfigError(
      '--leader-elect-retry-period must be shorter than --leader-elect-renew-deadline',
    );
  return {
    ...(v.kubeconfig !== undefined && { kubeconfig: v.kubeconfig }),
    metricsBindAddress: v['metrics-bind-address'],
    metricsSecure: v['metrics-secure'],
    metricsCertPath: v['metrics-cert-path'],
    metricsCertName: v['metrics-cert-name'],
    metricsCertKey: v['metrics-cert-key'],
    healthProbeBindAddress: v['health-probe-bind-address'],
    leaderElect: v['leader-elect'],
    ...(v['leader-election-namespace'] !== undefined && {
      leaderElectionNamespace: v['leader-election-namespace'],
    }),
    leaderElectionId: v['leader-election-id'],
    leaseDurationMs: v['leader-elect-lease-duration'],
    renewDeadlineMs: v['leader-elect-renew-deadline'],
    retryPeriodMs: v['leader-elect-retry-period'],
    watchNamespaces: v['watch-namespaces'],
    selectorMode: v['selector-mode'],
    podSelector: v['pod-selector'],
    healthCheckReaderRole: v['health-check-reader-role'],
    concurrentEndpointSyncs: v['concurrent-endpoint-syncs'],
    endpointUpdatesBatchPeriodMs: v['endpoint-updates-batch-period'],
    concurrentExternalBackendSyncs: v['concurrent-externalbackend-syncs'],
    maxConcurrentProbes: v['max-concurrent-probes'],
    maxProbeTargetsPerNamespace: v['max-probe-targets-per-namespace'],
    maxEndpointsPerSlice: v['max-endpoints-per-slice'],
    statusBatchMs: v['status-batch-period'],
    syncPeriodMs: v['sync-period'],
    watchStallTimeoutMs: v['watch-stall-timeout'],
    deniedCidrs: v['denied-cidrs'],
    dnsServers: v['dns-servers'],
    dnsMinTtlMs: v['dns-min-ttl'],
    dnsMaxTtlMs: v['dns-max-ttl'],
    dnsStaleMs: v['dns-stale-timeout'],
    dnsTimeoutMs: v['dns-timeout'],
    certificateWarningMs: v['certificate-expiry-warning'],
    maxConcurrentDnsLookups: v['max-concurrent-dns-lookups'],
    kubeApiQps: v['kube-api-qps'],
    kubeApiBurst: v['kube-api-burst'],
    logLevel: v['zap-log-level'],
    help: v.help,
    version: v.version,
  };
}

export function helpText(): string {
  const lines = ['Usage: outrigger [flags]', '', 'Flags:'];
  for (const f of flags) {
    const def = f.default !== undefined && f.default !== '' ? ` (default "${f.default}")` : '';
    lines.push(`  --${f.name}${f.boolean ? '' : ' value'}`, `        ${f.help}${def}`);
  }
  lines.push(
    '',
    'Every flag can also be set through an environment variable, e.g. OUTRIGGER_SELECTOR_MODE.',
  );
  return lines.join('\n');
}
