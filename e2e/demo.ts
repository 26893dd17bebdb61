// The main job, `npm run demo`: a local control plane, a Service whose Endpoints the upstream
// controller fills from pod readiness, and the outrigger command connected to it. Everything it
// starts is stopped on exit. It sends packets to loopback only.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { CoreV1Api } from '@kubernetes/client-node';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { waitFor } from './helpers.ts';

const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s: string): void => {
  process.stdout.write(`\n${bold(`==> ${s}`)}\n`);
};

function kubectl(cluster: Cluster, args: string[]): void {
  process.stdout.write(`$ kubectl ${args.join(' ')}\n`);
  const r = spawnSync(cluster.kubectl, [`--kubeconfig=${cluster.kubeconfigPath}`, ...args], {
    encoding: 'utf8',
  });
  process.stdout.write(r.stdout + r.stderr);
}

async function main(): Promise<void> {
  step(
    'Starting etcd, kube-apiserver and kube-controller-manager (endpoints-controller) on loopback',
  );
  const t0 = Date.now();
  const cluster = await startCluster({ controllers: ['endpoints-controller'] });
  const stop = async (): Promise<void> => {
    await cluster.stop();
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  try {
    process.stdout.write(
      `API server ready in ${(cluster.startupMs / 1000).toFixed(1)} s (${((Date.now() - t0) / 1000).toFixed(1)} s with the controller manager)\n`,
    );
    kubectl(cluster, ['version']);
    kubectl(cluster, ['get', 'namespaces']);

    step(
      'A Service with a selector, two pods (one ready, one not), and the Endpoints upstream writes',
    );
    const kc = cluster.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const ns = 'demo';
    await core.createNamespace({ body: { metadata: { name: ns } } });
    for (const [name, ip, ready] of [
      ['web-1', '10.244.0.10', true],
      ['web-2', '10.244.0.11', false],
    ] as const) {
      const pod = await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name, labels: { app: 'web' } },
          spec: {
            nodeName: 'node-a',
            containers: [
              {
                name: 'web',
                image: 'registry.invalid/web:1',
                ports: [{ name: 'http', containerPort: 8080 }],
              },
            ],
          },
        },
      });
      // No kubelet runs here: readiness is written through the status subresource, as a kubelet would.
      await core.replaceNamespacedPodStatus({
        name,
        namespace: ns,
        body: {
          ...pod,
          status: {
            phase: 'Running',
            podIP: ip,
            podIPs: [{ ip }],
            conditions: [
              { type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: new Date() },
            ],
          },
        },
      });
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

    step(
      'The outrigger command connects to the API server (the controllers come in later releases)',
    );
    const main = new URL('../src/main.ts', import.meta.url).pathname;
    const op = spawn(
      process.execPath,
      [
        main,
        `--kubeconfig=${cluster.kubeconfigPath}`,
        '--metrics-bind-address=0',
        '--health-probe-bind-address=0',
      ],
      { stdio: ['ignore', 'inherit', 'pipe'] },
    );
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: op.stderr }).on('line', (line) => {
        process.stdout.write(`  ${line}\n`);
        if (line.includes('connected to the API server')) resolve();
      });
      op.once('exit', (code) => {
        reject(new Error(`outrigger exited with ${String(code)}`));
      });
    });
    const closed = new Promise<number | null>((resolve) => op.once('close', resolve));
    op.kill('SIGTERM');
    process.stdout.write(`outrigger exited with status ${String(await closed)} after SIGTERM\n`);
  } finally {
    step('Stopping the control plane');
    await stop();
    process.stdout.write('Done: every process stopped and the temporary directory removed.\n');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
