// `npm run cluster:up [-- --controllers=a,b]` starts a local control plane that keeps running after
// the command returns; `npm run cluster:down` stops it and removes its directory; `status` tells.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster } from './harness/controlplane.ts';
import { isAlive, stopRecorded } from './harness/processes.ts';

const dir = process.env.OUTRIGGER_CLUSTER_DIR ?? join(tmpdir(), 'outrigger-local-cluster');

function recordedPids(): number[] {
  try {
    return readFileSync(join(dir, 'pids'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function up(args: string[]): Promise<number> {
  const controllersArg = args.find((a) => a.startsWith('--controllers='));
  const unknown = args.filter((a) => a !== controllersArg);
  if (unknown.length > 0) {
    process.stderr.write(
      `cluster:up: unknown argument ${unknown[0] ?? ''} (only --controllers=a,b)\n`,
    );
    return 2;
  }
  if (recordedPids().some((p) => isAlive(p))) {
    process.stderr.write(
      `cluster:up: a cluster is already running in ${dir}; run npm run cluster:down first\n`,
    );
    return 1;
  }
  if (existsSync(dir)) await stopRecorded(dir);
  mkdirSync(dir, { recursive: true });
  const controllers = controllersArg?.slice('--controllers='.length).split(',').filter(Boolean);
  process.stderr.write('cluster:up: starting etcd and kube-apiserver on loopback...\n');
  const cluster = await startCluster({
    dir,
    persistent: true,
    ...(controllers && { controllers }),
  });
  process.stdout.write(
    [
      `Control plane ready in ${(cluster.startupMs / 1000).toFixed(1)} s` +
        (controllers ? ` (kube-controller-manager: ${controllers.join(',')})` : ''),
      `  kubeconfig: ${cluster.kubeconfigPath}`,
      `  kubectl:    ${cluster.kubectl}`,
      `  logs:       ${join(dir, 'logs')}`,
      '',
      'Use it:',
      `  export KUBECONFIG=${cluster.kubeconfigPath}`,
      `  ${cluster.kubectl} get namespaces`,
      '  npm run outrigger -- --kubeconfig "$KUBECONFIG"',
      'Stop it:',
      '  npm run cluster:down',
      '',
    ].join('\n'),
  );
  return 0;
}

async function down(): Promise<number> {
  if (!existsSync(dir)) {
    process.stdout.write('cluster:down: no local cluster is running\n');
    return 0;
  }
  const n = await stopRecorded(dir);
  process.stdout.write(`cluster:down: stopped ${n} process(es) and removed ${dir}\n`);
  return 0;
}

function status(): number {
  const alive = recordedPids().filter((p) => isAlive(p));
  if (alive.length === 0) {
    process.stdout.write('no local cluster is running\n');
    return 1;
  }
  process.stdout.write(
    `running (pids ${alive.join(' ')}), kubeconfig ${join(dir, 'kubeconfig')}\n`,
  );
  return 0;
}

const [command, ...rest] = process.argv.slice(2);
const run = async (): Promise<number> => {
  switch (command) {
    case 'up':
      return up(rest);
    case 'down':
      return down();
    case 'status':
      return status();
    default:
      process.stderr.write('usage: cluster-cli.ts up [--controllers=a,b] | down | status\n');
      return 2;
  }
};
run().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`cluster: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
