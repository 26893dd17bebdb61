// The chart as a platform engineer meets it: every value documented, with the README and the
// schema's descriptions generated from values.yaml's comments (no drift); the values users of
// cert-manager's and external-dns's charts reach for render into objects that the real API server
// accepts with strict field validation (the Prometheus Operator's own CRDs validate the
// ServiceMonitor and PrometheusRule); the schema allows `global`, so the chart works as a subchart;
// two writers are refused at template time; and the Artifact Hub metadata matches the chart.
import { spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { dump, load, loadAll } from 'js-yaml';
import { ensureDataPlaneBinary, ensureHelm } from './harness/binaries.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import {
  chartDir,
  readmePath,
  renderChartReadme,
  renderValuesSchema,
  schemaPath,
  undescribed,
  valueRows,
} from './scripts/chart-docs.ts';
import { panels } from './scripts/dashboard.ts';
import { describeUnless, localOnly } from './skips.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const local = describeUnless(localOnly);
const kubeVersion = '1.36.3';
const release = 'edge';
const releaseNs = 'platform';

interface Doc {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
}

let cluster: Cluster;
let helmBin: string;
let work: string;

function run(bin: string, args: readonly string[], input?: string) {
  const r = spawnSync(bin, args, { encoding: 'utf8', ...(input !== undefined && { input }) });
  return { status: r.status, out: r.stdout + r.stderr, stdout: r.stdout };
}

const helm = (args: readonly string[]) => run(helmBin, args);

/** `helm template` of the chart with these values (a values file, as users write them). */
function render(values: unknown, name = release): { status: number | null; out: string } {
  const file = join(
    work,
    `values-${String(Date.now())}-${Math.random().toString(36).slice(2)}.yaml`,
  );
  // The CRDs are applied once for the whole file (beforeAll); the dry runs below judge the rest.
  const given = (typeof values === 'object' && values !== null ? values : {}) as Record<
    string,
    unknown
  >;
  const image = (given.image ?? {}) as Record<string, unknown>;
  const withCrds = {
    ...given,
    ...('crds' in given ? {} : { crds: { enabled: false } }),
    // No image is published: a user names one (the chart refuses to render without it).
    image: { repository: 'ghcr.io/outrigger-dev/outrigger', ...image },
  };
  writeFileSync(file, dump(withCrds));
  return helm([
    'template',
    name,
    chartDir,
    `--kube-version=${kubeVersion}`,
    `--namespace=${releaseNs}`,
    `--values=${file}`,
  ]);
}

function docs(out: string): Doc[] {
  return (loadAll(out) as (Doc | null)[]).filter((d): d is Doc => d?.kind !== undefined);
}

/**
 * Server-side dry run with strict field validation: an unknown or misplaced field fails. Given
 * helm's output as it is (a string), not re-serialised, so that what the API server judges is
 * exactly what Helm would send (a label `off` is a boolean to a YAML 1.1 reader).
 */
function admitted(objects: readonly Doc[] | string): { status: number | null; out: string } {
  return run(
    cluster.kubectl,
    [
      `--kubeconfig=${cluster.kubeconfigPath}`,
      'create',
      '--dry-run=server',
      '--validate=strict',
      '-f',
      '-',
    ],
    typeof objects === 'string' ? objects : objects.map((o) => dump(o)).join('---\n'),
  );
}

beforeAll(async () => {
  helmBin = ensureHelm();
  work = mkdtempSync(join(tmpdir(), 'outrigger-chart-values-'));
  if (process.env.USE_EXISTING_CLUSTER === 'true') return;
  cluster = await startCluster();
  // The chart's CRDs and the Prometheus Operator's, so that every rendered kind is known.
  const crds = [
    fileURLToPath(new URL('../crds/outrigger.dev_externalbackends.yaml', import.meta.url)),
    fileURLToPath(new URL('../crds/outrigger.dev_externalbackendpolicies.yaml', import.meta.url)),
    ensureDataPlaneBinary('monitoring-crds'),
  ];
  const kubectl = (args: readonly string[], input?: string) =>
    run(cluster.kubectl, [`--kubeconfig=${cluster.kubeconfigPath}`, ...args], input);
  for (const f of crds) {
    const r = kubectl(['apply', '--server-side', '-f', f]);
    if (r.status !== 0) throw new Error(`applying ${f} failed:\n${r.out}`);
  }
  const established = kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/externalbackends.outrigger.dev',
    'crd/externalbackendpolicies.outrigger.dev',
    'crd/servicemonitors.monitoring.coreos.com',
    'crd/prometheusrules.monitoring.coreos.com',
  ]);
  if (established.status !== 0) throw new Error(established.out);
  for (const ns of [releaseNs, 'monitoring', 'payments']) {
    const r = kubectl(['create', 'namespace', ns]);
    if (r.status !== 0) throw new Error(r.out);
  }
}, 240_000);

afterAll(async () => {
  rmSync(work, { recursive: true, force: true });
  if (process.env.USE_EXISTING_CLUSTER !== 'true') await cluster.stop();
});

describe("the chart's documentation", () => {
  it("is generated from values.yaml's comments: README and schema descriptions, with nothing undocumented", async () => {
    const rows = valueRows();
    expect(rows.length).toBeGreaterThan(60);
    expect(rows.filter((r) => r.description === '').map((r) => r.key)).toEqual([]);
    // Committed files are exactly what `npm run generate` writes (run it after editing values.yaml).
    expect(readFileSync(readmePath, 'utf8')).toBe(renderChartReadme());
    expect(readFileSync(schemaPath, 'utf8')).toBe(await renderValuesSchema(rows));
    // Every key of the schema, down to the fields of list items, says what it is for.
    const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Parameters<
      typeof undescribed
    >[0];
    expect(undescribed({ properties: { a: { type: 'string' } } })).toEqual(['a']);
    expect(undescribed(schema)).toEqual([]);
    // The README's values table lists every value.
    const readme = readFileSync(readmePath, 'utf8');
    for (const row of rows) expect(readme).toContain(`| ${row.key} |`);
  });
});

local('the chart values', () => {
  it('are checked by the schema: wrong values are refused with the key named, `global` is allowed', () => {
    const cases: readonly [unknown, string | undefined][] = [
      [{ global: { imagePullSecrets: ['regcred'], anything: { from: 'the parent' } } }, undefined],
      [{ imagePullSecrets: ['regcred'], replicaCount: 0 }, undefined],
      [{ fullnameOverride: 'Bad_Name' }, "at '/fullnameOverride'"],
      [{ fullnameOverride: '1-outrigger' }, "at '/fullnameOverride'"],
      [
        { podDisruptionBudget: { maxUnavailable: 'lots' } },
        "at '/podDisruptionBudget/maxUnavailable'",
      ],
      [{ nameOverride: 'x'.repeat(64) }, "at '/nameOverride'"],
      [{ image: { digest: 'latest' } }, "at '/image/digest'"],
      [{ extraEnv: [{ value: 'x' }] }, "at '/extraEnv/0': missing property 'name'"],
      [{ extraVolumeMounts: [{ name: 'ca' }] }, "missing property 'mountPath'"],
      [{ livenessProbe: { periodSeconds: 0 } }, "at '/livenessProbe/periodSeconds'"],
      [{ livenessProbe: { httpGet: { path: '/' } } }, "additional properties 'httpGet'"],
      [{ metrics: { serviceMonitor: { scrapeTimeout: 10 } } }, 'got number, want string'],
      // The Prometheus Operator's own duration syntax: no fractions, compound units.
      [
        { metrics: { serviceMonitor: { interval: '1.5s' } } },
        "at '/metrics/serviceMonitor/interval'",
      ],
      [{ metrics: { serviceMonitor: { interval: '1m30s', scrapeTimeout: '20s' } } }, undefined],
      [{ strategy: { type: 'BlueGreen' } }, "at '/strategy/type'"],
      [
        { topologySpreadConstraints: [{ maxSkew: 1 }] },
        "missing properties 'topologyKey', 'whenUnsatisfiable'",
      ],
      [{ serviceAccount: { labels: { team: 1 } } }, "at '/serviceAccount/labels/team'"],
    ];
    for (const [values, message] of cases) {
      const r = render(values);
      if (message === undefined)
        expect({ values, out: r.status === 0 ? 'ok' : r.out }).toEqual({ values, out: 'ok' });
      else
        expect({ values, out: r.out }).toEqual({ values, out: expect.stringContaining(message) });
    }
  });

  it('refuse at template time what would run two writers or crash-loop', () => {
    const two = render({ replicaCount: 3, leaderElection: { enabled: false } });
    expect(two.status).not.toBe(0);
    expect(two.out).toContain(
      'replicaCount is 3 but leaderElection.enabled is false: every replica would write the same',
    );
    expect(render({ replicaCount: 1, leaderElection: { enabled: false } }).status).toBe(0);
    expect(render({ replicaCount: 3 }).status).toBe(0);
    // The operator refuses these timings at start-up; the chart says so before anything is applied.
    expect(render({ leaderElection: { renewDeadline: '15s' } }).out).toContain(
      'leaderElection.renewDeadline (15s) must be shorter than leaderElection.leaseDuration (15s)',
    );
    expect(render({ leaderElection: { retryPeriod: '10000ms' } }).out).toContain(
      'leaderElection.retryPeriod (10000ms) must be shorter than leaderElection.renewDeadline (10s)',
    );
    expect(
      render({ leaderElection: { leaseDuration: '1m', renewDeadline: '45s', retryPeriod: '1.5s' } })
        .status,
    ).toBe(0);
    expect(render({ healthProbePort: 8080 }).out).toContain(
      'metrics.port and healthProbePort are both 8080',
    );
  });

  it('render names and labels that YAML would read as numbers or booleans as strings', () => {
    const r = render(
      {
        nameOverride: 'on',
        serviceAccount: { name: '007' },
        priorityClassName: '1e3',
        imagePullSecrets: ['123'],
        networkPolicy: { enabled: true },
      },
      '123',
    );
    expect(r.status).toBe(0);
    // Helm's own output, as the API server would get it (priority classes are checked for Pods,
    // not Deployments, so the name need not exist).
    const result = admitted(r.out);
    expect(result.out).not.toMatch(/cannot unmarshal|error/i);
    expect(result.status).toBe(0);
  });

  it('keep their own labels and names whatever users add', () => {
    const r = render(
      {
        podLabels: { 'app.kubernetes.io/name': 'other', tier: 'infra' },
        commonLabels: { 'app.kubernetes.io/instance': 'other', team: 'platform' },
        metrics: { serviceMonitor: { enabled: true, labels: { 'app.kubernetes.io/name': 'x' } } },
        podDisruptionBudget: { minAvailable: 1 },
        livenessProbe: null,
      },
      'a'.repeat(53),
    );
    expect(r.status).toBe(0);
    const all = docs(r.out);
    const deployment = all.find((d) => d.kind === 'Deployment');
    const selector = (deployment?.spec?.selector as { matchLabels: Record<string, string> })
      .matchLabels;
    const podLabels = (
      deployment?.spec?.template as { metadata: { labels: Record<string, string> } }
    ).metadata.labels;
    // The selector still selects the pods; user labels are added, never replace the chart's.
    expect(podLabels).toEqual({ ...selector, tier: 'infra', team: 'platform' });
    for (const d of all) expect(d.metadata?.labels?.['app.kubernetes.io/name']).toBe('outrigger');
    // With the longest release name Helm allows, what must be a DNS label (a Service's name, the
    // Lease's, every label value) still fits in 63 characters; the admission below checks the rest.
    const service = all.find((d) => d.kind === 'Service')?.metadata?.name ?? '';
    expect(service).toMatch(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
    expect(service.endsWith('-metrics')).toBe(true);
    const leaseArg = (
      (deployment?.spec?.template as { spec: { containers: { args: string[] }[] } }).spec
        .containers[0]?.args ?? []
    ).find((a) => a.startsWith('--leader-election-id='));
    expect((leaseArg ?? '').length - '--leader-election-id='.length).toBeLessThanOrEqual(63);
    for (const d of all)
      for (const v of Object.values(d.metadata?.labels ?? {}))
        expect(v.length).toBeLessThanOrEqual(63);
    expect(all.find((d) => d.kind === 'PodDisruptionBudget')?.spec).toMatchObject({
      minAvailable: 1,
    });
    expect(all.find((d) => d.kind === 'PodDisruptionBudget')?.spec).not.toHaveProperty(
      'maxUnavailable',
    );
    // The per-backend metrics' namespace label survives a ServiceMonitor scrape (honorLabels).
    expect(all.find((d) => d.kind === 'ServiceMonitor')?.spec).toMatchObject({
      endpoints: [{ honorLabels: true }],
    });
    expect(admitted(all.filter((d) => d.kind !== 'ExternalBackendPolicy'))).toMatchObject({
      status: 0,
    });
  });

  it('render the CRDs as the repository has them, kept on uninstall unless crds.keep is false', () => {
    const strip = (d: Doc) => {
      const m = { ...(d.metadata ?? {}) } as Record<string, unknown>;
      delete m.labels;
      const annotations = { ...(m.annotations as Record<string, string> | undefined) };
      delete annotations['helm.sh/resource-policy'];
      return { ...d, metadata: { ...m, annotations } };
    };
    const crdsOf = (values: unknown) =>
      docs(render(values).out).filter((d) => d.kind === 'CustomResourceDefinition');
    const rendered = crdsOf({ crds: { enabled: true } });
    const repository = [
      'outrigger.dev_externalbackends.yaml',
      'outrigger.dev_externalbackendpolicies.yaml',
      'outrigger.dev_proberreports.yaml',
    ].map(
      (f) =>
        load(readFileSync(fileURLToPath(new URL(`../crds/${f}`, import.meta.url)), 'utf8')) as Doc,
    );
    expect(rendered.map(strip)).toEqual(repository);
    for (const d of rendered) {
      expect(d.metadata?.annotations?.['helm.sh/resource-policy']).toBe('keep');
      expect(d.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('Helm');
    }
    for (const d of crdsOf({ crds: { enabled: true, keep: false } }))
      expect(d.metadata?.annotations?.['helm.sh/resource-policy']).toBeUndefined();
    expect(crdsOf({ crds: { enabled: false } })).toEqual([]);
    // The chart's grant object needs its CRD served: on a first install Helm cannot create it.
    const early = render({
      addressPolicy: { rules: [{ name: 'a', namespaceSelector: {}, cidrs: ['192.0.2.0/24'] }] },
    });
    expect(early.out).toContain('the ExternalBackendPolicy CRD is not served yet');
  });

  it('by default spread the replicas over nodes, select Linux amd64 nodes, and assign no UID', () => {
    const r = render({});
    expect(r.status).toBe(0);
    const deployment = docs(r.out).find((d) => d.kind === 'Deployment');
    const pod = (deployment?.spec?.template as { spec?: Record<string, unknown> }).spec;
    expect(pod?.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: {
          matchLabels: {
            'app.kubernetes.io/name': 'outrigger',
            'app.kubernetes.io/instance': release,
          },
        },
        matchLabelKeys: ['pod-template-hash'],
      },
    ]);
    expect(pod?.nodeSelector).toEqual({
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': 'amd64',
    });
    // runAsNonRoot without runAsUser: the image's numeric user 1000 satisfies it, and a platform
    // that assigns UIDs from a range can assign one.
    expect(pod?.securityContext).toEqual({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(admitted(docs(r.out).filter((d) => d.kind === 'Deployment'))).toMatchObject({
      status: 0,
    });
  });

  it('secure metrics by default: a generated CA and serving certificate, the review RBAC; metrics.secure=false turns all of it off', () => {
    const secure = docs(render({ metrics: { serviceMonitor: { enabled: true } } }).out);
    const secret = secure.find((d) => d.kind === 'Secret') as
      (Doc & { type?: string; data?: Record<string, string> }) | undefined;
    expect(secret?.metadata?.name).toBe(`${release}-outrigger-metrics-tls`);
    expect(secret?.type).toBe('kubernetes.io/tls');
    const pem = (k: string): string => Buffer.from(secret?.data?.[k] ?? '', 'base64').toString();
    const ca = new X509Certificate(pem('ca.crt'));
    const leaf = new X509Certificate(pem('tls.crt'));
    expect(ca.ca).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.checkPrivateKey(createPrivateKey(pem('tls.key')))).toBe(true);
    // The name the ServiceMonitor verifies, and what a pod in the cluster would dial.
    const svc = `${release}-outrigger-metrics`;
    expect(leaf.checkHost(`${svc}.${releaseNs}.svc`)).toBe(`${svc}.${releaseNs}.svc`);
    expect(leaf.checkHost(`${svc}.${releaseNs}.svc.cluster.local`)).toBeDefined();
    const roles = secure.filter((d) => d.kind === 'ClusterRole').map((d) => d.metadata?.name);
    expect(roles).toEqual(
      expect.arrayContaining([
        `${release}-outrigger-metrics-auth`,
        `${release}-outrigger-metrics-reader`,
      ]),
    );
    // The ServiceMonitor's https, CA reference and bearerTokenFile pass the strict dry run too.
    const result = admitted(secure);
    expect(result.out).not.toMatch(/error|unknown field|Warning/i);
    expect(result.status).toBe(0);
    // A ServiceMonitor elsewhere cannot read the CA from that Secret: the chart says so.
    expect(
      render({ metrics: { serviceMonitor: { enabled: true, namespace: 'monitoring' } } }).out,
    ).toContain('set metrics.serviceMonitor.tlsConfig');
    // An existing Secret (cert-manager's) replaces the generated one.
    const named = docs(render({ metrics: { tls: { secretName: 'metrics-cert' } } }).out);
    expect(named.some((d) => d.kind === 'Secret')).toBe(false);
    expect(JSON.stringify(named.find((d) => d.kind === 'Deployment'))).toContain(
      '"secretName":"metrics-cert"',
    );
    // A release upgraded with --reuse-values from a chart before these values has none of them:
    // it stays secure with the generated certificate rather than failing or turning plain.
    const reused = docs(render({ metrics: { secure: null, tls: null, readers: null } }).out);
    expect(JSON.stringify(reused.find((d) => d.kind === 'Deployment'))).toContain(
      '--metrics-secure=true',
    );
    expect(reused.some((d) => d.metadata?.name === `${release}-outrigger-metrics-tls`)).toBe(true);
    const plain = docs(
      render({ metrics: { secure: false, serviceMonitor: { enabled: true } } }).out,
    );
    expect(
      plain.some(
        (d) => d.kind === 'Secret' || /metrics-(auth|reader)/.test(d.metadata?.name ?? ''),
      ),
    ).toBe(false);
    const args = JSON.stringify(plain.find((d) => d.kind === 'Deployment'));
    expect(args).toContain('--metrics-secure=false');
    expect(args).not.toContain('--metrics-cert-path');
    expect(plain.find((d) => d.kind === 'ServiceMonitor')?.spec?.endpoints).toEqual([
      expect.not.objectContaining({ scheme: 'https' }),
    ]);
  });

  it('render a quorum only when asked, and a release from before quorum.* as one prober', () => {
    const deployment = (values: unknown) => {
      const r = render(values);
      expect(r.status).toBe(0);
      const all = docs(r.out);
      return { all, text: JSON.stringify(all.find((d) => d.kind === 'Deployment')) };
    };
    // A release upgraded with --reuse-values from a chart before quorum.* has no such key.
    for (const values of [{}, { quorum: null }]) {
      const { all, text } = deployment(values);
      expect(text).toContain('--probers-per-address=1');
      expect(text).not.toContain('POD_NAME');
      expect(all.some((d) => d.metadata?.name?.endsWith('-prober-reports') === true)).toBe(false);
    }
    const three = deployment({ replicaCount: 3, quorum: { probersPerAddress: 3 } });
    expect(three.text).toContain('--probers-per-address=3');
    expect(three.text).toContain('"name":"POD_NAME"');
    expect(three.text).toContain('"fieldPath":"spec.nodeName"');
    expect(
      three.all
        .filter((d) => d.metadata?.name === `${release}-outrigger-prober-reports`)
        .map((d) => d.kind),
    ).toEqual(['Role', 'RoleBinding']);
    expect(admitted(three.all)).toMatchObject({ status: 0 });
  });

  it('render every override users reach for into objects the API server accepts', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const values = {
      nameOverride: 'gateway',
      commonLabels: { team: 'platform' },
      global: { commonLabels: { 'cost-center': '42' }, imagePullSecrets: [{ name: 'regcred' }] },
      image: { digest },
      imagePullSecrets: [{ name: 'regcred' }, { name: 'mirror' }],
      // An OpenShift-like platform: its own UID, no seccomp key from the chart.
      podSecurityContext: { runAsUser: 1000650000, seccompProfile: null },
      securityContext: { runAsNonRoot: true },
      extraEnv: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=384' }],
      extraVolumes: [{ name: 'corp-ca', configMap: { name: 'corp-ca' } }],
      extraVolumeMounts: [{ name: 'corp-ca', mountPath: '/etc/corp-ca', readOnly: true }],
      livenessProbe: { periodSeconds: 30 },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      deploymentAnnotations: { 'reloader.example/auto': 'true' },
      serviceAccount: { labels: { 'azure.workload.identity/use': 'true' } },
      tolerations: [{ key: 'dedicated', value: 'infra', effect: 'NoSchedule' }],
      topologySpreadConstraints: [
        {
          maxSkew: 1,
          topologyKey: 'topology.kubernetes.io/zone',
          whenUnsatisfiable: 'DoNotSchedule',
        },
      ],
      metrics: {
        service: { annotations: { 'prometheus.io/scrape': 'true' } },
        serviceMonitor: {
          enabled: true,
          namespace: 'monitoring',
          interval: '15s',
          scrapeTimeout: '10s',
          labels: { release: 'kube-prometheus-stack' },
          annotations: { owner: 'platform' },
          honorLabels: true,
          relabelings: [{ sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' }],
          metricRelabelings: [{ sourceLabels: ['__name__'], regex: 'go_.*', action: 'drop' }],
          // In another namespace than the certificate's Secret: the CA and the token come from
          // objects there.
          tlsConfig: {
            ca: { configMap: { name: 'outrigger-metrics-ca', key: 'ca.crt' } },
            serverName: `edge-gateway-metrics.${releaseNs}.svc`,
          },
          authorization: {
            type: 'Bearer',
            credentials: { name: 'prometheus-token', key: 'token' },
          },
        },
        readers: [{ name: 'prometheus-k8s', namespace: 'monitoring' }],
        prometheusRule: {
          enabled: true,
          namespace: 'monitoring',
          labels: { release: 'kube-prometheus-stack' },
        },
        dashboard: { enabled: true, namespace: 'monitoring' },
      },
      networkPolicy: { enabled: true },
    };
    const r = render(values);
    expect(r.status).toBe(0);
    const all = docs(r.out);
    const byKind = (kind: string): Doc[] => all.filter((d) => d.kind === kind);
    // Names from nameOverride; labels from commonLabels and global.commonLabels on every object.
    expect(byKind('Deployment')[0]?.metadata?.name).toBe('edge-gateway');
    for (const d of all) {
      expect({ kind: d.kind, labels: d.metadata?.labels }).toMatchObject({
        labels: { team: 'platform', 'cost-center': '42', 'app.kubernetes.io/name': 'gateway' },
      });
    }
    const deployment = byKind('Deployment')[0];
    expect(deployment?.metadata?.annotations).toEqual({ 'reloader.example/auto': 'true' });
    expect(deployment?.spec?.strategy).toEqual(values.strategy);
    const pod = (deployment?.spec?.template as { spec: Record<string, unknown> }).spec;
    expect(pod.imagePullSecrets).toEqual([{ name: 'regcred' }, { name: 'mirror' }]);
    expect(pod.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 1000650000 });
    expect(pod.volumes).toEqual([
      { name: 'tmp', emptyDir: { sizeLimit: '16Mi' } },
      { name: 'metrics-certs', secret: { secretName: 'edge-gateway-metrics-tls' } },
      { name: 'corp-ca', configMap: { name: 'corp-ca' } },
    ]);
    const container = (pod.containers as Record<string, unknown>[])[0];
    expect(container).toMatchObject({
      image: `ghcr.io/outrigger-dev/outrigger@${digest}`,
      env: values.extraEnv,
      volumeMounts: [
        { name: 'tmp', mountPath: '/tmp' },
        { name: 'metrics-certs', mountPath: '/etc/outrigger/metrics-certs', readOnly: true },
        values.extraVolumeMounts[0],
      ],
      livenessProbe: { httpGet: { path: '/healthz', port: 'probes' }, periodSeconds: 30 },
      securityContext: {
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
      },
    });
    expect(container?.args).toContain('--leader-election-id=edge-gateway-leader');
    // A constraint the user wrote gets the chart's pod labels, as the default one does.
    expect(pod.topologySpreadConstraints).toEqual([
      {
        ...values.topologySpreadConstraints[0],
        labelSelector: {
          matchLabels: {
            'app.kubernetes.io/name': 'gateway',
            'app.kubernetes.io/instance': release,
          },
        },
        matchLabelKeys: ['pod-template-hash'],
      },
    ]);
    // The ServiceMonitor lives in the monitoring namespace and selects the release's Service.
    const monitor = byKind('ServiceMonitor')[0];
    expect(monitor?.metadata).toMatchObject({
      namespace: 'monitoring',
      labels: { release: 'kube-prometheus-stack' },
      annotations: { owner: 'platform' },
    });
    expect(monitor?.spec).toMatchObject({
      namespaceSelector: { matchNames: [releaseNs] },
      endpoints: [
        {
          port: 'metrics',
          interval: '15s',
          scrapeTimeout: '10s',
          honorLabels: true,
          relabelings: values.metrics.serviceMonitor.relabelings,
          metricRelabelings: values.metrics.serviceMonitor.metricRelabelings,
          scheme: 'https',
          tlsConfig: values.metrics.serviceMonitor.tlsConfig,
          authorization: values.metrics.serviceMonitor.authorization,
        },
      ],
    });
    expect(monitor?.spec?.endpoints).not.toContainEqual(
      expect.objectContaining({ bearerTokenFile: expect.anything() }),
    );
    // The scraper named in metrics.readers may get /metrics.
    expect(
      byKind('ClusterRoleBinding').find((b) => b.metadata?.name === 'edge-gateway-metrics-reader'),
    ).toMatchObject({
      roleRef: { name: 'edge-gateway-metrics-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'prometheus-k8s', namespace: 'monitoring' }],
    });
    expect(byKind('Service')[0]?.metadata?.annotations).toEqual({ 'prometheus.io/scrape': 'true' });
    expect(byKind('PrometheusRule')[0]?.metadata?.namespace).toBe('monitoring');
    expect(byKind('ServiceAccount')[0]?.metadata?.labels).toMatchObject({
      'azure.workload.identity/use': 'true',
    });
    // Everything the chart rendered, dry-run created with strict field validation. Namespaced
    // objects without a namespace would land in `default`: the chart names one on every object.
    for (const d of all) {
      const clusterScoped = [
        'ClusterRole',
        'ClusterRoleBinding',
        'ExternalBackendPolicy',
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicyBinding',
        'CustomResourceDefinition',
      ].includes(d.kind ?? '');
      expect({ kind: d.kind, namespaced: d.metadata?.namespace !== undefined }).toEqual({
        kind: d.kind,
        namespaced: !clusterScoped,
      });
    }
    const result = admitted(r.out);
    expect(result.out).not.toMatch(/error|unknown field|Warning/i);
    expect(result.status).toBe(0);
    // ...and the check is strict: a misplaced field is refused.
    const misplaced = { ...deployment, spec: { ...deployment?.spec, matchLabelKeys: ['x'] } };
    expect(admitted([misplaced]).out).toContain('unknown field "spec.matchLabelKeys"');
    // fullnameOverride replaces the whole name.
    const full = docs(render({ fullnameOverride: 'xb-operator' }).out);
    expect(full.find((d) => d.kind === 'Deployment')?.metadata?.name).toBe('xb-operator');
    expect(full.find((d) => d.kind === 'ServiceAccount')?.metadata?.name).toBe('xb-operator');
  });

  it("scope every alert and dashboard query to outrigger's own job (metrics.jobSelector)", () => {
    const promtool = ensureDataPlaneBinary('promtool');
    const monitoring = { prometheusRule: { enabled: true }, dashboard: { enabled: true } };
    const scoped = (values: unknown) => {
      const all = docs(render(values).out);
      const rule = all.find((d) => d.kind === 'PrometheusRule');
      const groups = (rule?.spec?.groups ?? []) as { rules: { alert: string; expr: string }[] }[];
      const board = all.find(
        (d) => d.kind === 'ConfigMap' && d.metadata?.name?.endsWith('-dashboard'),
      );
      const json = JSON.parse(
        (board as { data?: Record<string, string> } | undefined)?.data?.['outrigger.json'] ?? '{}',
      ) as { panels?: { targets: { expr: string }[] }[] };
      // The substituted expressions still parse, as Prometheus will read them.
      const file = join(work, `rules-${String(Date.now())}.yaml`);
      writeFileSync(file, dump({ groups }));
      const check = run(promtool, ['check', 'rules', file]);
      expect(check.out).toContain('SUCCESS');
      return {
        all,
        exprs: groups.flatMap((g) => g.rules.map((r) => `${r.alert}: ${r.expr}`)),
        queries: (json.panels ?? []).flatMap((p) => p.targets.map((t) => t.expr)),
      };
    };

    // Default: the job a ServiceMonitor without jobLabel gives the metrics Service, its name.
    const byDefault = scoped({ metrics: { ...monitoring, serviceMonitor: { enabled: true } } });
    const service = byDefault.all.find((d) => d.kind === 'Service');
    expect(service?.metadata?.name).toBe('edge-outrigger-metrics');
    const monitor = byDefault.all.find((d) => d.kind === 'ServiceMonitor');
    expect(monitor?.spec?.jobLabel).toBeUndefined();
    // Every rule and every query came through (none lost on the way).
    const source = load(readFileSync(join(chartDir, 'rules', 'outrigger.rules.yaml'), 'utf8')) as {
      groups: { rules: unknown[] }[];
    };
    expect(byDefault.exprs).toHaveLength(source.groups.flatMap((g) => g.rules).length);
    expect(byDefault.queries).toHaveLength(panels.flatMap((p) => p.queries).length);
    for (const e of [...byDefault.exprs, ...byDefault.queries]) {
      expect(e).toContain('job="edge-outrigger-metrics"');
      expect(e).not.toContain('job="outrigger-metrics"');
    }
    expect(byDefault.exprs).toContain(
      'OutriggerDown: absent(up{job="edge-outrigger-metrics"} == 1)',
    );

    // Any matchers, as for annotation-based scraping (quotes survive the dashboard's JSON).
    const selector = 'job="kubernetes-service-endpoints",service="edge-outrigger-metrics"';
    const custom = scoped({ metrics: { ...monitoring, jobSelector: selector } });
    for (const e of [...custom.exprs, ...custom.queries]) expect(e).toContain(selector);
  });

  it('work as a subchart: an umbrella chart passes global values and its own values through', () => {
    const umbrella = join(work, 'umbrella');
    mkdirSync(join(umbrella, 'charts'), { recursive: true });
    writeFileSync(
      join(umbrella, 'Chart.yaml'),
      dump({
        apiVersion: 'v2',
        name: 'platform',
        version: '1.0.0',
        dependencies: [
          {
            name: 'outrigger',
            version: '0.1.0',
            repository: `file://${chartDir}`,
            condition: 'outrigger.enabled',
          },
        ],
      }),
    );
    writeFileSync(
      join(umbrella, 'values.yaml'),
      dump({
        global: {
          imagePullSecrets: ['regcred'],
          commonLabels: { platform: 'core' },
          domain: 'example.test',
        },
        outrigger: {
          enabled: true,
          replicaCount: 3,
          image: { repository: 'registry.example/outrigger' },
        },
      }),
    );
    const dep = helm(['dependency', 'build', umbrella]);
    expect(dep.status).toBe(0);
    const lint = helm(['lint', '--strict', umbrella, `--kube-version=${kubeVersion}`]);
    expect(lint.out).toContain('1 chart(s) linted, 0 chart(s) failed');
    const r = helm([
      'template',
      'plat',
      umbrella,
      `--kube-version=${kubeVersion}`,
      '--namespace=platform',
    ]);
    expect(r.status).toBe(0);
    const deployment = docs(r.out).find((d) => d.kind === 'Deployment');
    expect(deployment?.metadata?.labels).toMatchObject({ platform: 'core' });
    expect(deployment?.spec?.replicas).toBe(3);
    const pod = (deployment?.spec?.template as { spec: Record<string, unknown> }).spec;
    expect(pod.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    // ...and its dependency condition switches it off.
    const off = helm([
      'template',
      'plat',
      umbrella,
      `--kube-version=${kubeVersion}`,
      '--set=outrigger.enabled=false',
    ]);
    expect(off.status).toBe(0);
    expect(docs(off.out)).toEqual([]);
  });

  it('carry Artifact Hub metadata that matches the chart: CRDs, examples the API server accepts, no unpublished image, license, links', () => {
    const chart = load(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as {
      appVersion: string;
      annotations: Record<string, string>;
    };
    const a = chart.annotations;
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
      license: string;
    };
    expect(a['artifacthub.io/license']).toBe(pkg.license);
    expect(readFileSync(join(repoRoot, 'LICENSE'), 'utf8')).toMatch(
      /^Apache License\s+Version 2\.0/,
    );
    // The CRDs listed are the chart's (the CRD files at the top of the repository, which the
    // chart's templates/crds.yaml is generated from with them), by kind, version and name.
    const listed = load(a['artifacthub.io/crds'] ?? '') as {
      kind: string;
      version: string;
      name: string;
    }[];
    const shipped = [
      'outrigger.dev_externalbackends.yaml',
      'outrigger.dev_externalbackendpolicies.yaml',
      'outrigger.dev_proberreports.yaml',
    ].map((f) => {
      const crd = load(
        readFileSync(fileURLToPath(new URL(`../crds/${f}`, import.meta.url)), 'utf8'),
      ) as {
        metadata: { name: string };
        spec: { names: { kind: string }; versions: { name: string; served: boolean }[] };
      };
      return {
        kind: crd.spec.names.kind,
        version: crd.spec.versions.find((v) => v.served)?.name,
        name: crd.metadata.name,
      };
    });
    expect(listed.map((c) => ({ kind: c.kind, version: c.version, name: c.name }))).toEqual(
      shipped,
    );
    // The examples are valid objects of those CRDs (schema and CEL rules, on the real API server).
    const examples = load(a['artifacthub.io/crdsExamples'] ?? '') as Doc[];
    expect(examples.map((e) => e.kind)).toEqual(['ExternalBackend', 'ExternalBackendPolicy']);
    const placed = examples.map((e) =>
      e.kind === 'ExternalBackend'
        ? { ...e, metadata: { ...e.metadata, namespace: 'payments' } }
        : e,
    );
    expect(admitted(placed)).toMatchObject({ status: 0 });
    // No image is published, so none is claimed: the chart names no default image either.
    const values = load(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as {
      image: { repository: string };
    };
    expect(values.image.repository).toBe('');
    expect(a['artifacthub.io/images']).toBeUndefined();
    const bare = helm(['template', release, chartDir, `--kube-version=${kubeVersion}`]);
    expect(bare.status).not.toBe(0);
    expect(bare.out).toContain('image.repository is required');
    // Links to the project's files point at files that exist.
    const links = load(a['artifacthub.io/links'] ?? '') as { name: string; url: string }[];
    expect(links.length).toBeGreaterThan(2);
    for (const { url } of links) {
      const m =
        /^https:\/\/github\.com\/outrigger-dev\/outrigger(?:\/blob\/main\/(.+)|#readme)$/.exec(url);
      expect({ url, matches: m !== null }).toEqual({ url, matches: true });
      expect({ url, exists: existsSync(join(repoRoot, m?.[1] ?? 'README.md')) }).toEqual({
        url,
        exists: true,
      });
    }
  });
});
