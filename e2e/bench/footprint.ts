// `npm run bench:footprint`: what each thing outrigger keeps costs in JS heap, measured as the live
// heap after a full GC (the inspector's) of one outrigger under the chart's limit, growing step by
// step, each step waited out until every backend's status shows it:
//
//   0. no ExternalBackend;
//   1. `--backends` backends with one static address each, no health check: per backend (its
//      informer entry, its slice and Endpoints, its Service, its status and its controller state);
//   2. nine more static addresses each: per unchecked address;
//   3. one DNS name each, resolving to one more address (a CoreDNS on loopback): per DNS name;
//   4. a TCP health check on all of them, against real listeners in a network namespace: per
//      probe target (scheduler entry, its history, its state in status).
//
// Prints the table and writes --out/footprint.json. Requests are not paced (the footprint is the
// point, not the write rate).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import PQueue from 'p-queue';
import { group, plural, version } from '../../src/api/externalbackend.ts';
import { startCluster } from '../harness/controlplane.ts';
import { installCrd } from '../harness/crd.ts';
import { startDnsServer } from '../harness/dnsserver.ts';
import { createBackendNetwork, netnsUnavailable } from '../harness/netns.ts';
import { provenance } from '../harness/provenance.ts';
import { cgroupWhyNot, memoryLimit, startLimited } from './limited.ts';
import { sampleProcess } from './observe.ts';
import { markdownTable } from './results.ts';

const { values: args } = parseArgs({
  options: {
    backends: { type: 'string', default: '500' },
    out: { type: 'string' },
  },
});
const n = Number(args.backends);
// Under the per-namespace limit of health-check targets (1000), with the DNS names counted.
const perNamespace = 50;

function log(msg: string): void {
  process.stderr.write(`[footprint ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

interface Step {
  readonly step: string;
  readonly liveHeapMiB: number;
  readonly rssMiB: number;
  /** What the step added, and how many of it. */
  readonly added: string;
  readonly count: number;
}

const why = netnsUnavailable();
if (why !== undefined) throw new Error(`the footprint needs network namespaces: ${why}`);
const measured = provenance();
const cluster = await startCluster();
const net = createBackendNetwork(cluster.dir ?? '/tmp', 1);
const dns = await startDnsServer(cluster.dir ?? '/tmp');
const steps: Step[] = [];
try {
  const kc = cluster.kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const objects = kc.makeApiClient(CustomObjectsApi);
  await installCrd(cluster.kubeconfigPath, { allowAllAddresses: true });
  const ips = net.routed(n * 11);
  const server = await net.serveAll(7000, 'tcp');
  const namespaces = Array.from(
    { length: Math.ceil(n / perNamespace) },
    (_, i) => `footprint-${String(i)}`,
  );
  for (const ns of namespaces) await core.createNamespace({ body: { metadata: { name: ns } } });
  const started = await startLimited(
    cluster.kubeconfigPath,
    [`--dns-servers=${dns.address}`, '--kube-api-qps=1000000', '--kube-api-burst=1000000'],
    join(cluster.dir ?? '/tmp', 'outrigger-footprint.log'),
  );
  const pool = new PQueue({ concurrency: 16 });
  const at = (b: number): { namespace: string; name: string } => ({
    namespace: namespaces[Math.floor(b / perNamespace)] ?? '',
    name: `b-${String(b)}`,
  });
  const spec = (b: number, addresses: number, withName: boolean, checked: boolean) => ({
    ports: [{ name: 'p', port: 7000 }],
    addresses: ips.slice(b * 10, b * 10 + addresses).map((ip) => ({ ip })),
    ...(withName ? { dnsNames: [{ name: `b${String(b)}.footprint.test` }] } : {}),
    ...(checked
      ? { healthCheck: { tcp: { port: 'p' }, intervalSeconds: 10, timeoutSeconds: 2 } }
      : {}),
  });
  /** Every backend's status lists `want` addresses (in `state`, when given). */
  const settled = async (want: number, state?: string): Promise<void> => {
    const deadline = Date.now() + 600_000;
    for (;;) {
      let ok = 0;
      for (const namespace of namespaces) {
        const list = (await objects.listNamespacedCustomObject({
          group,
          version,
          namespace,
          plural,
        })) as { items: { status?: { addresses?: { state?: string }[] } }[] };
        for (const x of list.items) {
          const a = x.status?.addresses ?? [];
          if (a.length === want && (state === undefined || a.every((y) => y.state === state))) ok++;
        }
      }
      if (ok === n) return;
      if (Date.now() > deadline)
        throw new Error(`${String(ok)} of ${String(n)} backends show ${String(want)} addresses`);
      await delay(2000);
    }
  };
  const measure = async (step: string, added: string, count: number): Promise<void> => {
    // Let batched work and the informers' last events land before the heap is read.
    await delay(5000);
    const liveHeapMiB = await started.inspector.liveHeapMiB();
    const rssMiB = sampleProcess(started.op.pid).rssMiB;
    steps.push({ step, liveHeapMiB, rssMiB, added, count });
    log(`${step}: live heap ${liveHeapMiB.toFixed(1)} MiB, RSS ${rssMiB.toFixed(1)} MiB`);
  };
  const each = async (f: (b: number) => Promise<unknown>): Promise<void> => {
    for (let b = 0; b < n; b++)
      pool
        .add(() => f(b))
        .catch((err: unknown) => {
          log(`backend ${String(b)}: ${String(err)}`);
        });
    await pool.onIdle();
  };
  const replace = (b: number, addresses: number, withName: boolean, checked: boolean) =>
    objects.patchNamespacedCustomObject(
      {
        group,
        version,
        plural,
        ...at(b),
        body: { spec: spec(b, addresses, withName, checked) },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );

  await measure('no ExternalBackend', '', 0);
  await each((b) =>
    objects.createNamespacedCustomObject({
      group,
      version,
      plural,
      namespace: at(b).namespace,
      body: {
        apiVersion: `${group}/${version}`,
        kind: 'ExternalBackend',
        metadata: { name: at(b).name },
        spec: spec(b, 1, false, false),
      },
    }),
  );
  await settled(1);
  await measure('one static address each', 'backend', n);
  await each((b) => replace(b, 10, false, false));
  await settled(10);
  await measure('ten static addresses each', 'unchecked address', 9 * n);
  for (let b = 0; b < n; b++)
    await dns.set(`b${String(b)}.footprint.test`, [ips[n * 10 + b] ?? '']);
  await each((b) => replace(b, 10, true, false));
  await settled(11);
  await measure('and one DNS name each (one address)', 'DNS name, its address included', n);
  await each((b) => replace(b, 10, true, true));
  await settled(11, 'Healthy');
  await measure('all checked (TCP every 10 s)', 'probe target', 11 * n);
  await started.stop();
  await server.stop();
} finally {
  await dns.stop();
  await net.remove();
  await cluster.stop();
}

const rows = steps.map((s, i) => {
  const prev = steps[i - 1];
  const per =
    prev === undefined || s.count === 0
      ? ''
      : `${(((s.liveHeapMiB - prev.liveHeapMiB) * 1024) / s.count).toFixed(2)} KiB per ${s.added}`;
  return [s.step, `${s.liveHeapMiB.toFixed(1)} MiB`, `${s.rssMiB.toFixed(1)} MiB`, per];
});
const table = markdownTable(['step', 'live heap after a full GC', 'RSS', 'added'], rows);
const limit = cgroupWhyNot === undefined ? memoryLimit : `none (${cgroupWhyNot})`;
process.stdout.write(
  `## Heap per thing kept, ${String(n)} backends\n\n${measured.machine}; ${measured.date}; commit ${measured.commit}; limit ${limit}\n\n${table}\n`,
);
if (args.out !== undefined) {
  mkdirSync(args.out, { recursive: true });
  writeFileSync(
    join(args.out, 'footprint.json'),
    `${JSON.stringify({ ...measured, backends: n, limit, steps }, null, 2)}\n`,
  );
}
