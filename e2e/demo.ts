// The main job, `npm run demo`: a local control plane, outrigger in selector mode, and a Service
// whose Endpoints outrigger keeps in line with its pods' readiness. Everything it
// starts is stopped on exit. It sends packets to loopback only.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { createRunningPod, waitFor, writePodStatus } from './helpers.ts';

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
  step('Starting etcd and kube-apiserver on loopback (no built-in endpoints controller)');
  const cluster = await startCluster();
  let op: OperatorProcess | undefined;
  const stop = async (): Promise<void> => {
    await op?.stop();
    await cluster.stop();
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  try {
    process.stdout.write(`API server ready in ${(cluster.startupMs / 1000).toFixed(1)} s\n`);
    kubectl(cluster, ['version']);

    step('Starting outrigger in selector mode for namespace "demo"');
    const logPath = join(cluster.dir ?? '/tmp', 'outrigger.log');
    op = await startOperator(cluster.kubeconfigPath, ['--selector-mode=demo'], logPath);
    process.stdout.write(`outrigger is ready (pid ${op.pid}); its JSON logs:\n`);
    process.stdout.write(
      readFileSync(logPath, 'utf8')
        .trim()
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n') + '\n',
    );

    step('A Service with a selector and two pods, one ready and one not');
    const kc = cluster.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
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
    step('Stopping the control plane');
    await stop();
    process.stdout.write('Done: every process stopped and the temporary directory removed.\n');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
