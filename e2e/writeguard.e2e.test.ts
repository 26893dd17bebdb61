// The chart's write guard (src/policy/writeguard.ts) against a real API server. The chart is
// installed with helm; then (1) the operator runs as the chart's ServiceAccount (a TokenRequest
// token, so the guard applies to it) through every kind of write it makes — a backend's Service,
// Endpoints and slices created, changed, renamed and deleted, a hand-written Endpoints adopted,
// selector-mode Endpoints created, updated and deleted — and none is refused; (2) requests sent
// as that ServiceAccount (impersonated by the admin) that reach objects outrigger does not manage
// are refused, each by the rule meant for it, while the same requests of the admin and the
// operator's own kind of request pass.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1EndpointSlice,
  type V1Endpoints,
  type V1Service,
} from '@kubernetes/client-node';
import { loadAll } from 'js-yaml';
import {
  adoptEndpointsAnnotation,
  apiVersion,
  group,
  plural,
  version,
} from '../src/api/externalbackend.ts';
import { writeGuardPolicies } from '../src/policy/writeguard.ts';
import { ensureHelm } from './harness/binaries.ts';
import { createGrant, kubectl, proberReportCrdPath } from './harness/crd.ts';
import { proberReportPlural } from '../src/api/proberreport.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import {
  apiError,
  createRunningPod,
  createTestNamespace,
  serviceAccountKubeconfig,
  waitFor,
  writePodStatus,
} from './helpers.ts';
import { describeUnless, localOnly } from './skips.ts';

const chartDir = fileURLToPath(new URL('../charts/outrigger', import.meta.url));
const local = describeUnless(localOnly);
const release = 'outrigger';
const releaseNs = 'outrigger-system';
const kubeVersion = '1.36.3';
const imageValue = '--set=image.repository=registry.example/outrigger';
const operatorUser = `system:serviceaccount:${releaseNs}:${release}`;
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

let cluster: Cluster;
let kc: KubeConfig;
let core: CoreV1Api;
let discovery: DiscoveryV1Api;
let objects: CustomObjectsApi;
/** The admin, impersonating the operator's ServiceAccount. */
let asOperator: KubeConfig;
let saKubeconfig: string;
/** ExternalBackends' namespace (not in selector mode) and selector mode's namespace. */
let nsB: string;
let nsSel: string;
let helmBin: string;

function helm(args: readonly string[]): { status: number | null; out: string } {
  const r = spawnSync(helmBin, [...args, imageValue], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

beforeAll(async () => {
  helmBin = ensureHelm();
  if (process.env.USE_EXISTING_CLUSTER === 'true') return;
  // The garbage collector deletes a deleted backend's objects (as its own ServiceAccount); the
  // status controller reports the type checking of the policies' CEL.
  cluster = await startCluster({
    controllers: ['garbage-collector-controller', 'validatingadmissionpolicy-status-controller'],
  });
  kc = cluster.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  discovery = kc.makeApiClient(DiscoveryV1Api);
  objects = kc.makeApiClient(CustomObjectsApi);
  nsB = await createTestNamespace(kc, 'wg-backends');
  nsSel = await createTestNamespace(kc, 'wg-selector');
  const installed = helm([
    'install',
    release,
    chartDir,
    `--kubeconfig=${cluster.kubeconfigPath}`,
    `--namespace=${releaseNs}`,
    '--create-namespace',
    `--set=selectorMode=${nsSel}`,
  ]);
  if (installed.status !== 0) throw new Error(`helm install failed:\n${installed.out}`);
  await createGrant(kc, 'writeguard-e2e', [
    { name: 'docs', namespaceSelector: {}, cidrs: ['192.0.2.0/24'] },
  ]);
  saKubeconfig = await serviceAccountKubeconfig(kc, releaseNs, release, cluster.dir ?? '/tmp');
  asOperator = new KubeConfig();
  const admin = kc.getCurrentUser();
  const cl = kc.getCurrentCluster();
  if (admin === null || cl === null) throw new Error('no admin user in the kubeconfig');
  asOperator.loadFromOptions({
    clusters: [cl],
    users: [{ ...admin, name: 'impersonator', impersonateUser: operatorUser }],
    contexts: [{ name: 'impersonator', cluster: cl.name, user: 'impersonator' }],
    currentContext: 'impersonator',
  });
}, 240_000);

afterAll(async () => {
  if (process.env.USE_EXISTING_CLUSTER !== 'true') await cluster.stop();
});

const xb = (name: string, spec: Record<string, unknown>, annotations?: Record<string, string>) => ({
  apiVersion,
  kind: 'ExternalBackend',
  metadata: { name, ...(annotations !== undefined ? { annotations } : {}) },
  spec,
});

async function backend(ns: string, name: string): Promise<{ uid: string }> {
  const o = (await objects.getNamespacedCustomObject({
    group,
    version,
    namespace: ns,
    plural,
    name,
  })) as { metadata: { uid: string } };
  return { uid: o.metadata.uid };
}

const slice = (ns: string, name: string) =>
  discovery.readNamespacedEndpointSlice({ namespace: ns, name }).catch(() => undefined);
const endpoints = (ns: string, name: string) =>
  core.readNamespacedEndpoints({ namespace: ns, name }).catch(() => undefined);
const service = (ns: string, name: string) =>
  core.readNamespacedService({ namespace: ns, name }).catch(() => undefined);

local('the write guard', () => {
  it('is what src/policy/writeguard.ts builds, with the release and the values put in', () => {
    const r = spawnSync(
      helmBin,
      [
        'template',
        release,
        chartDir,
        `--namespace=${releaseNs}`,
        `--kube-version=${kubeVersion}`,
        '--set=selectorMode=a\\,b',
        '--set-json=watchNamespaces=["a","c"]',
        '--show-only=templates/write-guard.yaml',
        imageValue,
      ],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    const rendered = loadAll(r.stdout) as { metadata: { labels?: unknown } }[];
    for (const d of rendered) delete d.metadata.labels;
    const built = writeGuardPolicies(`${release}-write-guard`, {
      serviceAccount: { namespace: releaseNs, name: release },
      selectorNamespaces: ['a', 'b'],
      backendNamespaces: ['a', 'c'],
    });
    expect(rendered).toEqual([...built.policies, ...built.bindings]);
    // Off by default for selector mode; every namespace for backends.
    const plain = spawnSync(
      helmBin,
      [
        'template',
        release,
        chartDir,
        `--kube-version=${kubeVersion}`,
        '--show-only=templates/write-guard.yaml',
        imageValue,
      ],
      { encoding: 'utf8' },
    ).stdout;
    expect(plain).toContain('expression: "false"');
    expect(plain).toContain('expression: "true"');
    const off = spawnSync(
      helmBin,
      [
        'template',
        release,
        chartDir,
        `--kube-version=${kubeVersion}`,
        '--set=writeGuard.enabled=false',
        imageValue,
      ],
      { encoding: 'utf8' },
    ).stdout;
    const names = (loadAll(off) as ({ metadata?: { name?: string } } | null)[]).map(
      (d) => d?.metadata?.name ?? '',
    );
    expect(names.length).toBeGreaterThan(5);
    expect(names.filter((n) => n.includes('write-guard'))).toEqual([]);
  });

  it('lets the operator, as its ServiceAccount, make every write it makes', async () => {
    const logPath = join(cluster.dir ?? '/tmp', 'writeguard-operator.log');
    let op: OperatorProcess | undefined;
    const refused = (): string | undefined =>
      readFileSync(logPath, 'utf8')
        .split('\n')
        .find((l) => l.includes('write-guard'));
    // Fails at once when the log shows a write the guard refused, else after the timeout.
    const step = async <T>(
      what: string,
      fn: () => Promise<T | undefined>,
      timeoutMs = 30_000,
    ): Promise<T> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = refused();
        if (r !== undefined) throw new Error(`${what}: refused by the guard: ${r.slice(0, 400)}`);
        const v = await fn().catch(() => undefined);
        if (v !== undefined) return v;
        if (Date.now() > deadline)
          throw new Error(`${what}: not reached in ${String(timeoutMs)} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    // The API server compiled every expression against the types it knows (params included).
    const vaps = kc.makeApiClient(AdmissionregistrationV1Api);
    for (const name of [`${release}-write-guard`, `${release}-write-guard-owners`]) {
      const checked = await waitFor(`type checking of ${name}`, async () => {
        const p = await vaps.readValidatingAdmissionPolicy({ name });
        return p.status?.typeChecking;
      });
      expect(checked.expressionWarnings ?? []).toEqual([]);
    }
    try {
      op = await startOperator(saKubeconfig, [`--selector-mode=${nsSel}`], logPath, {
        installCrd: false,
      });
      // A backend: Service, Endpoints and slice created.
      const spec = { ports: [{ name: 'pg', port: 5432 }], addresses: [{ ip: '192.0.2.10' }] };
      await objects.createNamespacedCustomObject({
        group,
        version,
        namespace: nsB,
        plural,
        body: xb('db', spec),
      });
      await step('the backend written', async () =>
        (await service(nsB, 'db')) &&
        (await endpoints(nsB, 'db')) &&
        (await slice(nsB, 'db-outrigger-ipv4'))
          ? true
          : undefined,
      );
      const patchSpec = (name: string, value: unknown) =>
        objects.patchNamespacedCustomObject({
          group,
          version,
          namespace: nsB,
          plural,
          name,
          body: [{ op: 'replace', path: '/spec', value }],
        });
      // Address and port changes: Endpoints and slice applied, the Service's ports patched.
      const changed = { ports: [{ name: 'pg', port: 5433 }], addresses: [{ ip: '192.0.2.11' }] };
      await patchSpec('db', changed);
      await step('the address and port change', async () => {
        const [svc, ep, s] = await Promise.all([
          service(nsB, 'db'),
          endpoints(nsB, 'db'),
          slice(nsB, 'db-outrigger-ipv4'),
        ]);
        return svc?.spec?.ports?.[0]?.port === 5433 &&
          ep?.subsets?.[0]?.addresses?.[0]?.ip === '192.0.2.11' &&
          s?.endpoints?.[0]?.addresses[0] === '192.0.2.11' &&
          s.ports?.[0]?.port === 5433
          ? true
          : undefined;
      });
      // A rename: the old objects deleted by the operator, new ones created.
      await patchSpec('db', { ...changed, service: { name: 'db2' } });
      await step('the rename', async () =>
        !(await service(nsB, 'db')) &&
        !(await endpoints(nsB, 'db')) &&
        !(await slice(nsB, 'db-outrigger-ipv4')) &&
        (await slice(nsB, 'db2-outrigger-ipv4')) &&
        (await endpoints(nsB, 'db2'))
          ? true
          : undefined,
      );
      // The seed migration: a hand-written Service and Endpoints, adopted on the opt-in.
      await core.createNamespacedService({
        namespace: nsB,
        body: { metadata: { name: 'etcd-k8s' }, spec: { ports: [{ name: 'port', port: 2379 }] } },
      });
      await core.createNamespacedEndpoints({
        namespace: nsB,
        body: {
          metadata: { name: 'etcd-k8s' },
          subsets: [{ addresses: [{ ip: '192.0.2.20' }], ports: [{ name: 'port', port: 2379 }] }],
        },
      });
      await objects.createNamespacedCustomObject({
        group,
        version,
        namespace: nsB,
        plural,
        body: xb(
          'etcd-k8s',
          { ports: [{ name: 'port', port: 2379 }], addresses: [{ ip: '192.0.2.20' }] },
          { [adoptEndpointsAnnotation]: 'true' },
        ),
      });
      const etcd = await backend(nsB, 'etcd-k8s');
      await step('the hand-written Endpoints adopted', async () =>
        (await endpoints(nsB, 'etcd-k8s'))?.metadata?.ownerReferences?.some(
          (r) => r.uid === etcd.uid && r.controller === true,
        )
          ? true
          : undefined,
      );
      // Selector mode: created, updated on a readiness flip, deleted with its Service.
      await createRunningPod(core, nsSel, 'web-1', {
        ip: '10.244.1.1',
        ready: false,
        labels: { app: 'web' },
      });
      await core.createNamespacedService({
        namespace: nsSel,
        body: {
          metadata: { name: 'web' },
          spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
        },
      });
      await step('selector-mode Endpoints', () => endpoints(nsSel, 'web'));
      await writePodStatus(core, nsSel, 'web-1', '10.244.1.1', true);
      await step('the selector-mode update', async () =>
        (await endpoints(nsSel, 'web'))?.subsets?.[0]?.addresses?.length === 1 ? true : undefined,
      );
      await core.deleteNamespacedService({ namespace: nsSel, name: 'web' });
      await step('the selector-mode delete', async () =>
        (await endpoints(nsSel, 'web')) ? undefined : true,
      );
      // A backend deleted: the garbage collector (not the operator) removes what it owned.
      await objects.deleteNamespacedCustomObject({
        group,
        version,
        namespace: nsB,
        plural,
        name: 'etcd-k8s',
      });
      await step(
        'the deleted backend cleaned up',
        async () =>
          (await endpoints(nsB, 'etcd-k8s')) || (await slice(nsB, 'etcd-k8s-outrigger-ipv4'))
            ? undefined
            : true,
        // The garbage collector's first sync of its monitors can take half a minute.
        60_000,
      );
      expect(refused()).toBeUndefined();
      // Every one of those writes was this process's, made as the ServiceAccount.
      expect(await op.metric('outrigger_endpoint_writes_total')).toBeGreaterThan(10);
    } finally {
      await op?.kill();
    }
  }, 120_000);

  describe('as the ServiceAccount (impersonated)', () => {
    let ownerRef: Record<string, unknown>;
    let sa: { core: CoreV1Api; discovery: DiscoveryV1Api };

    beforeAll(async () => {
      sa = {
        core: asOperator.makeApiClient(CoreV1Api),
        discovery: asOperator.makeApiClient(DiscoveryV1Api),
      };
      // A backend the ServiceAccount "controls" (the operator is not running: nothing writes).
      await objects.createNamespacedCustomObject({
        group,
        version,
        namespace: nsB,
        plural,
        body: xb('own', { ports: [{ name: 'http', port: 80 }], addresses: [{ ip: '192.0.2.40' }] }),
      });
      const own = await backend(nsB, 'own');
      ownerRef = {
        apiVersion,
        kind: 'ExternalBackend',
        name: 'own',
        uid: own.uid,
        controller: true,
        blockOwnerDeletion: true,
      };
      // The victims: a team's selectorless Service with hand-written Endpoints and slice.
      for (const ns of [nsB, nsSel]) {
        await core.createNamespacedService({
          namespace: ns,
          body: { metadata: { name: 'victim' }, spec: { ports: [{ name: 'http', port: 80 }] } },
        });
        await core.createNamespacedEndpoints({
          namespace: ns,
          body: {
            metadata: { name: 'victim' },
            subsets: [{ addresses: [{ ip: '192.0.2.30' }], ports: [{ name: 'http', port: 80 }] }],
          },
        });
      }
      await discovery.createNamespacedEndpointSlice({
        namespace: nsB,
        body: {
          metadata: {
            name: 'victim-team',
            labels: {
              'kubernetes.io/service-name': 'victim',
              'endpointslice.kubernetes.io/managed-by': 'team.example',
            },
          },
          addressType: 'IPv4',
          endpoints: [{ addresses: ['192.0.2.30'] }],
          ports: [{ name: 'http', port: 80 }],
        },
      });
    });

    const ownedSlice = (name: string, service: string, ref = ownerRef): V1EndpointSlice => ({
      metadata: {
        name,
        labels: {
          'kubernetes.io/service-name': service,
          'endpointslice.kubernetes.io/managed-by': 'controller.outrigger.dev',
          'app.kubernetes.io/managed-by': 'outrigger',
        },
        ownerReferences: [ref as never],
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['192.0.2.66'] }],
      ports: [{ name: 'http', port: 80 }],
    });
    const hijack = [{ addresses: [{ ip: '192.0.2.66' }], ports: [{ name: 'http', port: 80 }] }];

    /** The request is refused by the write guard, with a message that contains `says`. */
    async function refused(p: Promise<unknown>, says: string): Promise<void> {
      const e = await apiError(p);
      expect(e.code).toBe(403);
      expect(e.message).toContain(`${release}-write-guard`);
      expect(e.message).toContain(says);
    }

    it("refuses changes to a team's Service, Endpoints and EndpointSlice", async () => {
      await refused(
        sa.core.patchNamespacedService(
          { namespace: nsB, name: 'victim', body: { spec: { ports: [{ port: 8080 }] } } },
          merge,
        ),
        `may update Services only`,
      );
      await refused(
        sa.core.patchNamespacedEndpoints(
          { namespace: nsB, name: 'victim', body: { subsets: hijack } },
          merge,
        ),
        'may update Endpoints only',
      );
      await refused(
        sa.discovery.patchNamespacedEndpointSlice(
          {
            namespace: nsB,
            name: 'victim-team',
            body: { endpoints: [{ addresses: ['192.0.2.66'] }] },
          },
          merge,
        ),
        'may update EndpointSlices only',
      );
      await refused(
        sa.core.deleteNamespacedService({ namespace: nsB, name: 'victim' }),
        'may delete Services only',
      );
      await refused(
        sa.core.deleteNamespacedEndpoints({ namespace: nsB, name: 'victim' }),
        'may delete Endpoints only',
      );
      await refused(
        sa.discovery.deleteNamespacedEndpointSlice({ namespace: nsB, name: 'victim-team' }),
        'may delete EndpointSlices only',
      );
      // Nothing changed; the admin, whom the guard does not bind, may make the same change.
      expect((await endpoints(nsB, 'victim'))?.subsets?.[0]?.addresses?.[0]?.ip).toBe('192.0.2.30');
      await core.patchNamespacedService(
        { namespace: nsB, name: 'victim', body: { metadata: { labels: { touched: 'yes' } } } },
        merge,
      );
    });

    it('refuses a grant object of its own: it may write only the compiled one', async () => {
      const asSa = asOperator.makeApiClient(CustomObjectsApi);
      const grant = (name: string) => ({
        apiVersion: 'outrigger.dev/v1alpha1',
        kind: 'ExternalBackendPolicy',
        metadata: { name },
        spec: { rules: [{ name: 'all', namespaceSelector: {}, cidrs: ['0.0.0.0/0'] }] },
      });
      // RBAC lets the ServiceAccount create any ExternalBackendPolicy (create cannot be limited
      // to a name); the guard refuses every name but the compiled object's.
      await refused(
        asSa.createClusterCustomObject({
          group,
          version,
          plural: 'externalbackendpolicies',
          body: grant('mine'),
        }),
        'may write only the ExternalBackendPolicy outrigger-effective',
      );
      // The compiled object itself passes the guard (a dry run: the operator owns its content).
      await asSa
        .createClusterCustomObject({
          group,
          version,
          plural: 'externalbackendpolicies',
          body: grant('outrigger-effective'),
          dryRun: 'All',
        })
        .catch((e: unknown) => {
          // Already there (the operator compiled it): a conflict is not the guard's refusal.
          if (!(e instanceof Error) || !/409|AlreadyExists|already exists/.test(e.message)) throw e;
        });
    });

    it('refuses a slice of a backend it controls that names a victim Service', async () => {
      // The slice the backend may have passes: impersonation and RBAC allow the request, and
      // the refusals below are the guard's.
      await sa.discovery.createNamespacedEndpointSlice({
        namespace: nsB,
        body: ownedSlice('own-outrigger-ipv4-7', 'own'),
      });
      await sa.discovery.deleteNamespacedEndpointSlice({
        namespace: nsB,
        name: 'own-outrigger-ipv4-7',
      });
      await refused(
        sa.discovery.createNamespacedEndpointSlice({
          namespace: nsB,
          body: ownedSlice('victim-outrigger-ipv4', 'victim'),
        }),
        'ExternalBackend own publishes the endpoints of Service own, not of victim',
      );
      // The owner's name with a made-up uid, and the other way round.
      await refused(
        sa.discovery.createNamespacedEndpointSlice({
          namespace: nsB,
          body: ownedSlice('victim-outrigger-ipv4', 'victim', {
            ...ownerRef,
            uid: '00000000-0000-0000-0000-000000000000',
          }),
        }),
        'which is not that ExternalBackend',
      );
      await refused(
        sa.discovery.createNamespacedEndpointSlice({
          namespace: nsB,
          body: ownedSlice('victim-outrigger-ipv4', 'victim', { ...ownerRef, name: 'victim' }),
        }),
        'which is not that ExternalBackend',
      );
      // No owner at all, and a name that is not outrigger's.
      const unowned = ownedSlice('victim-outrigger-ipv4', 'victim');
      delete unowned.metadata?.ownerReferences;
      await refused(
        sa.discovery.createNamespacedEndpointSlice({ namespace: nsB, body: unowned }),
        'may create EndpointSlices only',
      );
      await refused(
        sa.discovery.createNamespacedEndpointSlice({
          namespace: nsB,
          body: ownedSlice('own-abcde', 'own'),
        }),
        'may create EndpointSlices only',
      );
    });

    it('lets through a slice for a victim whose owner does not exist, which the garbage collector removes', async () => {
      // The residual risk (SECURITY.md): admission sees each ExternalBackend of the namespace in
      // turn and cannot require that one of them is the owner. A made-up owner (name and uid)
      // passes; the garbage collector, finding no owner, deletes the object.
      const made = Date.now();
      await sa.discovery.createNamespacedEndpointSlice({
        namespace: nsB,
        body: ownedSlice('victim-outrigger-ipv4', 'victim', {
          ...ownerRef,
          name: 'ghost',
          uid: '11111111-1111-1111-1111-111111111111',
        }),
      });
      await waitFor('the garbage collector to delete it', async () =>
        (await slice(nsB, 'victim-outrigger-ipv4')) ? undefined : true,
      );
      console.log(
        `a slice with a made-up owner lived ${String(Date.now() - made)} ms before the garbage collector deleted it`,
      );
    });

    it('refuses a made-up owner the garbage collector could not resolve, and a change of owners', async () => {
      // An owner at a version the API server does not serve is never resolved by the garbage
      // collector (it retries forever): such an object would outlive everything.
      await refused(
        sa.discovery.createNamespacedEndpointSlice({
          namespace: nsB,
          // Without blockOwnerDeletion, which the API server would check against the version.
          body: ownedSlice('victim-outrigger-ipv4', 'victim', {
            apiVersion: 'outrigger.dev/v0',
            kind: 'ExternalBackend',
            name: 'ghost',
            uid: '22222222-2222-2222-2222-222222222222',
            controller: true,
          }),
        }),
        'may create EndpointSlices only',
      );
      // Its own slice, with a second (non-controller) owner added: refused, since the extra
      // reference would keep the slice alive once its backend is gone.
      await sa.discovery.createNamespacedEndpointSlice({
        namespace: nsB,
        body: ownedSlice('own-outrigger-ipv4', 'own'),
      });
      await refused(
        sa.discovery.patchNamespacedEndpointSlice(
          {
            namespace: nsB,
            name: 'own-outrigger-ipv4',
            body: {
              metadata: {
                ownerReferences: [
                  ownerRef,
                  {
                    apiVersion: 'v1',
                    kind: 'Node',
                    name: 'n1',
                    uid: '33333333-3333-3333-3333-333333333333',
                  },
                ],
              },
            },
          },
          merge,
        ),
        'may update EndpointSlices only',
      );
      await discovery.deleteNamespacedEndpointSlice({ namespace: nsB, name: 'own-outrigger-ipv4' });
    });

    it('refuses to take over an Endpoints without the opt-in, and Services it should not make', async () => {
      const takeover: V1Endpoints = {
        metadata: {
          name: 'own',
          labels: {
            'endpoints.kubernetes.io/managed-by': 'controller.outrigger.dev',
            'endpointslice.kubernetes.io/skip-mirror': 'true',
            'app.kubernetes.io/managed-by': 'outrigger',
          },
          ownerReferences: [ownerRef as never],
        },
        subsets: hijack,
      };
      // A hand-written Endpoints of the backend's own Service, without the adopt annotation.
      await core.createNamespacedEndpoints({
        namespace: nsB,
        body: { metadata: { name: 'own' }, subsets: hijack },
      });
      const current = await core.readNamespacedEndpoints({ namespace: nsB, name: 'own' });
      await refused(
        sa.core.replaceNamespacedEndpoints({
          namespace: nsB,
          name: 'own',
          body: {
            ...takeover,
            metadata: {
              ...takeover.metadata,
              resourceVersion: current.metadata?.resourceVersion ?? '',
            },
          },
        }),
        `does not carry ${adoptEndpointsAnnotation}=true`,
      );
      // The victim's Endpoints, "adopted" for the backend: not its Service.
      const victim = await core.readNamespacedEndpoints({ namespace: nsB, name: 'victim' });
      await refused(
        sa.core.replaceNamespacedEndpoints({
          namespace: nsB,
          name: 'victim',
          body: {
            ...takeover,
            metadata: {
              ...takeover.metadata,
              name: 'victim',
              resourceVersion: victim.metadata?.resourceVersion ?? '',
            },
          },
        }),
        'not of victim',
      );
      // An owned Service that would reach beyond its backend: externalIPs (CVE-2020-8554), a
      // NodePort, a selector.
      const ownedService = (spec: NonNullable<V1Service['spec']>): V1Service => ({
        metadata: {
          name: 'own',
          labels: { 'app.kubernetes.io/managed-by': 'outrigger' },
          ownerReferences: [ownerRef as never],
        },
        spec,
      });
      for (const spec of [
        { ports: [{ port: 80 }], externalIPs: ['192.0.2.99'] },
        { ports: [{ port: 80 }], type: 'NodePort' },
        { ports: [{ port: 80 }], selector: { app: 'x' } },
      ])
        await refused(
          sa.core.createNamespacedService({ namespace: nsB, body: ownedService(spec) }),
          'may create Services only',
        );
      await sa.core.createNamespacedService({
        namespace: nsB,
        body: ownedService({ ports: [{ port: 80 }] }),
      });
    });

    it('in selector mode, leaves alone what another controller owns; the rest is the residual risk', async () => {
      // Controlled by a ConfigMap that exists, so that the garbage collector leaves it be.
      const cm = await core.createNamespacedConfigMap({
        namespace: nsSel,
        body: { metadata: { name: 'owner' } },
      });
      await core.createNamespacedEndpoints({
        namespace: nsSel,
        body: {
          metadata: {
            name: 'controlled',
            ownerReferences: [
              {
                apiVersion: 'v1',
                kind: 'ConfigMap',
                name: 'owner',
                uid: cm.metadata?.uid ?? '',
                controller: true,
              },
            ],
          },
          subsets: [],
        },
      });
      await refused(
        sa.core.patchNamespacedEndpoints(
          {
            namespace: nsSel,
            name: 'controlled',
            body: {
              metadata: {
                labels: { 'endpoints.kubernetes.io/managed-by': 'controller.outrigger.dev' },
              },
              subsets: hijack,
            },
          },
          merge,
        ),
        'may update Endpoints only',
      );
      // Without outrigger's label, even an uncontrolled one is refused...
      await refused(
        sa.core.patchNamespacedEndpoints(
          { namespace: nsSel, name: 'victim', body: { subsets: hijack } },
          merge,
        ),
        'may update Endpoints only',
      );
      // ...but selector mode takes Endpoints over (the upstream controller's, before the switch),
      // and admission cannot read the Service to tell a selectorless one: in a selector-mode
      // namespace, an uncontrolled Endpoints can be rewritten with the label (SECURITY.md).
      await sa.core.patchNamespacedEndpoints(
        {
          namespace: nsSel,
          name: 'victim',
          body: {
            metadata: {
              labels: { 'endpoints.kubernetes.io/managed-by': 'controller.outrigger.dev' },
            },
            subsets: hijack,
          },
        },
        merge,
      );
      // Outside selector mode's namespaces, the same request is refused.
      await refused(
        sa.core.patchNamespacedEndpoints(
          {
            namespace: nsB,
            name: 'victim',
            body: {
              metadata: {
                labels: { 'endpoints.kubernetes.io/managed-by': 'controller.outrigger.dev' },
              },
              subsets: hijack,
            },
          },
          merge,
        ),
        'may update Endpoints only',
      );
    });
  });

  it('lets a replica write only its own ProberReport, by a token bound to its pod', async () => {
    kubectl(cluster.kubeconfigPath, ['apply', '--server-side', '-f', proberReportCrdPath]);
    await waitFor('proberreports served', async () => {
      await objects.listNamespacedCustomObject({
        group,
        version,
        plural: proberReportPlural,
        namespace: releaseNs,
      });
      return true;
    });
    // What the chart grants replicas of a quorum (RBAC lets each write every report).
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: releaseNs,
      body: {
        metadata: { name: 'reports' },
        rules: [
          {
            apiGroups: [group],
            resources: [proberReportPlural],
            verbs: ['get', 'create', 'patch', 'update', 'delete'],
          },
        ],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: releaseNs,
      body: {
        metadata: { name: 'reports' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reports' },
        subjects: [{ kind: 'ServiceAccount', name: release, namespace: releaseNs }],
      },
    });
    const pod = await core.createNamespacedPod({
      namespace: releaseNs,
      body: {
        metadata: { name: 'replica-1' },
        spec: { serviceAccountName: release, containers: [{ name: 'c', image: 'outrigger' }] },
      },
    });
    const token = await core.createNamespacedServiceAccountToken({
      name: release,
      namespace: releaseNs,
      body: {
        spec: {
          audiences: [],
          expirationSeconds: 3600,
          boundObjectRef: {
            kind: 'Pod',
            apiVersion: 'v1',
            name: 'replica-1',
            uid: pod.metadata?.uid ?? '',
          },
        },
      },
    });
    const cl = kc.getCurrentCluster();
    if (cl === null) throw new Error('no cluster');
    const replicaKc = new KubeConfig();
    replicaKc.loadFromOptions({
      clusters: [cl],
      users: [{ name: 'replica-1', token: token.status?.token ?? '' }],
      contexts: [{ name: 'replica-1', cluster: cl.name, user: 'replica-1' }],
      currentContext: 'replica-1',
    });
    const asReplica = replicaKc.makeApiClient(CustomObjectsApi);
    const report = (name: string) => ({
      apiVersion,
      kind: 'ProberReport',
      metadata: { name },
      spec: {
        renewTime: new Date().toISOString(),
        leaseDurationSeconds: 30,
        backends: [{ name: 'team/db', unhealthy: ['192.0.2.1'] }],
      },
    });
    const create = (o: CustomObjectsApi, name: string, namespace = releaseNs) =>
      o.createNamespacedCustomObject({
        group,
        version,
        plural: proberReportPlural,
        namespace,
        body: report(name),
      });
    await create(asReplica, 'replica-1');
    const forged = await apiError(create(asReplica, 'replica-2'));
    expect(forged.message).toContain(
      'a replica may write only its own ProberReport (replica-1), not replica-2',
    );
    const saKc = new KubeConfig();
    saKc.loadFromFile(saKubeconfig);
    const unbound = await apiError(create(saKc.makeApiClient(CustomObjectsApi), 'replica-3'));
    expect(unbound.message).toContain('this token names no pod');
    // Another replica's report, already there, cannot be rewritten or removed either.
    await create(objects, 'replica-2');
    const rewrite = await apiError(
      asReplica.patchNamespacedCustomObject(
        {
          group,
          version,
          plural: proberReportPlural,
          namespace: releaseNs,
          name: 'replica-2',
          body: { spec: { backends: [] } },
        },
        merge,
      ),
    );
    expect(rewrite.message).toContain('not replica-2');
    const removal = await apiError(
      asReplica.deleteNamespacedCustomObject({
        group,
        version,
        plural: proberReportPlural,
        namespace: releaseNs,
        name: 'replica-2',
      }),
    );
    expect(removal.message).toContain('not replica-2');
  });
});
