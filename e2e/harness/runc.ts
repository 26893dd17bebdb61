// Plays the kubelet for one container of a Pod template: turns the template's container (command,
// args, env, security contexts, resources, volume mounts of emptyDirs and Secrets) into an OCI runtime bundle and runs it
// with runc inside a node's network namespace, with what a kubelet adds: the service-account
// token, CA and namespace where kubelets mount them, the in-cluster environment variables, the
// pod's hostname, and `seccompProfile: RuntimeDefault` as containerd applies it.
//
// Only what outrigger's chart uses is translated; anything else in the template is refused, so a
// chart change that this harness would silently ignore fails the test instead.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Container, V1PodSpec } from '@kubernetes/client-node';
import type { ImageConfig } from '../image/build.ts';

export interface ServiceAccountFiles {
  readonly token: string;
  readonly caCrt: string;
  readonly namespace: string;
}

export interface RunPodOptions {
  /** Directory for the bundle (config.json) and the container's log. */
  readonly dir: string;
  readonly id: string;
  readonly podName: string;
  readonly podNamespace: string;
  readonly podSpec: V1PodSpec;
  readonly image: { readonly config: ImageConfig; readonly rootfs: string };
  /** The network namespace (as `ip netns` names it) the pod lives in. */
  readonly netns: string;
  readonly serviceAccount: ServiceAccountFiles;
  /** containerd's RuntimeDefault seccomp profile (e2e/scripts/build-data-plane.sh seccomp-default). */
  readonly seccompProfile: string;
  /** The `kubernetes` Service's address, as kubelets pass it to every container. */
  readonly kubernetesService: { readonly host: string; readonly port: number };
  /**
   * The `data` (base64, as the API returns it) of each Secret that a `secret` volume names, read
   * by the caller: a kubelet reads them from the API server. A volume naming another is refused.
   */
  readonly secrets?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

export interface Container {
  readonly id: string;
  readonly logPath: string;
  /** runc's view: "running", "stopped", ... */
  status(): string;
  /** The container's init process as the host sees it. */
  pid(): number;
  kill(signal?: 'SIGTERM' | 'SIGKILL'): void;
  /** Kills (if needed) and deletes the container. */
  remove(): void;
}

function runc(args: readonly string[]): { status: number | null; out: string } {
  const r = spawnSync('runc', args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Bytes of a Kubernetes quantity such as 512Mi or 1G. */
function bytes(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi|K|M|G)?$/.exec(q);
  if (!m) throw new Error(`unsupported memory quantity ${q}`);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, K: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

function only(what: string, value: object | undefined, allowed: readonly string[]): void {
  const extra = Object.entries(value ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([k]) => k)
    .filter((k) => !allowed.includes(k));
  if (extra.length > 0)
    throw new Error(`runc harness: ${what} sets ${extra.join(', ')}, which it does not translate`);
}

/**
 * Container runtimes give containers a high open-files limit (containerd: 1048576); a container
 * cannot get more than this machine lets its root have.
 */
function openFilesLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const hard = Number(line?.split(/\s{2,}/)[2]);
  return Number.isFinite(hard) ? Math.min(hard, 1048576) : 1024;
}

/** The OCI runtime config for the pod's single container. */
export function runtimeConfig(o: RunPodOptions): object {
  const spec = o.podSpec;
  const c: V1Container | undefined = spec.containers[0];
  if (c === undefined || spec.containers.length !== 1 || (spec.initContainers?.length ?? 0) > 0)
    throw new Error('runc harness: one container, no init containers');
  const psc = spec.securityContext ?? {};
  const sc = c.securityContext ?? {};
  only('the pod securityContext', psc, [
    'runAsNonRoot',
    'runAsUser',
    'runAsGroup',
    'seccompProfile',
  ]);
  for (const k of ['hostNetwork', 'hostPID', 'hostIPC', 'shareProcessNamespace'] as const)
    if (spec[k] === true)
      throw new Error(`runc harness: the pod sets ${k}, which it does not translate`);
  if (spec.automountServiceAccountToken === false)
    throw new Error('runc harness: automountServiceAccountToken: false is not translated');
  for (const k of ['envFrom', 'lifecycle', 'volumeDevices', 'startupProbe'] as const)
    if (c[k] !== undefined)
      throw new Error(`runc harness: the container sets ${k}, which it does not translate`);
  if (c.resources?.limits?.cpu !== undefined)
    throw new Error('runc harness: a CPU limit is not translated');
  only('the container securityContext', sc, [
    'allowPrivilegeEscalation',
    'readOnlyRootFilesystem',
    'capabilities',
    'runAsNonRoot',
    'runAsUser',
    'runAsGroup',
    'seccompProfile',
  ]);
  const [imageUid, imageGid] = (o.image.config.User ?? '0:0').split(':').map(Number);
  if (!Number.isInteger(imageUid) || !Number.isInteger(imageGid))
    throw new Error(`runc harness: the image's User ${o.image.config.User ?? ''} is not numeric`);
  const uid = sc.runAsUser ?? psc.runAsUser ?? imageUid ?? 0;
  const gid = sc.runAsGroup ?? psc.runAsGroup ?? imageGid ?? 0;
  if ((sc.runAsNonRoot ?? psc.runAsNonRoot) === true && uid === 0)
    throw new Error('runAsNonRoot, but the container would run as root');
  const seccomp = sc.seccompProfile ?? psc.seccompProfile;
  if (seccomp?.type !== 'RuntimeDefault')
    throw new Error('runc harness: seccompProfile RuntimeDefault only');
  const drop = sc.capabilities?.drop ?? [];
  if (!drop.includes('ALL') || (sc.capabilities?.add?.length ?? 0) > 0)
    throw new Error('runc harness: capabilities drop [ALL] only');

  const env = new Map<string, string>();
  env.set('PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  for (const e of o.image.config.Env ?? []) {
    const i = e.indexOf('=');
    env.set(e.slice(0, i), e.slice(i + 1));
  }
  env.set('HOSTNAME', o.podName);
  env.set('KUBERNETES_SERVICE_HOST', o.kubernetesService.host);
  env.set('KUBERNETES_SERVICE_PORT', String(o.kubernetesService.port));
  env.set('KUBERNETES_SERVICE_PORT_HTTPS', String(o.kubernetesService.port));
  for (const e of c.env ?? []) {
    const field = e.valueFrom?.fieldRef?.fieldPath;
    const v =
      e.value ??
      (field === 'metadata.namespace'
        ? o.podNamespace
        : field === 'metadata.name'
          ? o.podName
          : undefined);
    if (v === undefined)
      throw new Error(`runc harness: env ${e.name} has a source it does not translate`);
    env.set(e.name, v);
  }

  const mounts: object[] = [
    { destination: '/proc', type: 'proc', source: 'proc' },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
    },
    {
      destination: '/sys',
      type: 'sysfs',
      source: 'sysfs',
      options: ['nosuid', 'noexec', 'nodev', 'ro'],
    },
    // containerd mounts the container's own cgroup here (read-only) in every container: Node reads
    // its memory limit from it (process.constrainedMemory()) and sizes the V8 heap by it.
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
    },
  ];
  for (const m of c.volumeMounts ?? []) {
    const v = spec.volumes?.find((x) => x.name === m.name);
    if (v?.secret !== undefined) {
      // As a kubelet: every key a file (mode 0644 by default), mounted read-only.
      only(`secret volume ${m.name}`, v.secret, ['secretName', 'defaultMode']);
      const name = v.secret.secretName ?? '';
      const data = o.secrets?.[name];
      if (data === undefined)
        throw new Error(`runc harness: secret volume ${m.name} names Secret ${name}, not given`);
      const dir = join(o.dir, 'volumes', m.name);
      mkdirSync(dir, { recursive: true });
      for (const [key, value] of Object.entries(data))
        writeFileSync(join(dir, key), Buffer.from(value, 'base64'), {
          mode: v.secret.defaultMode ?? 0o644,
        });
      mounts.push({
        destination: m.mountPath,
        type: 'bind',
        source: dir,
        options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'],
      });
      continue;
    }
    if (v?.emptyDir === undefined)
      throw new Error(
        `runc harness: volume ${m.name} is neither an emptyDir nor a secret, which it does not translate`,
      );
    // A kubelet backs a disk emptyDir by a node directory; a size-limited tmpfs stands in for it
    // here (it counts against the memory limit, which a directory would not).
    const size =
      v.emptyDir.sizeLimit === undefined ? [] : [`size=${String(bytes(v.emptyDir.sizeLimit))}`];
    mounts.push({
      destination: m.mountPath,
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'nodev', 'mode=1777', ...size, ...(m.readOnly === true ? ['ro'] : [])],
    });
  }
  // Where kubelets project the service-account token, its CA and the namespace.
  const saDir = join(o.dir, 'serviceaccount');
  mkdirSync(saDir, { recursive: true });
  writeFileSync(join(saDir, 'token'), o.serviceAccount.token, { mode: 0o644 });
  writeFileSync(join(saDir, 'ca.crt'), o.serviceAccount.caCrt, { mode: 0o644 });
  writeFileSync(join(saDir, 'namespace'), o.serviceAccount.namespace, { mode: 0o644 });
  mounts.push({
    destination: '/var/run/secrets/kubernetes.io/serviceaccount',
    type: 'bind',
    source: saDir,
    options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'],
  });

  const memoryLimit = c.resources?.limits?.memory;
  const seccompProfile = JSON.parse(readFileSync(o.seccompProfile, 'utf8')) as object;
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid, gid, additionalGids: [gid] },
      args: [...(c.command ?? o.image.config.Entrypoint ?? []), ...(c.args ?? [])],
      env: [...env].map(([k, v]) => `${k}=${v}`),
      cwd: c.workingDir ?? o.image.config.WorkingDir ?? '/',
      // Every capability dropped: every set empty.
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      noNewPrivileges: sc.allowPrivilegeEscalation === false,
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: openFilesLimit(), soft: openFilesLimit() }],
    },
    root: { path: o.image.rootfs, readonly: sc.readOnlyRootFilesystem === true },
    hostname: o.podName,
    mounts,
    linux: {
      namespaces: [
        { type: 'pid' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        { type: 'network', path: `/var/run/netns/${o.netns}` },
      ],
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        ...(memoryLimit !== undefined ? { memory: { limit: bytes(memoryLimit) } } : {}),
      },
      seccomp: seccompProfile,
      maskedPaths: [
        '/proc/acpi',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/proc/scsi',
        '/sys/firmware',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** Writes the bundle and starts the container detached; its output goes to `dir/container.log`. */
export function runPod(o: RunPodOptions): Container {
  mkdirSync(o.dir, { recursive: true });
  writeFileSync(join(o.dir, 'config.json'), JSON.stringify(runtimeConfig(o), null, 2));
  const logPath = join(o.dir, 'container.log');
  const fd = openSync(logPath, 'a');
  // Detached without a terminal, the container keeps runc's standard output and error: the log.
  const r = spawnSync('runc', ['run', '--detach', '--bundle', o.dir, o.id], {
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  // Deletes the container when this process dies without remove(), SIGKILL included: a detached
  // container is in no process group of ours.
  const watchdog = spawn(
    'sh',
    [
      '-c',
      'cat >/dev/null 2>&1; runc delete --force "$1" 2>/dev/null',
      'outrigger-runc-reaper',
      o.id,
    ],
    { detached: true, stdio: ['pipe', 'ignore', 'ignore'] },
  );
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  if (r.status !== 0)
    throw new Error(
      `runc run ${o.id} failed (exit ${String(r.status)}):\n${readFileSync(logPath, 'utf8')}`,
    );
  const state = (): { status?: string; pid?: number } => {
    const s = runc(['state', o.id]);
    return s.status === 0 ? (JSON.parse(s.out) as { status?: string; pid?: number }) : {};
  };
  return {
    id: o.id,
    logPath,
    status: () => state().status ?? 'gone',
    pid: () => state().pid ?? 0,
    kill(signal = 'SIGTERM') {
      runc(['kill', o.id, signal === 'SIGKILL' ? 'KILL' : 'TERM']);
    },
    remove() {
      runc(['delete', '--force', o.id]);
      watchdog.stdin.end();
    },
  };
}

/** Why containers cannot be run here, or undefined when they can. */
export function runcUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'runc needs root here';
  if (spawnSync('runc', ['--version']).status !== 0)
    return 'runc is not installed (Debian package runc)';
  return undefined;
}
