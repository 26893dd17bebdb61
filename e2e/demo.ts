// The main job, `npm run demo [-- --quick]`: a local control plane, a node (a network namespace
// with kube-proxy, CoreDNS and Traefik as the Ingress controller), outrigger, and the two seed
// setups with real backends: three real etcd members that etcd's own client reaches through
// etcd-k8s.kube-system.svc.cluster.local, and two web servers behind the seed's Ingress, next to
// the same servers registered by hand. A member and a server die: traffic moves away from them
// within the detection bound with outrigger, and never by hand. Then a namespace user tries to
// steer traffic, and (without --quick) a selector-mode act. Everything it starts is stopped on
// exit. Packets go to loopback and the namespaces made here only; without root (no namespaces)
// the backends use documentation addresses and are not health-checked, and there is no data plane.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CoreV1Api, DiscoveryV1Api, NetworkingV1Api } from '@kubernetes/client-node';
import { dump, loadAll } from 'js-yaml';
import { ensureDataPlaneBinary } from './harness/binaries.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { dataPlaneUnavailable, startNode, type Node } from './harness/dataplane.ts';
import { startEtcdMembers, type EtcdMembers } from './harness/etcdmembers.ts';
import {
  failures,
  get,
  requestLoop,
  seedIngress,
  startIngressController,
  type Reply,
} from './harness/ingress.ts';
import { createBackendNetwork, type BackendNetwork, type Server } from './harness/netns.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { createRunningPod, waitFor, writePodStatus } from './helpers.ts';
import { admissionPolicy } from '../src/policy/admission.ts';

const quick = process.argv.includes('--quick');
const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (s: string): void => {
  process.stdout.write(`${s}\n`);
};
const step = (s: string): void => {
  process.stdout.write(`\n${bold(`==> ${s}`)}\n`);
};

function kubectl(cluster: Cluster, args: string[], input?: string): void {
  say(`$ kubectl ${args.join(' ')}`);
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

type Doc = Record<string, unknown> & {
  kind?: string;
  metadata?: Record<string, unknown>;
  spec?: Record<string, unknown>;
  subsets?: { addresses?: { ip: string }[] }[];
};

/** The checks the demo uses instead of the examples' defaults, so that it does not wait 30 s. */
const check = { intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 2, unhealthyThreshold: 2 };
const boundMs = (check.intervalSeconds * check.unhealthyThreshold + check.timeoutSeconds) * 1000;

/**
 * An example from examples/, moved to `namespace`, with its documentation addresses swapped for
 * the backends' (in order) and faster checks; without addresses, the health check is dropped so
 * nothing is probed. The nginx Ingress is left out (the Traefik translation replaces it).
 */
function example(path: string, namespace: string, ips: readonly string[] | undefined): string {
  const docs = (
    loadAll(readFileSync(new URL(`../examples/${path}`, import.meta.url), 'utf8')) as Doc[]
  ).filter((d) => d.kind !== 'Ingress' && (d.kind !== 'Namespace' || namespace !== 'kube-system'));
  for (const d of docs) {
    if (d.kind === 'Namespace') d.metadata = { name: namespace };
    else d.metadata = { ...d.metadata, namespace };
    const swap = (addrs: { ip: string }[]) => {
      // A documentation address left in place would be probed over the host's default route.
      if (ips !== undefined && addrs.length > ips.length)
        throw new Error(`${path} lists more addresses than the demo has servers`);
      return addrs.map((a, i) => ({ ...a, ip: ips?.[i] ?? a.ip }));
    };
    if (d.kind === 'Endpoints' && d.subsets !== undefined)
      d.subsets = d.subsets.map((s) => ({ ...s, addresses: swap(s.addresses ?? []) }));
    if (d.kind !== 'ExternalBackend' || d.spec === undefined) continue;
    const spec = d.spec;
    if (ips === undefined) {
      delete spec.healthCheck;
      continue;
    }
    spec.addresses = swap(spec.addresses as { ip: string }[]);
    spec.healthCheck = { ...(spec.healthCheck as object), ...check };
  }
  return docs.map((d) => dump(d)).join('---\n');
}

/** Failure shares per `bucketMs` after `from`, as one line of percentages. */
function timeline(replies: readonly Reply[], from: number, bucketMs: number, buckets: number) {
  return Array.from({ length: buckets }, (_, i) => {
    const inBucket = replies.filter(
      (r) => r.at >= from + i * bucketMs && r.at < from + (i + 1) * bucketMs,
    );
    const f = failures(inBucket, from + i * bucketMs);
    return `${String(Math.round(f.share * 100)).padStart(4)}%`;
  }).join('');
}

interface DataPath {
  readonly node: Node;
  readonly traefik: string;
  readonly net: BackendNetwork;
  readonly etcd: EtcdMembers;
  readonly web: Server[];
  readonly ips: { readonly etcd: string[]; readonly web: string[]; readonly byHand: string[] };
}

async function main(): Promise<void> {
  step('Starting etcd, kube-apiserver, the garbage collector and the EndpointSlice mirroring');
  // The mirroring controller is what makes hand-written Endpoints visible to kube-proxy and
  // Ingress controllers in any cluster: the by-hand contrast below needs it to be fair.
  const cluster = await startCluster({
    controllers: ['garbage-collector-controller', 'endpointslice-mirroring-controller'],
  });
  let op: OperatorProcess | undefined;
  let dp: DataPath | undefined;
  let node: Node | undefined;
  let net: BackendNetwork | undefined;
  let etcd: EtcdMembers | undefined;
  const stop = async (): Promise<void> => {
    // The operator first: no probe may outlive the namespaces its backends live in.
    await op?.stop();
    await etcd?.stop();
    await net?.remove();
    await node?.stop();
    await cluster.stop();
  };
  process.once('SIGINT', () => {
    stop().then(
      () => process.exit(130),
      () => process.exit(130),
    );
  });
  try {
    say(`API server ready in ${(cluster.startupMs / 1000).toFixed(1)} s`);
    const kc = cluster.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const dir = cluster.dir ?? '/tmp';

    const why = dataPlaneUnavailable();
    if (why === undefined) {
      step('A node: a network namespace with kube-proxy (nftables), CoreDNS and Traefik');
      node = await startNode(cluster, { dir: join(dir, 'node') });
      const traefik = await startIngressController(cluster, node, dir);
      say(`node-a is ${node.netns} (${node.ip}); programs run there resolve cluster.local names`);
      say(`and reach ClusterIPs through kube-proxy's rules; Traefik listens on ${traefik}`);

      step('Outside the cluster: three real etcd members and four web servers');
      net = createBackendNetwork(dir, 7, { fromNodes: true });
      const v4 = net.ipv4;
      const ips = { etcd: v4.slice(0, 3), web: v4.slice(3, 5), byHand: v4.slice(5, 7) };
      etcd = await startEtcdMembers(net, dir, ['etc-master1', 'etc-master2', 'etc-master3']);
      const web: Server[] = [];
      for (const ip of [...ips.web, ...ips.byHand]) web.push(await net.serve(ip, 80, 'http'));
      say(`etcd members ${ips.etcd.join(', ')} (:2379) form one cluster (namespace ${net.name})`);
      say(
        `web servers ${ips.web.join(', ')} for outrigger, ${ips.byHand.join(', ')} by hand (:80)`,
      );
      dp = { node, traefik, net, etcd, web, ips };
    } else {
      say(
        `\n(no data plane: ${why}; the backends use documentation addresses and are not health-checked)`,
      );
    }

    step('Installing the CRDs and starting outrigger (leader election on a Lease)');
    const logPath = join(dir, 'outrigger.log');
    op = await startOperator(
      cluster.kubeconfigPath,
      ['--selector-mode=demo', '--leader-elect', '--leader-election-namespace=default'],
      logPath,
      // The demo grants addresses itself, below, as a platform team would.
      { allowAllAddresses: false },
    );
    say(`outrigger is ready (pid ${String(op.pid)}); its first log line:`);
    say(`  ${readFileSync(logPath, 'utf8').split('\n')[0] ?? ''}`);

    step('The platform team grants kube-system its etcd hosts on 2379, wetwin its servers on 80');
    const grant = (addrs: readonly string[] | undefined, fallback: string) =>
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
            cidrs: grant(dp?.ips.etcd, '192.0.2.0/24'),
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

    step('The seed setups: examples/etcd-k8s and examples/zl-lb as ExternalBackends');
    kubectl(
      cluster,
      ['apply', '-f', '-'],
      example('etcd-k8s/externalbackend.yaml', 'kube-system', dp?.ips.etcd),
    );
    kubectl(
      cluster,
      ['apply', '-f', '-'],
      example('zl-lb/externalbackend.yaml', 'wetwin', dp?.ips.web),
    );
    const discovery = kc.makeApiClient(DiscoveryV1Api);
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
    kubectl(cluster, [
      '-n',
      'kube-system',
      'get',
      'service,endpointslices',
      '-l',
      'kubernetes.io/service-name=etcd-k8s',
    ]);

    if (dp !== undefined) await dataPathActs(cluster, dp);
    else
      kubectl(cluster, [
        '-n',
        'kube-system',
        'get',
        'endpointslice',
        'etcd-k8s-outrigger-ipv4',
        '-o',
        'yaml',
      ]);

    step('A namespace user tries to steer traffic through an ExternalBackend');
    const web = (name: string, ip: string): string =>
      dump({
        apiVersion: 'outrigger.dev/v1alpha1',
        kind: 'ExternalBackend',
        metadata: { name, namespace: 'wetwin' },
        spec: { ports: [{ name: 'http', port: 80 }], addresses: [{ ip }] },
      });
    say('An address outside what the platform team granted wetwin: refused at admission.');
    kubectl(cluster, ['apply', '-f', '-'], web('sneaky', '203.0.113.9'));
    say(
      "The API server's ClusterIP, inside wetwin's careless 10.0.0.0/8 grant: admitted, never published.",
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

    if (!quick) await selectorAct(cluster, core);

    step("outrigger's metrics for the backends");
    const text = await (await fetch(op.metricsUrl)).text();
    say(
      text
        .split('\n')
        .filter((l) =>
          /^(outrigger_backend_addresses|outrigger_endpoint_writes_total|leader_election_master_status|controller_runtime_reconcile_total)/.test(
            l,
          ),
        )
        .map((l) => `  ${l}`)
        .join('\n'),
    );
    const code = await op.stop();
    op = undefined;
    say(`outrigger exited with status ${String(code)} after SIGTERM`);
  } finally {
    step('Stopping outrigger, the backends, the node and the control plane');
    await stop();
    say('Done: every process stopped, the network namespaces and the temporary directory removed.');
  }
}

/** etcdctl and HTTP through the Service and the Ingress; a member and a server die. */
async function dataPathActs(cluster: Cluster, dp: DataPath): Promise<void> {
  const etcdctl = ensureDataPlaneBinary('etcdctl');
  const endpoint = 'http://etcd-k8s.kube-system.svc.cluster.local:2379';
  const ctl = (...args: string[]) =>
    dp.node.exec(
      etcdctl,
      [`--endpoints=${endpoint}`, '--dial-timeout=1s', '--command-timeout=2s', ...args],
      10_000,
    );
  await waitFor('kube-proxy to program etcd-k8s', () =>
    Promise.resolve(
      dp.node.programmedEndpoints('kube-system', 'etcd-k8s').length === 3 || undefined,
    ),
  );

  step("etcd's own client on node-a, through the Service name");
  for (const args of [
    ['put', 'greeting', 'hello from outside the cluster'],
    ['get', 'greeting'],
  ]) {
    say(
      `node-a$ etcdctl --endpoints=${endpoint} ${args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}`,
    );
    process.stdout.write((await ctl(...args)).stdout);
  }
  say(
    `kube-proxy's rules for it on node-a: ${dp.node.programmedEndpoints('kube-system', 'etcd-k8s').join(', ')}`,
  );

  step('The web servers through the Ingress (Traefik, the seed rewrite /lb/(zl/.*) → /$1)');
  const kc = cluster.kubeConfig();
  const net = kc.makeApiClient(NetworkingV1Api);
  say('The same two servers by hand, as the articles write them, in namespace wetwin-by-hand:');
  kubectl(
    cluster,
    ['apply', '-f', '-'],
    example('zl-lb/by-hand.yaml', 'wetwin-by-hand', dp.ips.byHand),
  );
  await net.createNamespacedIngress({
    namespace: 'wetwin',
    body: seedIngress('wetwin', 'zl.example'),
  });
  await net.createNamespacedIngress({
    namespace: 'wetwin-by-hand',
    body: seedIngress('wetwin-by-hand', 'by-hand.zl.example'),
  });
  kubectl(cluster, ['get', 'ingress', '-A']);
  for (const host of ['zl.example', 'by-hand.zl.example']) {
    await waitFor(
      `${host} through Traefik`,
      async () => (await get(dp.traefik, host, '/lb/zl/index.html')).status === 200 || undefined,
    );
    for (let i = 0; i < 2; i++) {
      const r = await get(dp.traefik, host, '/lb/zl/index.html');
      say(
        `$ curl -H 'Host: ${host}' ${dp.traefik}/lb/zl/index.html   → ${String(r.status)} from ${r.body}`,
      );
    }
  }

  step(`etcd member etc-master2 (${dp.ips.etcd[1] ?? ''}) dies`);
  const killedAt = Date.now();
  const loopUntil = killedAt + (quick ? 6000 : 10_000);
  const gone = waitFor(
    'kube-proxy to drop the member',
    () =>
      Promise.resolve(
        dp.node
          .programmedEndpoints('kube-system', 'etcd-k8s')
          .includes(`${dp.ips.etcd[1] ?? ''}:2379`)
          ? undefined
          : Date.now() - killedAt,
      ),
    30_000,
    50,
  );
  await dp.etcd.kill(1);
  let ok = 0;
  let calls = 0;
  while (Date.now() < loopUntil) {
    const r = await ctl('get', 'greeting', '--print-value-only');
    calls++;
    if (r.code === 0) ok++;
  }
  say(
    `kube-proxy on node-a stopped sending connections to it ${String(await gone)} ms after its death`,
  );
  say(
    `(health check every ${String(check.intervalSeconds)} s, ${String(check.unhealthyThreshold)} failures: bound ${String(boundMs)} ms);`,
  );
  say(
    `etcdctl meanwhile: ${String(ok)}/${String(calls)} calls succeeded (etcd's client retries a refused connection)`,
  );
  kubectl(cluster, ['-n', 'kube-system', 'get', 'xb', 'etcd-k8s']);

  step(`etc-master2 comes back`);
  const revivedAt = Date.now();
  await dp.etcd.restart(1);
  const back = await waitFor(
    'kube-proxy to send connections to the member again',
    () =>
      Promise.resolve(
        dp.node
          .programmedEndpoints('kube-system', 'etcd-k8s')
          .includes(`${dp.ips.etcd[1] ?? ''}:2379`)
          ? Date.now() - revivedAt
          : undefined,
      ),
    60_000,
    50,
  );
  say(
    `healthy again: kube-proxy sends connections to it ${String(back)} ms after it was restarted (${String(check.healthyThreshold)} passing checks)`,
  );
  kubectl(cluster, ['-n', 'kube-system', 'get', 'xb', 'etcd-k8s']);

  const windowMs = quick ? 12_000 : 30_000;
  const bucketMs = 2000;
  step(`One web server of each setup dies: ${String(windowMs / 1000)} s of requests every 100 ms`);
  const start = Date.now() + 500;
  const until = start + windowMs;
  const ours = requestLoop(dp.traefik, 'zl.example', until, 100);
  const hand = requestLoop(dp.traefik, 'by-hand.zl.example', until, 100);
  await delay(500);
  await Promise.all([dp.web[0]?.stop(), dp.web[2]?.stop()]);
  const [o, h] = await Promise.all([ours, hand]);
  say(`failed requests per ${String(bucketMs / 1000)} s after the death:`);
  say(`  by hand        ${timeline(h, start, bucketMs, windowMs / bucketMs)}`);
  say(`  with outrigger ${timeline(o, start, bucketMs, windowMs / bucketMs)}`);
  const fo = failures(o, start);
  const fh = failures(h, start);
  say(
    `by hand ${String(fh.failed)}/${String(fh.total)} failed, to the end; with outrigger ${String(fo.failed)}/${String(fo.total)}, the last ${String(fo.lastFailureMs)} ms after the death.`,
  );
}

/** Selector mode: outrigger as the endpoints controller for a selector Service. */
async function selectorAct(cluster: Cluster, core: CoreV1Api): Promise<void> {
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
  kubectl(cluster, ['-n', ns, 'get', 'endpoints', 'web', '-o', 'yaml']);
  step('web-2 becomes ready: outrigger moves it to the ready addresses');
  await writePodStatus(core, ns, 'web-2', '10.244.0.11', true);
  await waitFor('web-2 ready in Endpoints/web', async () => {
    const ep = await core.readNamespacedEndpoints({ name: 'web', namespace: ns });
    return ep.subsets?.[0]?.addresses?.length === 2 ? ep : undefined;
  });
  kubectl(cluster, ['-n', ns, 'get', 'endpoints', 'web']);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
