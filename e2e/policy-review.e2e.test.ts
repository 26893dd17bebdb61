// A hostile review of the address policy (grants that add up, the freeze, the compiled object the
// admission policy reads), against a real API server: the informer's failure record after a watch
// that recovered, the compiled object written over a hand-made one, the limits of the compiled
// object and of the admission policy's CEL.
//
// Network discipline: no address here is ever probed or routed to (no backend has a health check
// and no data plane runs); they are only written into objects.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { join } from 'node:path';
import { readPolicies, planEffective } from '../src/controllers/policy/controller.ts';
import { group, plural, version } from '../src/api/externalbackend.ts';
import type { ExternalBackendStatus } from '../src/api/externalbackendstatus.ts';
import { Informer } from '../src/runtime/informer.ts';
import { policyWriter } from '../src/controllers/policy/writer.ts';
import { customObjectClient } from '../src/runtime/listers.ts';
import { loadConnection } from '../src/runtime/kubeconfig.ts';
import { restClient } from '../src/runtime/rest.ts';
import { transformPolicy, type CachedPolicy } from '../src/api/resources.ts';
import { createLogger } from '../src/runtime/log.ts';
import { createMetrics } from '../src/runtime/metrics.ts';
import { admissionPolicy } from '../src/policy/admission.ts';
import { compileEffective, loadPolicies, type GrantObject } from '../src/policy/evaluate.ts';
import { effectivePolicyName, policyKind, policyPlural } from '../src/api/policy.ts';
import { allOf, isWatch, startApiProxy } from './harness/apiproxy.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { installCrd, kubectl } from './harness/crd.ts';
import { startOperator } from './harness/operator.ts';
import {
  apiError,
  createExternalBackend,
  createRunningPod,
  createTestNamespace,
  waitFor,
} from './helpers.ts';

let cluster: Cluster;
let kc: KubeConfig;
let objects: CustomObjectsApi;

beforeAll(async () => {
  cluster = await startCluster();
  kc = cluster.kubeConfig();
  await installCrd(cluster.kubeconfigPath, { allowAllAddresses: false });
  objects = kc.makeApiClient(CustomObjectsApi);
}, 180_000);

afterAll(async () => {
  await cluster.stop();
});

const grant = (name: string, rules: unknown[]) => ({
  apiVersion: `${group}/${version}`,
  kind: policyKind,
  metadata: { name },
  spec: { rules },
});

async function getEffective(): Promise<{ name: string }[]> {
  const o = (await objects.getClusterCustomObject({
    group,
    version,
    plural: policyPlural,
    name: effectivePolicyName,
  })) as { spec?: { rules?: { name: string }[] } };
  return o.spec?.rules ?? [];
}

async function deleteEffective(): Promise<void> {
  await objects
    .deleteClusterCustomObject({ group, version, plural: policyPlural, name: effectivePolicyName })
    .catch(() => undefined);
}

describe('address policy review', () => {
  it('a watch that failed once and recovered does not freeze the grants 30 s later', async () => {
    kubectl(
      cluster.kubeconfigPath,
      ['apply', '-f', '-'],
      JSON.stringify(
        grant('watch-blip', [{ name: 'r', namespaceSelector: {}, cidrs: ['10.251.0.0/24'] }]),
      ),
    );
    const proxy = await startApiProxy(cluster);
    const proxied = restClient(await loadConnection(proxy.kubeconfigPath));
    const informer = new Informer<CachedPolicy>({
      name: 'externalbackendpolicies',
      client: customObjectClient(proxied, group, version, policyPlural),
      transform: transformPolicy,
      log: createLogger('error'),
    });
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    const watches = () => proxy.requests.filter(isWatch(policyPlural));
    try {
      expect(await informer.waitForSync(stop.signal)).toBe(true);
      await waitFor('a watch', () => Promise.resolve(watches().length > 0 ? true : undefined));
      // One blip: the open watch is cut and the next attempt gets a 500 (an API server restarting).
      const lift = proxy.fault(allOf(isWatch(policyPlural)), { kind: 'status', code: 500 });
      const before = watches().length;
      proxy.resetConnections();
      await waitFor('a refused watch', () =>
        Promise.resolve(
          watches()
            .slice(before)
            .some((r) => r.fault === 'status')
            ? true
            : undefined,
        ),
      );
      lift();
      // The informer watches again and stays connected: it follows every change from here on.
      await waitFor('a watch that stays open', () =>
        Promise.resolve(
          watches()
            .slice(before)
            .some((r) => r.fault === undefined && r.endedAt === undefined)
            ? true
            : undefined,
        ),
      );
      await new Promise((r) => setTimeout(r, 1500));
      const failure = informer.failure();
      // 31 s later, with that watch still open (it lives 5-10 minutes), the grants are as readable
      // as they were: nothing is stale, so nothing must freeze.
      const later = readPolicies(informer, Date.now() + 31_000);
      console.log(
        `after a recovered watch: failure record ${failure === undefined ? 'cleared' : `kept (${failure.message}, since ${String(Date.now() - failure.since)} ms)`}; grants 31 s later: ${later.state}${later.state === 'missing' ? ` (${later.message})` : ''}`,
      );
      expect(later.state).toBe('ok');
    } finally {
      stop.abort();
      await running;
      await proxy.close();
      await objects
        .deleteClusterCustomObject({ group, version, plural: policyPlural, name: 'watch-blip' })
        .catch(() => undefined);
    }
  }, 60_000);

  it('the compiled object says exactly the grants, even over a hand-made or restored one', async () => {
    // A restore (Velero), a GitOps export or `kubectl apply` of an old copy puts a rule in the
    // compiled object that no grant holds any more, under another field manager.
    kubectl(
      cluster.kubeconfigPath,
      ['create', '-f', '-'],
      JSON.stringify(
        grant(effectivePolicyName, [
          { name: 'old-team.revoked', namespaceSelector: {}, cidrs: ['10.252.0.0/16'] },
        ]),
      ),
    );
    try {
      const grants: GrantObject[] = [
        grant('team-a', [{ name: 'db', namespaceSelector: {}, cidrs: ['10.251.1.0/24'] }]),
      ];
      const policy = loadPolicies(grants);
      const writer = policyWriter(
        restClient(await loadConnection(cluster.kubeconfigPath)),
        createMetrics(),
      );
      let applies = 0;
      for (let i = 0; i < 3; i++) {
        const current = (await objects.getClusterCustomObject({
          group,
          version,
          plural: policyPlural,
          name: effectivePolicyName,
        })) as CachedPolicy;
        const plan = planEffective(policy, current);
        if (plan.apply === undefined) break;
        applies++;
        await writer.applyEffective(
          plan.apply,
          { 'app.kubernetes.io/managed-by': 'outrigger' },
          plan.replace === true,
        );
      }
      const names = (await getEffective()).map((r) => r.name);
      console.log(
        `compiled object after ${String(applies)} applies over a hand-made one: ${names.join(', ')}`,
      );
      // Admission reads this object: a revoked rule left in it admits what no grant allows.
      expect(names).toEqual(['team-a.db']);
      expect(applies).toBe(1);
    } finally {
      await deleteEffective();
    }
  }, 60_000);

  it('more grants than the compiled object can hold: the compile is refused', async () => {
    // 17 teams of 64 rules each: every object is valid on its own (at most 64 rules).
    const grants: GrantObject[] = Array.from({ length: 17 }, (_, t) =>
      grant(
        `team-${String(t)}`,
        Array.from({ length: 64 }, (_, r) => ({
          name: `r${String(r)}`,
          namespaceSelector: { matchLabels: { team: `t${String(t)}` } },
          cidrs: [`10.${String(100 + t)}.${String(r)}.0/24`],
        })),
      ),
    );
    const compiled = compileEffective(loadPolicies(grants));
    expect(compiled?.rules.length).toBe(17 * 64);
    const writer = policyWriter(
      restClient(await loadConnection(cluster.kubeconfigPath)),
      createMetrics(),
    );
    const err = await apiError(
      writer.applyEffective(compiled ?? { rules: [] }, {
        'app.kubernetes.io/managed-by': 'outrigger',
      }),
    );
    console.log(`compiling 1088 rules: ${String(err.code)} ${err.message.slice(0, 200)}`);
    expect(err.code).toBe(422);
    await deleteEffective();
  }, 60_000);

  // Known, not fixed: admission's cost grows as addresses × the CIDRs of the rules that select the
  // namespace, and past the API server's per-expression limit the policy fails closed (see the
  // review report). `failing` until the CEL is cheaper; then make it a plain `it`.
  it.failing(
    "the admission policy's CEL cost with many rules: a granted backend is admitted",
    async () => {
      const { policy, binding } = admissionPolicy('outrigger-addresses');
      kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], JSON.stringify(policy));
      kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], JSON.stringify(binding));
      const ns = await createTestNamespace(kc, 'celcost');
      // 16 teams × 64 rules (the most the compiled object holds), 32 CIDRs each, every rule for every
      // namespace (a careless `{}`); the tenant's addresses are granted by the last rule only.
      const rules = Array.from({ length: 1024 }, (_, i) => ({
        name: `t${String(i >> 6)}.r${String(i & 63)}`,
        namespaceSelector: {},
        cidrs: Array.from(
          { length: 32 },
          (_, c) =>
            `10.${String(64 + (i >> 6))}.${String(((i & 63) << 2) | (c >> 3))}.${String((c & 7) << 5)}/27`,
        ),
      }));
      const last = '10.200.0.0/16';
      const lastRule = rules[1023];
      if (lastRule !== undefined) rules[1023] = { ...lastRule, cidrs: [last] };
      const results: string[] = [];
      try {
        for (const [what, n, addresses] of [
          ['a careless grant: 1024 rules for every namespace', 1024, 50],
          ['64 rules for every namespace', 64, 500],
          ['64 rules for every namespace', 64, 5000],
          ['one rule of 32 CIDRs, the last one granting', 1, 5000],
          ['one rule of 32 CIDRs, the last one granting', 1, 1000],
          ['8 rules for every namespace', 8, 1000],
        ] as const) {
          // With one rule, that rule has 31 CIDRs that do not match before the one that does.
          const subset =
            n === 1 && lastRule !== undefined
              ? [{ ...lastRule, cidrs: [...lastRule.cidrs.slice(0, 31), last] }]
              : rules.slice(1024 - n);
          kubectl(
            cluster.kubeconfigPath,
            ['apply', '--server-side', '--force-conflicts', '--field-manager=outrigger', '-f', '-'],
            JSON.stringify(grant(effectivePolicyName, subset)),
          );
          await waitFor('the compiled object', async () =>
            (await getEffective()).length === n ? true : undefined,
          );
          // The previous param also refuses the probe below: give admission's informer a moment.
          await new Promise((r) => setTimeout(r, 2000));
          const name = `b-${String(n)}-${String(addresses)}`;
          const spec = {
            ports: [{ name: 'p', port: 5432 }],
            addresses: Array.from({ length: addresses }, (_, i) => ({
              ip: `10.200.${String(i >> 8)}.${String(i & 255)}`,
            })),
          };
          // The admission policy takes a moment to see a new param object (without one it lets
          // everything in): wait until an address no rule grants is refused.
          let probe = 0;
          await waitFor(
            `${what}: the param object read by admission`,
            async () => {
              const p = `probe-${String(n)}-${String(addresses)}-${String(probe++)}`;
              const created = createExternalBackend(kc, ns, p, {
                ports: [{ name: 'p', port: 5432 }],
                addresses: [{ ip: '10.199.0.1' }],
              });
              const refused = await created.then(
                () => undefined,
                () => apiError(created),
              );
              return refused?.message.includes(`${policyKind} has a rule`) === true
                ? true
                : undefined;
            },
            20_000,
            500,
          );
          const created = createExternalBackend(kc, ns, name, spec);
          const outcome = await created.then(
            () => 'admitted',
            async () => `refused: ${(await apiError(created)).message}`,
          );
          results.push(
            `${what}, ${String(addresses)} addresses: ${outcome.startsWith('refused') ? `refused (${outcome.slice(-40)})` : outcome}`,
          );
        }
        console.log(`admission CEL cost:\n${results.join('\n')}`);
        for (const r of results) expect(r).toMatch(/admitted$/);
      } finally {
        await deleteEffective();
      }
    },
    180_000,
  );

  it('while frozen, nothing new is published: not a published address on a new port, not a pod address', async () => {
    // The reconciler alone (no admission policy: admission disabled, or outrigger-effective gone,
    // which it lets everything through for). No address here is probed: no health check.
    kubectl(cluster.kubeconfigPath, [
      'delete',
      'validatingadmissionpolicybinding',
      'outrigger-addresses',
      '--ignore-not-found',
    ]);
    const core = kc.makeApiClient(CoreV1Api);
    const ns = await createTestNamespace(kc, 'frozen');
    kubectl(
      cluster.kubeconfigPath,
      ['apply', '-f', '-'],
      JSON.stringify(
        grant('frozen-db', [
          {
            name: 'db',
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
            cidrs: ['10.253.0.0/24'],
            ports: [{ port: 5432 }],
          },
        ]),
      ),
    );
    const operator = await startOperator(
      cluster.kubeconfigPath,
      [],
      join(cluster.dir ?? '/tmp', 'outrigger-policy-review.log'),
      { installCrd: false },
    );
    const ips = async (): Promise<{ ips: string[]; ports: number[] }> => {
      const slices = await kc.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({
        namespace: ns,
        labelSelector: 'kubernetes.io/service-name=db',
      });
      return {
        ips: slices.items.flatMap((x) => (x.endpoints ?? []).flatMap((e) => e.addresses)).sort(),
        ports: [
          ...new Set(slices.items.flatMap((x) => (x.ports ?? []).map((p) => p.port ?? 0))),
        ].sort(),
      };
    };
    const status = async (): Promise<ExternalBackendStatus | undefined> =>
      (
        (await objects.getNamespacedCustomObject({
          group,
          version,
          namespace: ns,
          plural,
          name: 'db',
        })) as {
          status?: ExternalBackendStatus;
        }
      ).status;
    const patch = (ops: unknown[]) =>
      objects.patchNamespacedCustomObject(
        { group, version, namespace: ns, plural, name: 'db', body: ops },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
    try {
      await createRunningPod(core, ns, 'web-0', {
        labels: { app: 'db' },
        ip: '10.254.0.7',
        ready: true,
        ports: [{ name: 'pg', port: 5432 }],
      });
      await createExternalBackend(kc, ns, 'db', {
        ports: [{ name: 'pg', port: 5432 }],
        addresses: [{ ip: '10.253.0.5' }],
        podSelector: { matchLabels: { app: 'db' } },
      });
      await waitFor('published', async () =>
        (await ips()).ips.join() === '10.253.0.5,10.254.0.7' ? true : undefined,
      );
      // The grants go (an uninstall, a prune): frozen.
      await objects.deleteClusterCustomObject({
        group,
        version,
        plural: policyPlural,
        name: 'frozen-db',
      });
      await waitFor('frozen', async () =>
        (await status())?.conditions?.some(
          (c) => c.type === 'AddressPolicyFrozen' && c.status === 'True',
        )
          ? true
          : undefined,
      );
      // A port the grant never allowed, added while frozen.
      await patch([{ op: 'add', path: '/spec/ports/-', value: { name: 'ssh', port: 22 } }]);
      // The pod's address written as an external address, then the pod gone.
      await patch([{ op: 'add', path: '/spec/addresses/-', value: { ip: '10.254.0.7' } }]);
      await core.deleteNamespacedPod({ namespace: ns, name: 'web-0', gracePeriodSeconds: 0 });
      const after = await waitFor('the backend reconciled', async () => {
        const st = await status();
        const seen = st?.addresses?.find((a) => a.ip === '10.254.0.7');
        return seen !== undefined && st?.observedGeneration === 3 ? st : undefined;
      });
      await new Promise((r) => setTimeout(r, 2000));
      const published = await ips();
      console.log(
        `frozen, after adding port 22 and the pod's address (pod deleted): slices ${published.ips.join(', ')} on ports ${published.ports.join(', ')}; status ${JSON.stringify(after.addresses?.map((a) => [a.ip, a.state]))}`,
      );
      // Neither 10.253.0.5 on port 22 nor the departed pod's address as an external one.
      expect(published.ips.includes('10.254.0.7')).toBe(false);
      expect(published.ports.includes(22) ? published.ips : []).toEqual([]);
    } finally {
      await operator.stop();
    }
  }, 180_000);
});
