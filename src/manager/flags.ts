import { z } from 'zod';
import {
  bindAddress,
  booleanValue,
  cidrList,
  dnsServerList,
  dnsSubdomainName,
  duration,
  fileName,
  logLevel,
  namespaceList,
  namespaceName,
  selectorMode,
  wholeNumber,
} from './flagvalues.ts';

/**
 * Every flag the operator takes, one row each: the Config type, parsing and `--help` (config.ts),
 * docs/flags.md and the chart's args (flagdocs.ts) derive from it, and tests fail when a generated
 * file or the chart's values.yaml disagrees. The order is that of `--help`, the docs and the chart's
 * args, which keep the order they had before the table, so that an upgrade restarts no pod for it.
 * A new flag: a row here, its use where Config is read, a key in values.yaml and its schema if the
 * chart should set it, then `npm run generate`.
 */

/** How the chart passes a flag to the container. */
export interface ChartFlag {
  /** The key of values.yaml that sets the flag (dotted); absent when the chart decides alone. */
  readonly value?: string;
  /** The value is a list, passed joined by commas. */
  readonly list?: true;
  /** The flag's value as a Helm template, where it is not the value's or a fixed `default`. */
  readonly template?: string;
  /** The chart passes the flag only when this holds. */
  readonly when?: { readonly template: string; readonly text: string };
  /**
   * The value in a default install, where not the binary's; `<release>` and `<namespace>` stand
   * for the release's full name and namespace.
   */
  readonly default?: string;
  /** Said after the chart's default in the docs, where the default needs a word. */
  readonly note?: string;
}

export interface FlagRow {
  /** Kebab-case, controller-runtime's names where it has the flag. */
  readonly name: string;
  /** The Config property the value lands in. */
  readonly key: string;
  /** From the text given to what the operator uses; its messages are the user's error messages. */
  readonly schema: z.ZodType<unknown, string>;
  /** As it would be typed; absent: the Config property is absent unless the flag is given. */
  readonly default?: string;
  /** `--name` alone means true, as with Go's flag package. */
  readonly boolean?: true;
  readonly help: string;
  readonly chart?: ChartFlag;
}

const metricsSecure = {
  template: '(eq (include "outrigger.metricsSecure" .) "true")',
  text: 'with `metrics.secure`',
};

export const flags = [
  {
    name: 'kubeconfig',
    key: 'kubeconfig',
    schema: z.string().min(1),
    help: 'Path to a kubeconfig file. Default: $KUBECONFIG, ~/.kube/config, then in-cluster.',
  },
  {
    name: 'metrics-bind-address',
    key: 'metricsBindAddress',
    schema: bindAddress,
    default: ':8080',
    help: 'Address the /metrics endpoint binds to; "0" disables it.',
    chart: { value: 'metrics.port', template: ':{{ .Values.metrics.port }}' },
  },
  {
    name: 'metrics-secure',
    key: 'metricsSecure',
    schema: booleanValue,
    boolean: true,
    default: 'true',
    help: 'Serve /metrics over HTTPS, only to bearer tokens that the API server authenticates (TokenReview) and authorizes for get on the non-resource URL /metrics (SubjectAccessReview), as controller-runtime does. "false" serves plain HTTP to anyone who can reach the port.',
    chart: { value: 'metrics.secure', template: '{{ include "outrigger.metricsSecure" . }}' },
  },
  {
    name: 'metrics-cert-path',
    key: 'metricsCertPath',
    schema: z.string(),
    default: '',
    help: 'Directory holding the certificate and key /metrics serves, re-read when they change (a mounted Secret). Empty: a self-signed certificate generated at start.',
    // Where the deployment mounts metrics.tls.secretName (or the Secret the chart generates).
    chart: { when: metricsSecure, default: '/etc/outrigger/metrics-certs' },
  },
  {
    name: 'metrics-cert-name',
    key: 'metricsCertName',
    schema: fileName,
    default: 'tls.crt',
    help: 'File name of the metrics certificate in --metrics-cert-path.',
    chart: { when: metricsSecure },
  },
  {
    name: 'metrics-cert-key',
    key: 'metricsCertKey',
    schema: fileName,
    default: 'tls.key',
    help: 'File name of the metrics key in --metrics-cert-path.',
    chart: { when: metricsSecure },
  },
  {
    name: 'health-probe-bind-address',
    key: 'healthProbeBindAddress',
    schema: bindAddress,
    default: ':8081',
    help: 'Address /healthz and /readyz bind to; "0" disables them.',
    chart: { value: 'healthProbePort', template: ':{{ .Values.healthProbePort }}' },
  },
  {
    name: 'leader-elect',
    key: 'leaderElect',
    schema: booleanValue,
    boolean: true,
    default: 'false',
    help: 'Elect a leader through a coordination.k8s.io Lease so that only one replica writes.',
    // The chart runs two replicas by default, and two writers would fight.
    chart: { value: 'leaderElection.enabled', default: 'true' },
  },
  {
    name: 'leader-election-namespace',
    key: 'leaderElectionNamespace',
    schema: namespaceName,
    help: 'Namespace of the leader-election Lease. Default: the namespace the operator runs in.',
    chart: { template: '{{ .Release.Namespace }}', default: '<namespace>' },
  },
  {
    name: 'probers-per-address',
    key: 'probersPerAddress',
    schema: wholeNumber(9),
    default: '1',
    help: 'How many replicas check each ExternalBackend address: the leader and up to this many less one standbys, chosen per backend. Above 1, each standby reports what it sees in a ProberReport and the leader withdraws an address only when a majority of the probers reporting agree; a replica that alone sees failures across much of what it checks is left out as partitioned. 1: the leader alone checks (no reports).',
    // dig: an upgrade with --reuse-values from a chart without quorum.* sees no value for it.
    chart: {
      value: 'quorum.probersPerAddress',
      template: '{{ dig "quorum" "probersPerAddress" 1 .Values.AsMap }}',
    },
  },
  {
    name: 'pod-name',
    key: 'podName',
    schema: z.string().max(253),
    default: '',
    help: "This replica's pod name, which names its ProberReport (admission binds the report to the pod the token was issued for). Default: $POD_NAME, else the host name.",
  },
  {
    name: 'node-name',
    key: 'nodeName',
    schema: z.string().max(253),
    default: '',
    help: 'The Node this replica runs on, whose topology.kubernetes.io/zone label is the zone its ProberReport gives. Default: $NODE_NAME.',
  },
  {
    name: 'leader-election-id',
    key: 'leaderElectionId',
    schema: dnsSubdomainName,
    default: 'outrigger-leader',
    help: 'Name of the leader-election Lease.',
    // One Lease per release, so that two releases in one namespace do not share a leader.
    chart: { template: '{{ include "outrigger.leaseName" . }}', default: '<release>-leader' },
  },
  {
    name: 'leader-elect-lease-duration',
    key: 'leaseDurationMs',
    schema: duration,
    default: '15s',
    help: 'How long a standby waits, after it last saw the Lease change, before taking it over.',
    chart: { value: 'leaderElection.leaseDuration' },
  },
  {
    name: 'leader-elect-renew-deadline',
    key: 'renewDeadlineMs',
    schema: duration,
    default: '10s',
    help: 'How long the leader keeps trying to renew before it stops writing and exits; shorter than the lease duration.',
    chart: { value: 'leaderElection.renewDeadline' },
  },
  {
    name: 'leader-elect-retry-period',
    key: 'retryPeriodMs',
    schema: duration,
    default: '2s',
    help: 'How often the leader renews and standbys try to acquire.',
    chart: { value: 'leaderElection.retryPeriod' },
  },
  {
    name: 'selector-mode',
    key: 'selectorMode',
    schema: selectorMode,
    default: 'off',
    help: 'Own the Endpoints of selector Services: "off", "all", or a comma-separated list of namespaces.',
    chart: { value: 'selectorMode' },
  },
  {
    name: 'watch-namespaces',
    key: 'watchNamespaces',
    schema: namespaceList,
    default: '',
    help: 'Comma-separated namespaces to watch for ExternalBackends. Default: all namespaces.',
    chart: { value: 'watchNamespaces', list: true },
  },
  {
    name: 'pod-selector',
    key: 'podSelector',
    schema: booleanValue,
    boolean: true,
    default: 'true',
    help: 'Serve ExternalBackend spec.podSelector (watches pods in the namespaces that use it). With false, no pods are watched unless selector mode needs them, and a backend that selects pods says it is not enabled.',
    chart: {
      value: 'podSelector.enabled',
      template: '{{ include "outrigger.podSelector" . }}',
      default: 'false',
      note: "on a fresh install (no pods permission); an upgrade keeps the release's",
    },
  },
  {
    name: 'health-check-reader-role',
    key: 'healthCheckReaderRole',
    schema: dnsSubdomainName,
    default: 'outrigger-health-check-reader',
    help: 'The ClusterRole a namespace binds to let health checks read its labelled Secrets and ConfigMaps; named in the status of a backend whose check cannot read them.',
    chart: {
      template: '{{ include "outrigger.fullname" . }}-health-check-reader',
      default: '<release>-health-check-reader',
    },
  },
  {
    name: 'denied-cidrs',
    key: 'deniedCidrs',
    schema: cidrList,
    default: '',
    help: "Comma-separated CIDRs that ExternalBackend addresses may not use, in addition to the built-in list (loopback, link-local, multicast, cloud metadata) and the cluster ranges discovered by watching (ServiceCIDRs, Node podCIDRs and addresses, the API server), e.g. CNI pod pools outside the Nodes' podCIDRs. Denied addresses are never published or probed.",
    chart: { value: 'deniedCIDRs', list: true },
  },
  {
    name: 'max-concurrent-probes',
    key: 'maxConcurrentProbes',
    schema: wholeNumber(1000),
    default: '100',
    help: 'Health-check probes in flight at once, across every ExternalBackend.',
    chart: { value: 'maxConcurrentProbes' },
  },
  {
    name: 'max-probe-targets-per-namespace',
    key: 'maxProbeTargetsPerNamespace',
    schema: wholeNumber(100_000),
    default: '1000',
    help: 'Health-check targets (checked addresses) one namespace may have; further addresses are published not ready and their ExternalBackend says so.',
    chart: { value: 'maxProbeTargetsPerNamespace' },
  },
  {
    name: 'concurrent-externalbackend-syncs',
    key: 'concurrentExternalBackendSyncs',
    schema: wholeNumber(1000),
    default: '5',
    help: 'ExternalBackend reconciles run at once.',
    chart: { value: 'concurrentExternalBackendSyncs' },
  },
  {
    name: 'concurrent-endpoint-syncs',
    key: 'concurrentEndpointSyncs',
    schema: wholeNumber(1000),
    default: '5',
    help: 'Endpoints syncs run at once (kube-controller-manager flag of the same name).',
  },
  {
    name: 'endpoint-updates-batch-period',
    key: 'endpointUpdatesBatchPeriodMs',
    schema: duration,
    default: '0',
    help: 'Delay pod-triggered Endpoints syncs to batch changes, e.g. "500ms" (kube-controller-manager flag).',
  },
  {
    name: 'sync-period',
    key: 'syncPeriodMs',
    schema: duration,
    default: '10h',
    help: 'How often every ExternalBackend and Service is reconciled even when nothing changed, to repair anything a lost event left behind (controller-runtime\'s SyncPeriod); "0" never.',
  },
  {
    name: 'watch-stall-timeout',
    key: 'watchStallTimeoutMs',
    // Node timers take at most 2^31-1 ms; a longer one would fire at once and abort every watch.
    schema: duration.refine((ms) => ms >= 1000 && ms <= 86_400_000, 'must be between 1s and 24h'),
    default: '90s',
    help: 'A watch that receives nothing, not even a bookmark, for this long is treated as stalled and re-established from its last resourceVersion (a proxy or load balancer can hold a dead stream open).',
  },
  {
    name: 'status-batch-period',
    key: 'statusBatchMs',
    schema: duration.refine((ms) => ms <= 3_600_000, 'must be at most 1h'),
    default: '5s',
    help: 'After an ExternalBackend status write, further ones for the same backend wait this long, so that a burst of address transitions makes one write and one Event per reason; the first is written at once, and Endpoints and EndpointSlices are never held back. "0" writes every change.',
  },
  {
    name: 'max-endpoints-per-slice',
    key: 'maxEndpointsPerSlice',
    schema: wholeNumber(1000),
    default: '100',
    help: 'Most endpoints in one EndpointSlice that outrigger writes (kube-controller-manager flag of the same name; 1 to 1000). A Service has as many slices as it needs; one endpoint changing state rewrites one slice.',
  },
  {
    name: 'dns-servers',
    key: 'dnsServers',
    schema: dnsServerList,
    default: '',
    help: 'Comma-separated DNS servers ("10.96.0.10", "10.96.0.10:53", "[fd00::10]:53") that resolve spec.dnsNames; empty: those of resolv.conf (in a pod, the cluster DNS). Names are looked up as written, without search domains.',
  },
  {
    name: 'dns-min-ttl',
    key: 'dnsMinTtlMs',
    schema: duration.refine((ms) => ms >= 100 && ms <= 3_600_000, 'must be between 100ms and 1h'),
    default: '5s',
    help: 'A DNS answer is looked up again when its TTL runs out, but never sooner than this.',
  },
  {
    name: 'dns-max-ttl',
    key: 'dnsMaxTtlMs',
    schema: duration.refine((ms) => ms >= 1000 && ms <= 86_400_000, 'must be between 1s and 24h'),
    default: '5m',
    help: 'A DNS answer is looked up again after at most this long, whatever its TTL.',
  },
  {
    name: 'dns-stale-timeout',
    key: 'dnsStaleMs',
    schema: duration.refine((ms) => ms <= 86_400_000, 'must be at most 24h'),
    default: '10m',
    help: "While lookups of a name fail, its last answer stays published this long after it was last confirmed; then the name's addresses are withdrawn.",
  },
  {
    name: 'certificate-expiry-warning',
    key: 'certificateWarningMs',
    schema: duration.refine(
      (ms) => ms >= 60_000 && ms <= 8760 * 3_600_000,
      'must be between 1m and 8760h (a year)',
    ),
    default: '336h',
    help: 'A backend whose TLS check sees a certificate expiring within this long gets the condition CertificateExpiringSoon and a Warning Event (default 14 days).',
  },
  {
    name: 'dns-timeout',
    key: 'dnsTimeoutMs',
    schema: duration.refine((ms) => ms >= 100 && ms <= 60_000, 'must be between 100ms and 1m'),
    default: '2s',
    help: 'How long one DNS query attempt may take (each is tried twice).',
  },
  {
    name: 'max-concurrent-dns-lookups',
    key: 'maxConcurrentDnsLookups',
    schema: wholeNumber(1000),
    default: '16',
    help: 'DNS lookups in flight at once, across every ExternalBackend (fair across namespaces).',
  },
  {
    name: 'kube-api-qps',
    key: 'kubeApiQps',
    // Up to a rate no API server serves: a very large value turns pacing off, as in client-go.
    schema: wholeNumber(1_000_000),
    default: '20',
    help: 'Requests per second to the API server, after the burst (kube-controller-manager flag).',
    chart: { value: 'kubeAPIQPS' },
  },
  {
    name: 'kube-api-burst',
    key: 'kubeApiBurst',
    schema: wholeNumber(1_000_000),
    default: '30',
    help: 'Requests allowed in a burst before --kube-api-qps applies (kube-controller-manager flag).',
    chart: { value: 'kubeAPIBurst' },
  },
  {
    name: 'zap-log-level',
    key: 'logLevel',
    schema: logLevel,
    default: 'info',
    help: 'Log level: debug, info, warn or error. Logs are JSON lines on stderr.',
    chart: { value: 'logLevel' },
  },
  {
    name: 'help',
    key: 'help',
    schema: booleanValue,
    boolean: true,
    default: 'false',
    help: 'Print this help and exit.',
  },
  {
    name: 'version',
    key: 'version',
    schema: booleanValue,
    boolean: true,
    default: 'false',
    help: 'Print the version and exit.',
  },
] as const satisfies readonly FlagRow[];

type Row = (typeof flags)[number];

/**
 * The parsed flags: one property per row, typed by what its schema yields; a row without a default
 * is an optional property.
 */
export type Config = {
  readonly [R in Row as R extends { default: string } ? R['key'] : never]: z.output<R['schema']>;
} & {
  readonly [R in Row as R extends { default: string } ? never : R['key']]?: z.output<R['schema']>;
};

export function envName(flag: string): string {
  return `OUTRIGGER_${flag.toUpperCase().replaceAll('-', '_')}`;
}
