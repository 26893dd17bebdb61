// Runs the operator of any suite as the chart's ServiceAccount instead of the admin: the chart's
// ServiceAccount, RBAC and write guard rendered for the operator's flags and applied, and a
// TokenRequest token. Opt-in (E2E_OPERATOR_IDENTITY=serviceaccount), so that a suite that writes
// (selector mode, ExternalBackends, the seed migration) shows that no write it expects is refused
// by RBAC or by the write guard (src/policy/writeguard.ts).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { ensureHelm } from './binaries.ts';
import { kubectl } from './crd.ts';

const chartDir = fileURLToPath(new URL('../../charts/outrigger', import.meta.url));
const release = 'outrigger';
const releaseNs = 'outrigger-system';

/**
 * Whether to run the operator given `kubeconfig` as the chart's ServiceAccount: asked for, and the
 * kubeconfig is the admin's (a client certificate; suites that already run the operator under a
 * ServiceAccount token keep it).
 */
export function wantsServiceAccount(kubeconfig: string): boolean {
  if (process.env.E2E_OPERATOR_IDENTITY !== 'serviceaccount') return false;
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const user = kc.getCurrentUser();
  return Boolean(user?.certData ?? user?.certFile);
}

/** The flag's value in `args` (`--name=value`), or undefined. */
function flag(args: readonly string[], name: string): string | undefined {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a?.slice(name.length + 3);
}

/**
 * Installs the chart's ServiceAccount, RBAC and write guard for an operator started with `args`,
 * and resolves with the path of a kubeconfig that authenticates as that ServiceAccount once the
 * guard is in force.
 */
export async function chartServiceAccount(
  adminKubeconfig: string,
  args: readonly string[],
): Promise<string> {
  if (args.some((a) => a.startsWith('--leader-elect') && a !== '--leader-elect=false'))
    throw new Error('E2E_OPERATOR_IDENTITY=serviceaccount does not cover leader election');
  const watch = flag(args, 'watch-namespaces') ?? '';
  const r = spawnSync(
    ensureHelm(),
    [
      'template',
      release,
      chartDir,
      `--namespace=${releaseNs}`,
      '--kube-version=1.36.3',
      '--set=image.repository=registry.example/outrigger',
      '--set=replicaCount=1',
      '--set=leaderElection.enabled=false',
      `--set=selectorMode=${(flag(args, 'selector-mode') ?? 'off').replaceAll(',', '\\,')}`,
      `--set-json=watchNamespaces=${JSON.stringify(watch === '' ? [] : watch.split(','))}`,
      '--show-only=templates/serviceaccount.yaml',
      '--show-only=templates/rbac.yaml',
      '--show-only=templates/write-guard.yaml',
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  try {
    kubectl(adminKubeconfig, ['create', 'namespace', releaseNs]);
  } catch (err) {
    if (!String(err).includes('AlreadyExists')) throw err;
  }
  kubectl(adminKubeconfig, ['apply', '--server-side', '--force-conflicts', '-f', '-'], r.stdout);

  const admin = new KubeConfig();
  admin.loadFromFile(adminKubeconfig);
  const token = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name: release,
    namespace: releaseNs,
    body: { spec: { audiences: [], expirationSeconds: 4 * 3600 } },
  });
  const cl = admin.getCurrentCluster();
  if (cl === null) throw new Error('no cluster in the admin kubeconfig');
  const sa = new KubeConfig();
  sa.loadFromOptions({
    clusters: [cl],
    users: [{ name: release, token: token.status?.token ?? '' }],
    contexts: [{ name: release, cluster: cl.name, user: release }],
    currentContext: release,
  });
  const path = join(dirname(adminKubeconfig), `${release}-serviceaccount.kubeconfig`);
  writeFileSync(path, sa.exportConfig(), { mode: 0o600 });

  // In force once the API server refuses, for that identity, a dry-run create of an Endpoints
  // nobody owns (dry runs go through admission and write nothing).
  const core = sa.makeApiClient(CoreV1Api);
  for (const deadline = Date.now() + 30_000; ;) {
    try {
      await core.createNamespacedEndpoints({
        namespace: releaseNs,
        body: { metadata: { name: 'write-guard-probe' } },
        dryRun: 'All',
      });
    } catch (err) {
      if (err instanceof ApiException && String(err.body).includes('write-guard')) {
        process.stderr.write(
          `outrigger runs as system:serviceaccount:${releaseNs}:${release} under the write guard\n`,
        );
        return path;
      }
    }
    if (Date.now() > deadline) throw new Error('the write guard did not come into force in 30 s');
    await delay(200);
  }
}
