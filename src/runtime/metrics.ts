// Prometheus metrics. Names and labels follow controller-runtime (and client-go's workqueue) so that
// existing dashboards and alerts work; outrigger's own metrics live under outrigger_, in base units.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { QueueMetrics } from './workqueue.ts';
import { version } from './version.ts';

// controller-runtime's reconcile-time buckets.
const reconcileBuckets = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1,
  1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
// client-go workqueue buckets: 10 ns … 10^3 s.
const queueBuckets = Array.from({ length: 12 }, (_, i) => 1e-8 * 10 ** i);

export interface Metrics {
  readonly registry: Registry;
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileErrors: Counter<'controller'>;
  readonly reconcilePanics: Counter<'controller'>;
  readonly terminalReconcileErrors: Counter<'controller'>;
  readonly backendReady: Gauge<'namespace' | 'name' | 'status' | 'reason'>;
  readonly certificateExpiry: Gauge<'namespace' | 'name'>;
  readonly backupsActive: Gauge<'namespace' | 'name'>;
  readonly proberReportWrites: Counter<'reason'>;
  readonly proberFailingAddresses: Gauge;
  readonly proberPartitioned: Gauge<'prober'>;
  readonly restRequestDuration: Histogram<'verb' | 'host'>;
  readonly reconcileTime: Histogram<'controller'>;
  readonly activeWorkers: Gauge<'controller'>;
  readonly maxConcurrentReconciles: Gauge<'controller'>;
  readonly endpointWrites: Counter<'kind' | 'operation'>;
  readonly watchRestarts: Counter<'informer' | 'reason'>;
  readonly probeDuration: Histogram<'kind'>;
  readonly probeTotal: Counter<'result'>;
  readonly dnsLookups: Counter<'result'>;
  readonly dnsLookupDuration: Histogram;
  readonly backendAddresses: Gauge<'namespace' | 'name' | 'state'>;
  readonly leaderStatus: Gauge<'name'>;
  readonly restRequests: Counter<'code' | 'method'>;
  readonly unhandledErrors: Counter<'source'>;
  readonly probeScheduleLag: Histogram;
  readonly events: Counter<'result'>;
  readonly deniedRanges: Gauge<'source'>;
  readonly rangeDiscoveryUp: Gauge<'source'>;
  readonly addressPolicyFrozen: Gauge;
  readonly addressPolicyRules: Gauge;
  readonly addressPolicyUncompilable: Gauge;
  readonly endpointsConflicts: Counter;
  readonly endpointsContested: Gauge;
  readonly metricsAuth: Counter<'result' | 'cached'>;
  queue(name: string, inFlightSince: () => number[]): QueueMetrics;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  new Gauge({
    name: 'outrigger_build_info',
    help: 'A metric with a constant 1 value labeled by the version outrigger was built from and the Node.js it runs on',
    labelNames: ['version', 'nodejs_version'],
    registers,
  }).set({ version, nodejs_version: process.version }, 1);

  const depth = new Gauge({
    name: 'workqueue_depth',
    help: 'Current depth of workqueue',
    labelNames: ['controller', 'name'],
    registers,
  });
  const adds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Total number of adds handled by workqueue',
    labelNames: ['controller', 'name'],
    registers,
  });
  const retries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of retries handled by workqueue',
    labelNames: ['controller', 'name'],
    registers,
  });
  const latency = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long in seconds an item stays in workqueue before being requested',
    labelNames: ['controller', 'name'],
    buckets: queueBuckets,
    registers,
  });
  const work = new Histogram({
    name: 'workqueue_work_duration_seconds',
    help: 'How long in seconds processing an item from workqueue takes',
    labelNames: ['controller', 'name'],
    buckets: queueBuckets,
    registers,
  });
  const inFlight = new Map<string, () => number[]>();
  new Gauge({
    name: 'workqueue_unfinished_work_seconds',
    help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration",
    labelNames: ['controller', 'name'],
    registers,
    collect() {
      const now = Date.now();
      for (const [name, since] of inFlight) {
        this.set(
          { controller: name, name },
          since().reduce((s, t) => s + (now - t) / 1000, 0),
        );
      }
    },
  });
  new Gauge({
    name: 'workqueue_longest_running_processor_seconds',
    help: 'How many seconds has the longest running processor for workqueue been running',
    labelNames: ['controller', 'name'],
    registers,
    collect() {
      const now = Date.now();
      for (const [name, since] of inFlight) {
        const oldest = Math.min(now, ...since());
        this.set({ controller: name, name }, (now - oldest) / 1000);
      }
    },
  });

  return {
    registry,
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    }),
    // Go's panics have no JavaScript twin: a TypeError, RangeError or ReferenceError thrown by a
    // reconcile is a bug in outrigger's code, not a failure of the world, and counts as one.
    reconcilePanics: new Counter({
      name: 'controller_runtime_reconcile_panics_total',
      help: 'Total number of reconciliation panics (programming errors thrown) per controller',
      labelNames: ['controller'],
      registers,
    }),
    terminalReconcileErrors: new Counter({
      name: 'controller_runtime_terminal_reconcile_errors_total',
      help: 'Total number of terminal reconciliation errors per controller (the key is dropped until it changes)',
      labelNames: ['controller'],
      registers,
    }),
    // certmanager_certificate_ready_status's pattern: 1 on the current status and reason (the
    // reason is one of the few Ready reasons outrigger sets, so the label stays bounded).
    backendReady: new Gauge({
      name: 'outrigger_backend_ready_status',
      help: 'The Ready condition of each ExternalBackend: 1 on its current status and reason',
      labelNames: ['namespace', 'name', 'status', 'reason'],
      registers,
    }),
    certificateExpiry: new Gauge({
      name: 'outrigger_backend_certificate_expiration_timestamp_seconds',
      help: "The soonest notAfter of the certificates an ExternalBackend's TLS-speaking check sees, in seconds since the epoch",
      labelNames: ['namespace', 'name'],
      registers,
    }),
    backupsActive: new Gauge({
      name: 'outrigger_backend_backups_active',
      help: 'Whether the backup servers of an ExternalBackend are published (1) or stand by (0); only backends with spec.backup have a series',
      labelNames: ['namespace', 'name'],
      registers,
    }),
    // A standby's own view, under names of its own: the shipped alerts read the leader's
    // decided per-backend series only, never what one prober sees.
    proberReportWrites: new Counter({
      name: 'outrigger_prober_report_writes_total',
      help: "Writes of this replica's ProberReport, by reason: a change of what its checks see (batched) or a renewal",
      labelNames: ['reason'],
      registers,
    }),
    proberFailingAddresses: new Gauge({
      name: 'outrigger_prober_failing_addresses',
      help: "Addresses this replica's own checks see failing, as its ProberReport lists them (standbys only)",
      registers,
    }),
    proberPartitioned: new Gauge({
      name: 'outrigger_prober_partitioned',
      help: 'Set by the leader for each replica that reports: 1 while its view is left out of every decision as partitioned',
      labelNames: ['prober'],
      registers,
    }),
    restRequestDuration: new Histogram({
      name: 'rest_client_request_duration_seconds',
      help: 'Request latency in seconds. Broken down by verb and host.',
      labelNames: ['verb', 'host'],
      buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
      registers,
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: reconcileBuckets,
      registers,
    }),
    activeWorkers: new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'],
      registers,
    }),
    maxConcurrentReconciles: new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'],
      registers,
    }),
    endpointWrites: new Counter({
      name: 'outrigger_endpoint_writes_total',
      help: 'API writes outrigger makes, by kind (Endpoints, EndpointSlice, Service, ExternalBackendStatus) and operation (create, update, apply, patch, delete)',
      labelNames: ['kind', 'operation'],
      registers,
    }),
    watchRestarts: new Counter({
      name: 'outrigger_informer_watch_restarts_total',
      help: 'Watches that ended and were re-established, by reason (closed, stalled, expired, error)',
      labelNames: ['informer', 'reason'],
      registers,
    }),
    probeDuration: new Histogram({
      name: 'outrigger_probe_duration_seconds',
      help: 'Duration of ExternalBackend health-check probes, by kind (tcp, http)',
      labelNames: ['kind'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    probeTotal: new Counter({
      name: 'outrigger_probe_total',
      help: 'ExternalBackend health-check probes, by result (success, failure)',
      labelNames: ['result'],
      registers,
    }),
    dnsLookups: new Counter({
      name: 'outrigger_dns_lookups_total',
      help: 'Lookups (A and AAAA) of the DNS names ExternalBackends list, by result (success, failure: no address, or a family without an answer)',
      labelNames: ['result'],
      registers,
    }),
    dnsLookupDuration: new Histogram({
      name: 'outrigger_dns_lookup_duration_seconds',
      help: 'Duration of DNS lookups of ExternalBackend names (both families)',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    backendAddresses: new Gauge({
      name: 'outrigger_backend_addresses',
      help: 'Addresses of each ExternalBackend by state (healthy, unhealthy, unknown, denied)',
      labelNames: ['namespace', 'name', 'state'],
      registers,
    }),
    leaderStatus: new Gauge({
      name: 'leader_election_master_status',
      help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease.",
      labelNames: ['name'],
      registers,
    }),
    restRequests: new Counter({
      name: 'rest_client_requests_total',
      help: 'Number of HTTP requests, partitioned by status code and method.',
      labelNames: ['code', 'method'],
      registers,
    }),
    unhandledErrors: new Counter({
      name: 'outrigger_unhandled_errors_total',
      help: 'Errors that escaped the code meant to handle them, by where they were caught (uncaughtException, unhandledRejection, probe, informer-transform, informer-handler). Any increase is a bug worth a report.',
      labelNames: ['source'],
      registers,
    }),
    probeScheduleLag: new Histogram({
      name: 'outrigger_probe_schedule_lag_seconds',
      help: 'How late each health-check probe started after it was due (waiting for a free probe slot).',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    }),
    events: new Counter({
      name: 'outrigger_events_total',
      help: 'Kubernetes Events outrigger tried to record, by result (sent, failed, dropped when the backlog was full, duplicate within the dedupe window).',
      labelNames: ['result'],
      registers,
    }),
    deniedRanges: new Gauge({
      name: 'outrigger_denied_ranges',
      help: 'Address ranges ExternalBackends may not use, by kind of source (builtin, flag, servicecidr, pod-cidr, node-address, apiserver, fallback).',
      labelNames: ['source'],
      registers,
    }),
    rangeDiscoveryUp: new Gauge({
      name: 'outrigger_cluster_range_discovery_up',
      help: 'Whether outrigger can watch a source of the cluster’s address ranges (servicecidrs, nodes, apiserver); 0 means every private range is denied in its place.',
      labelNames: ['source'],
      registers,
    }),
    // Read at each scrape from the grants cache (every replica has it), so the figure is current
    // even when no backend reconciles.
    addressPolicyFrozen: new Gauge({
      name: 'outrigger_address_policy_frozen',
      help: 'Whether address-policy decisions are frozen (1): no ExternalBackendPolicy grants, or grants that cannot be read or parsed; published addresses stay, new ones wait.',
      registers,
    }),
    addressPolicyRules: new Gauge({
      name: 'outrigger_address_policy_rules',
      help: 'Rules across every ExternalBackendPolicy grant object, as last read.',
      registers,
    }),
    addressPolicyUncompilable: new Gauge({
      name: 'outrigger_address_policy_uncompilable',
      help: 'Whether the grants hold more rules than the compiled object for admission may (1): admission judges by the grants as last compiled.',
      registers,
    }),
    // Selector mode's guard against a second endpoints controller (src/endpoints/conflict.ts). No
    // labels: the Event on the Service names it, and a series that exists from the start lets
    // increase() see the first conflict.
    endpointsConflicts: new Counter({
      name: 'outrigger_endpoints_conflicts_total',
      help: 'Times another controller (kube-controller-manager’s endpoints controller, by the managed-by label) rewrote an Endpoints that outrigger’s selector mode had written; each makes outrigger hold off that Endpoints for a while.',
      registers,
    }),
    // Every request to the secured /metrics, by outcome: a flood of bad tokens shows here, and
    // `cached="false"` counts the ones that cost a TokenReview (or were refused before one).
    metricsAuth: new Counter({
      name: 'outrigger_metrics_auth_requests_total',
      help: 'Requests to the secured /metrics endpoint by outcome (allowed, unauthenticated, forbidden, throttled, error) and whether a cached review answered them.',
      labelNames: ['result', 'cached'],
      registers,
    }),
    endpointsContested: new Gauge({
      name: 'outrigger_endpoints_contested',
      help: 'Endpoints that outrigger’s selector mode is holding off because another controller rewrote them.',
      registers,
    }),
    queue(name, inFlightSince) {
      inFlight.set(name, inFlightSince);
      const l = { controller: name, name };
      depth.set(l, 0);
      return {
        add: () => {
          adds.inc(l);
        },
        depth: (n) => {
          depth.set(l, n);
        },
        queueLatency: (s) => {
          latency.observe(l, s);
        },
        workDuration: (s) => {
          work.observe(l, s);
        },
        retry: () => {
          retries.inc(l);
        },
      };
    },
  };
}
