// The main job, `npm run demo`: a local control plane with the garbage collector, the CRD, the
// operator, and the two seed setups (etcd-k8s, zl-lb) as ExternalBackends whose backends are real
// servers in a network namespace made here. One backend is stopped and leaves the ready set; then a
// short selector-mode act. Everything it starts is stopped on exit. Packets go to loopback and to
// that namespace only; without root (no namespace) the backends use documentation addresses and are
// not health-checked.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import { dump, loadAll } from 'js-yaml';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { createBackendNetwork, netnsUnavailable, type BackendNetwork } from './harness/netns.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { createRunningPod, waitFor, writePodStatus } from './helpers.ts';
import { admissionPolicy } from '../src/policy/admission.ts';

const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s: string): void => {
  process.stdout.write(`\n${bold(`==> ${s}`)}\n`);
};

function kubectl(cluster: Cluster, args: string[], input?: string): void {
  process.stdout.write(`$ kubectl ${args.join(' ')}\n`);
  const r = spawnSync(cluster.kubectl, [`--kubeconfig=${cluster.kubeconfigPath}`, ...args], {
    encoding: 'utf8',
    ...(input !== undefined ? { input } : {}),
  });
  process.stdout.write(r.stdout + r.stderr);
}

/** A field of an ExternalBackend, read quietly with kubectl's jsonpath. */
function field(cluster: Cluster, ns: string, name: string, jsonpath: string): string {
  return spawnSync(
    cluster.kubectl,
    [
      `--kubeconfig=${cluster.kubeconfigPath}`,
      '-n',
      ns,
      'get',
      'xb',
      name,
      '-o',
      `jsonpath=${jsonpath}`,
    ],
    { encoding: 'utf8' },
  ).stdout;
}

type Doc = Record<string, unknown> & { kind?: string; spec?: Record<string, unknown> };

/**
 * An example from examples/, with its documentation addresses swapped for the namespace's (in
 * order) and faster checks so the demo does not wait 30 s; without a namespace, the health check is
 * dropped so nothing is probed.
 */
function example(path: string, ips: readonly string[] | undefined): string {
  const docs = loadAll(
    readFileSync(new URL(`../examples/${path}`, import.meta.url), 'utf8'),
  ) as Doc[];
  for (const d of docs) {
    if (d.kind !== 'ExternalBackend' || d.spec === undefined) continue;
    const spec = d.spec;
    if (ips === undefined) {
      delete spec.healthCheck;
      continue;
    }
    spec.addresses = (spec.addresses as { ip: string }[]).map((a, i) => ({
      ...a,
      ip: ips[i] ?? a.ip,
    }));
    spec.healthCheck = {
      ...(spec.healthCheck as object),
      intervalSeconds: 2,
      timeoutSeconds: 1,
      healthyThreshold: 1,
      unhealthyThreshold: 2,
    };
  }
  return docs.map((d) => dump(d)).join('---\n');
}

async function main(): Promise<void> {
  step('Starting etcd, kube-apiserver and the garbage collector on loopback');
  const cluster = await startCluster({ controllers: ['garbage-collector-controller'] });
  let op: OperatorProcess | undefined;
  let net: BackendNetwork | undefined;
  const stop = async (): Promise<void> => {
    // The operator first: no probe may outlive the namespace its backends live in.
    await op?.stop();
    await net?.remove();
    await cluster.stop();
  };
  process.once('SIGINT', () => {
    stop().then(
      () => process.exit(130),
      () => process.exit(130),
    );
  });
  try {
    process.stdout.write(`API server ready in ${(cluster.startupMs / 1000).toFixed(1)} s\n`);
    kubectl(cluster, ['version']);

    step('Installing the CRDs and starting outrigger (leader election on a Lease)');
    const logPath = join(cluster.dir ?? '/tmp', 'outrigger.log');
    op = await startOperator(
      cluster.kubeconfigPath,
      ['--selector-mode=demo', '--leader-elect', '--leader-election-namespace=default'],
      logPath,
      // The demo grants addresses itself, below, as a platform team would.
      { allowAllAddresses: false },
    );
    process.stdout.write(`outrigger is ready (pid ${op.pid}); its JSON logs:\n`);
    process.stdout.write(
      readFileSync(logPath, 'utf8')
        .trim()
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n') + '\n',
    );
    const kc = cluster.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);

    const why = netnsUnavailable();
    let ips: { etcd: string[]; web: string[] } | undefined;
    let etcdServers: { stop(): Promise<void> }[] = [];
    if (why === undefined) {
      step(
        'Backends outside the cluster: a network namespace with 3 etcd-like TCP servers and 2 web servers',
      );
      net = createBackendNetwork(cluster.dir ?? '/tmp', 5);
      const v4 = net.ipv4;
      ips = { etcd: v4.slice(0, 3), web: v4.slice(3, 5) };
      etcdServers = await Promise.all(
        ips.etcd.map(
          (ip) => net?.serve(ip, 2379, 'tcp') ?? Promise.reject(new Error('no network')),
        ),
      );
      for (const ip of ips.web) await net.serve(ip, 80, 'http');
      process.stdout.write(
        `namespace ${net.name}: etcd on ${ips.etcd.join(', ')}:2379, web on ${ips.web.join(', ')}:80\n`,
      );
    } else {
      process.stdout.write(
        `\n(no network namespace: ${why}; the backends use documentation addresses and are not health-checked)\n`,
      );
    }

    step(
      'The platform team grants addresses: kube-system its etcd hosts on 2379, wetwin its web servers on 80',
    );
    const grant = (ns: string, addrs: readonly string[] | undefined, fallback: string) =>
      addrs === undefined ? [fallback] : addrs.map((ip) => `${ip}/32`);
    const policy = {
      apiVersion: 'outrigger.dev/v1alpha1',
      kind: 'ExternalBackendPolicy',
      metadata: { name: 'cluster' },
      spec: {
        rules: [
          {
            name: 'etcd',
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
            cidrs: grant('kube-system', ips?.etcd, '192.0.2.0/24'),
            ports: [{ port: 2379 }],
          },
          {
            name: 'legacy-web',
            // A careless grant (a whole /8) to show that the deny list still holds behind it.
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'wetwin' } },
            cidrs: ['10.0.0.0/8', '198.51.100.0/24'],
            ports: [{ port: 80 }],
          },
        ],
      },
    };
    process.stdout.write(dump(policy));
    kubectl(cluster, ['apply', '--server-side', '-f', '-'], JSON.stringify(policy));
    const { policy: vap, binding } = admissionPolicy('outrigger-addresses');
    kubectl(cluster, ['apply', '-f', '-'], [vap, binding].map((d) => dump(d)).join('---\n'));

    step('Applying examples/etcd-k8s and examples/zl-lb as ExternalBackends');
    kubectl(cluster, ['apply', '-f', '-'], example('etcd-k8s/externalbackend.yaml', ips?.etcd));
    kubectl(cluster, ['apply', '-f', '-'], example('zl-lb/externalbackend.yaml', ips?.web));
    const sliceReady = async (ns: string, name: string, n: number) =>
      waitFor(
        `${String(n)} ready endpoints in ${ns}/${name}`,
        async () => {
          const s = await discovery.readNamespacedEndpointSlice({ namespace: ns, name });
          return (s.endpoints ?? []).filter((e) => e.conditions?.ready === true).length === n
            ? s
            : undefined;
        },
        30_000,
      );
    await sliceReady('kube-system', 'etcd-k8s-outrigger-ipv4', 3);
    await sliceReady('wetwin', 'zl-lb-outrigger-ipv4', 2);
    kubectl(cluster, ['get', 'xb', '-A']);
    kubectl(cluster, ['-n', 'kube-system', 'get', 'service,endpoints', 'etcd-k8s']);
    kubectl(cluster, [
      '-n',
      'kube-system',
      'get',
      'endpointslice',
      'etcd-k8s-outrigger-ipv4',
      '-o',
      'yaml',
    ]);

    if (ips !== undefined) {
      const dead = ips.etcd[1] ?? '';
      step(`Stopping the etcd server on ${dead}`);
      const t0 = Date.now();
      await etcdServers[1]?.stop();
      await sliceReady('kube-system', 'etcd-k8s-outrigger-ipv4', 2);
      process.stdout.write(
        `${dead} left the EndpointSlice's ready set ${String(Date.now() - t0)} ms later (checks every 2 s, 2 failures)\n`,
      );
      await waitFor('status to follow', () =>
        Promise.resolve(
          field(cluster, 'kube-system', 'etcd-k8s', '{.status.addressSummary}') === '2/3'
            ? true
            : undefined,
        ),
      );
      kubectl(cluster, ['-n', 'kube-system', 'get', 'xb', 'etcd-k8s']);
      kubectl(cluster, [
        '-n',
        'kube-system',
        'get',
        'endpointslice',
        'etcd-k8s-outrigger-ipv4',
        '-o',
        'custom-columns=ADDRESS:.endpoints[*].addresses[0],READY:.endpoints[*].conditions.ready',
      ]);
      kubectl(cluster, [
        '-n',
        'kube-system',
        'get',
        'xb',
        'etcd-k8s',
        '-o',
        'jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\\n"}{end}',
      ]);
      kubectl(cluster, [
        '-n',
        'kube-system',
        'get',
        'events',
        '--field-selector',
        'involvedObject.kind=ExternalBackend',
        '-o',
        'custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message',
      ]);

      step('outrigger metrics for the backends');
      const text = await (await fetch(op.metricsUrl)).text();
      process.stdout.write(
        text
          .split('\n')
          .filter((l) =>
            /^(outrigger_backend_addresses|outrigger_probe_total|outrigger_probe_duration_seconds_count|outrigger_endpoint_writes_total|leader_election_master_status)/.test(
              l,
            ),
          )
          .map((l) => `  ${l}`)
          .join('\n') + '\n',
      );
    }

    step('A namespace user tries to steer traffic through an ExternalBackend');
    const web = (name: string, ip: string): string =>
      dump({
        apiVersion: 'outrigger.dev/v1alpha1',
        kind: 'ExternalBackend',
        metadata: { name, namespace: 'wetwin' },
        spec: { ports: [{ name: 'http', port: 80 }], addresses: [{ ip }] },
      });
    process.stdout.write(
      'An address outside what the platform team granted wetwin: refused at admission.\n',
    );
    kubectl(cluster, ['apply', '-f', '-'], web('sneaky', '203.0.113.9'));
    process.stdout.write(
      "The API server's ClusterIP, inside wetwin's careless 10.0.0.0/8 grant: admitted, never published.\n",
    );
    kubectl(cluster, ['apply', '-f', '-'], web('steer', '10.96.0.1'));
    await waitFor('the steer backend to be judged', () =>
      Promise.resolve(
        field(cluster, 'wetwin', 'steer', '{.status.addresses[0].state}') === 'Denied'
          ? true
          : undefined,
      ),
    );
    kubectl(cluster, [
      '-n',
      'wetwin',
      'get',
      'xb',
      'steer',
      '-o',
      'jsonpath={.status.addresses[0]}{"\\n"}',
    ]);

    step('Selector mode: a Service with a selector and two pods, one ready and one not');
    const ns = 'demo';
    await core.createNamespace({ body: { metadata: { name: ns } } });
    for (const [name, ip, ready] of [
      ['web-1', '10.244.0.10', true],
      ['web-2', '10.244.0.11', false],
    ] as const) {
      await createRunningPod(core, ns, name, { ip, ready, ports: [{ name: 'http', port: 8080 }] });
    }
    await core.createNamespacedService({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
      },
    });
    await waitFor('Endpoints/web', async () => {
      const ep = await core.readNamespacedEndpoints({ name: 'web', namespace: ns });
      return ep.subsets?.length ? ep : undefined;
    });
    kubectl(cluster, ['-n', ns, 'get', 'pods,services,endpoints', '-o', 'wide']);
    kubectl(cluster, ['-n', ns, 'get', 'endpoints', 'web', '-o', 'yaml']);

    step('web-2 becomes ready: outrigger moves it to the ready addresses');
    await writePodStatus(core, ns, 'web-2', '10.244.0.11', true);
    await waitFor('web-2 ready in Endpoints/web', async () => {
      const ep = await core.readNamespacedEndpoints({ name: 'web', namespace: ns });
      return ep.subsets?.[0]?.addresses?.length === 2 ? ep : undefined;
    });
    kubectl(cluster, ['-n', ns, 'get', 'endpoints', 'web']);

    step("outrigger's metrics");
    const text = await (await fetch(op.metricsUrl)).text();
    process.stdout.write(
      text
        .split('\n')
        .filter((l) =>
          /^(controller_runtime_reconcile_total|outrigger_endpoint_writes_total|workqueue_adds_total)/.test(
            l,
          ),
        )
        .map((l) => `  ${l}`)
        .join('\n') + '\n',
    );
    const code = await op.stop();
    op = undefined;
    process.stdout.write(`outrigger exited with status ${String(code)} after SIGTERM\n`);
  } finally {
    step('Stopping outrigger, the backends and the control plane');
    await stop();
    process.stdout.write(
      'Done: every process stopped, the network namespace and the temporary directory removed.\n',
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
