import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const scripts = fileURLToPath(new URL('../scripts/', import.meta.url));

/** Pinned versions from e2e/scripts/versions.env (also read by the build script). */
export const versions: Readonly<Record<string, string>> = Object.fromEntries(
  readFileSync(join(scripts, 'versions.env'), 'utf8')
    .split('\n')
    .map((l) => /^([A-Z_]+)=(\S+)/.exec(l))
    .filter((m) => m !== null)
    .map((m) => [m[1] ?? '', m[2] ?? '']),
);

export interface Binaries {
  readonly dir: string;
  readonly etcd: string;
  readonly kubeApiserver: string;
  /** Absent when KUBEBUILDER_ASSETS points at a directory without it. */
  readonly kubeControllerManager?: string;
  readonly kubectl?: string;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The control-plane binaries: from $KUBEBUILDER_ASSETS when set (as controller-runtime's envtest
 * does), otherwise the pinned versions built and cached by e2e/scripts/build-binaries.sh.
 */
export function ensureBinaries(): Binaries {
  let dir = process.env.KUBEBUILDER_ASSETS;
  if (dir === undefined || dir === '') {
    const r = spawnSync('bash', [join(scripts, 'build-binaries.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (r.status !== 0)
      throw new Error(`building the control-plane binaries failed (exit ${String(r.status)})`);
    dir = r.stdout.trim().split('\n').at(-1) ?? '';
  }
  const path = (name: string): string | undefined =>
    executable(join(dir, name)) ? join(dir, name) : undefined;
  const etcd = path('etcd');
  const kubeApiserver = path('kube-apiserver');
  if (etcd === undefined || kubeApiserver === undefined) {
    throw new Error(`${dir} must contain executable etcd and kube-apiserver binaries`);
  }
  const kcm = path('kube-controller-manager');
  const kubectl = path('kubectl');
  return {
    dir,
    etcd,
    kubeApiserver,
    ...(kcm !== undefined && { kubeControllerManager: kcm }),
    ...(kubectl !== undefined && { kubectl }),
  };
}

/** helm, built by e2e/scripts/build-helm.sh and cached by version (or `helm` from $HELM_BIN). */
export function ensureHelm(): string {
  const fromEnv = process.env.HELM_BIN;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return buildChartTool('helm');
}

/** helm-docs, which writes the chart's README from values.yaml (built like helm). */
export function ensureHelmDocs(): string {
  return buildChartTool('helm-docs');
}

function buildChartTool(name: 'helm' | 'helm-docs'): string {
  const r = spawnSync('bash', [join(scripts, 'build-helm.sh'), name], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`building ${name} failed (exit ${String(r.status)})`);
  return r.stdout.trim().split('\n').at(-1) ?? '';
}

/**
 * A binary; for pause-image the real node's sandbox image (an OCI archive); for seccomp-default the JSON file of containerd's RuntimeDefault profile, for
 * monitoring-crds the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs.
 */
export type DataPlaneBinary =
  | 'kube-proxy'
  | 'kubelet'
  | 'kube-scheduler'
  | 'pause-image'
  | 'coredns'
  | 'etcdctl'
  | 'traefik'
  | 'seccomp-default'
  | 'prometheus'
  | 'promtool'
  | 'monitoring-crds';

/** A data-plane binary, built by e2e/scripts/build-data-plane.sh and cached by version. */
export function ensureDataPlaneBinary(name: DataPlaneBinary): string {
  const r = spawnSync('bash', [join(scripts, 'build-data-plane.sh'), name], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`building ${name} failed (exit ${String(r.status)})`);
  return r.stdout.trim().split('\n').at(-1) ?? '';
}
