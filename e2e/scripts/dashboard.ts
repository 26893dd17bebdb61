// outrigger's Grafana dashboard, as data: `npm run generate` writes it to
// charts/outrigger/dashboards/outrigger.json (shipped as a ConfigMap with the Grafana sidecar's
// label), and e2e/alerts.e2e.test.ts runs every query against a real Prometheus scraping a running
// outrigger and fails when one returns nothing.
//
// Every query selects outrigger's own series with job="outrigger-metrics" (jobPlaceholder), as the
// alert rules do: in a shared Prometheus other controllers export the same controller-runtime
// names. The chart replaces the matcher with metrics.jobSelector; imported by hand, edit it there.

/** The matcher the queries (and charts/outrigger/rules) are written with; the chart replaces it. */
export const jobPlaceholder = 'job="outrigger-metrics"';

export interface PanelSpec {
  readonly title: string;
  readonly unit: string;
  readonly queries: readonly { readonly expr: string; readonly legend: string }[];
}

export const panels: readonly PanelSpec[] = [
  {
    title: 'ExternalBackends by Ready status and reason',
    unit: 'short',
    queries: [
      {
        expr: 'sum by (status, reason) (outrigger_backend_ready_status{job="outrigger-metrics"})',
        legend: '{{status}} {{reason}}',
      },
    ],
  },
  {
    title: 'Addresses by state',
    unit: 'short',
    queries: [
      {
        expr: 'sum by (state) (outrigger_backend_addresses{job="outrigger-metrics"})',
        legend: '{{state}}',
      },
    ],
  },
  {
    title: 'Unhealthy addresses per backend',
    unit: 'short',
    queries: [
      {
        expr: 'sum by (namespace, name) (outrigger_backend_addresses{job="outrigger-metrics", state="unhealthy"})',
        legend: '{{namespace}}/{{name}}',
      },
    ],
  },
  {
    title: 'Time until the soonest certificate expires, per backend',
    unit: 's',
    queries: [
      {
        expr: 'min by (namespace, name) (outrigger_backend_certificate_expiration_timestamp_seconds{job="outrigger-metrics"}) - time()',
        legend: '{{namespace}}/{{name}}',
      },
    ],
  },
  {
    title: 'Health checks per second by result',
    unit: 'ops',
    queries: [
      {
        expr: 'sum by (result) (rate(outrigger_probe_total{job="outrigger-metrics"}[5m]))',
        legend: '{{result}}',
      },
    ],
  },
  {
    title: 'Health check duration, p99',
    unit: 's',
    queries: [
      {
        expr: 'histogram_quantile(0.99, sum by (le, kind) (rate(outrigger_probe_duration_seconds_bucket{job="outrigger-metrics"}[5m])))',
        legend: '{{kind}}',
      },
    ],
  },
  {
    title: 'Health check start lag, p99',
    unit: 's',
    queries: [
      {
        expr: 'histogram_quantile(0.99, sum by (le) (rate(outrigger_probe_schedule_lag_seconds_bucket{job="outrigger-metrics"}[5m])))',
        legend: 'lag',
      },
    ],
  },
  {
    title: 'Reconciles per second',
    unit: 'ops',
    queries: [
      {
        expr: 'sum by (controller, result) (rate(controller_runtime_reconcile_total{job="outrigger-metrics"}[5m]))',
        legend: '{{controller}} {{result}}',
      },
    ],
  },
  {
    title: 'Reconcile duration, p99',
    unit: 's',
    queries: [
      {
        expr: 'histogram_quantile(0.99, sum by (le, controller) (rate(controller_runtime_reconcile_time_seconds_bucket{job="outrigger-metrics"}[5m])))',
        legend: '{{controller}}',
      },
    ],
  },
  {
    title: 'Work queue depth',
    unit: 'short',
    queries: [
      { expr: 'sum by (name) (workqueue_depth{job="outrigger-metrics"})', legend: '{{name}}' },
    ],
  },
  {
    title: 'Writes per second by kind',
    unit: 'ops',
    queries: [
      {
        expr: 'sum by (kind, operation) (rate(outrigger_endpoint_writes_total{job="outrigger-metrics"}[5m]))',
        legend: '{{kind}} {{operation}}',
      },
    ],
  },
  {
    title: 'API requests per second by code',
    unit: 'reqps',
    queries: [
      {
        expr: 'sum by (method, code) (rate(rest_client_requests_total{job="outrigger-metrics"}[5m]))',
        legend: '{{method}} {{code}}',
      },
    ],
  },
  {
    title: 'API request latency, p99',
    unit: 's',
    queries: [
      {
        expr: 'histogram_quantile(0.99, sum by (le, verb) (rate(rest_client_request_duration_seconds_bucket{job="outrigger-metrics"}[5m])))',
        legend: '{{verb}}',
      },
    ],
  },
  {
    title: 'Replicas up',
    unit: 'short',
    queries: [{ expr: 'sum(up{job="outrigger-metrics"})', legend: 'up' }],
  },
  {
    title: 'Selector mode: Endpoints held off for another endpoints controller',
    unit: 'short',
    queries: [
      { expr: 'sum(outrigger_endpoints_contested{job="outrigger-metrics"})', legend: 'held off' },
      {
        expr: 'sum(increase(outrigger_endpoints_conflicts_total{job="outrigger-metrics"}[1h]))',
        legend: 'conflicts (1 h)',
      },
    ],
  },
  {
    title: 'Leader',
    unit: 'short',
    queries: [
      {
        expr: 'max by (name) (leader_election_master_status{job="outrigger-metrics"})',
        legend: '{{name}}',
      },
    ],
  },
  {
    title: 'Watch restarts (1 h) by reason',
    unit: 'short',
    queries: [
      {
        // A watch that never restarted has no series yet: show 0 rather than "no data".
        expr: 'sum by (reason) (increase(outrigger_informer_watch_restarts_total{job="outrigger-metrics"}[1h])) or on() vector(0)',
        legend: '{{reason}}',
      },
    ],
  },
  {
    title: 'Memory',
    unit: 'bytes',
    queries: [
      {
        expr: 'process_resident_memory_bytes{job="outrigger-metrics"}',
        legend: 'RSS {{instance}}',
      },
      {
        expr: 'nodejs_heap_size_used_bytes{job="outrigger-metrics"}',
        legend: 'JS heap {{instance}}',
      },
    ],
  },
];

/** The Grafana dashboard JSON (schema 39), with a Prometheus data source variable. */
export function renderDashboard(): string {
  const datasource = { type: 'prometheus', uid: '${datasource}' };
  return `${JSON.stringify(
    {
      title: 'outrigger',
      uid: 'outrigger',
      description: 'ExternalBackends, health checks and the operator itself',
      tags: ['outrigger', 'kubernetes'],
      schemaVersion: 39,
      editable: true,
      time: { from: 'now-6h', to: 'now' },
      refresh: '30s',
      templating: {
        list: [
          { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus' },
        ],
      },
      panels: panels.map((p, i) => ({
        id: i + 1,
        type: 'timeseries',
        title: p.title,
        datasource,
        gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
        fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
        targets: p.queries.map((q, j) => ({
          datasource,
          expr: q.expr,
          legendFormat: q.legend,
          refId: String.fromCharCode(65 + j),
        })),
      })),
    },
    null,
    2,
  )}\n`;
}
