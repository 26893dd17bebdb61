// Runs the real `outrigger` command (src/main.ts under Node's type stripping) against a cluster.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { request } from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';
import { chartServiceAccount, wantsServiceAccount } from './chartidentity.ts';
import { installCrd } from './crd.ts';
import { freePort } from './ports.ts';
import { tail } from './processes.ts';

const main = new URL('../../src/main.ts', import.meta.url).pathname;

export interface OperatorProcess {
  readonly pid: number;
  readonly metricsUrl: string;
  readonly logPath: string;
  /**
   * Scrapes /metrics and returns the sum of the samples of `name` matching `labels` (0 when the
   * family is exposed but has no such series yet); throws when no family `name` is exposed.
   */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** SIGTERM, then waits for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: the process dies without any clean-up (a crashed or partitioned replica). */
  kill(): Promise<void>;
  /** Resolves with the exit code when the process exits on its own. */
  readonly exited: Promise<number | null>;
}

export interface StartOptions {
  /** Install the CRDs first (needs admin credentials in `kubeconfig`); default true. */
  readonly installCrd?: boolean;
  /** With installCrd: also an ExternalBackendPolicy that allows every address; default true. */
  readonly allowAllAddresses?: boolean;
  /**
   * Serve /metrics as the chart does, over HTTPS behind TokenReview and SubjectAccessReview (the
   * test passes --metrics-cert-path or lets the operator generate a certificate). Default false:
   * plain HTTP, which the scrapes of most tests (`metric`) need.
   */
  readonly secureMetrics?: boolean;
  /** How long to wait for /readyz; 0 returns as soon as the process is started. Default 60 s. */
  readonly readyTimeoutMs?: number;
  /** Flags for node itself (the benchmark's --inspect and --trace-gc). */
  readonly nodeArgs?: readonly string[];
  /** Rewrites the command line, e.g. to start it inside a memory cgroup (cgroup.ts). */
  readonly wrap?: (argv: readonly string[]) => string[];
  /** Another tree's src/main.ts: the benchmark's before-and-after runs. */
  readonly main?: string;
  /**
   * The address its metrics and probes listen on (default 127.0.0.1): a replica wrapped into a
   * node's namespace listens on the node's address, which the host reaches.
   */
  readonly bindHost?: string;
}

export async function startOperator(
  kubeconfig: string,
  args: readonly string[],
  logPath: string,
  opts: StartOptions = {},
): Promise<OperatorProcess> {
  // The operator always runs the ExternalBackend controller, which needs its CRD.
  if (opts.installCrd ?? true)
    await installCrd(kubeconfig, { allowAllAddresses: opts.allowAllAddresses ?? true });
  // Given the admin's credentials, optionally as the chart's ServiceAccount under its RBAC and
  // write guard instead (chartidentity.ts).
  const identity = wantsServiceAccount(kubeconfig)
    ? await chartServiceAccount(kubeconfig, args)
    : kubeconfig;
  const bindHost = opts.bindHost ?? '127.0.0.1';
  const metricsPort = await freePort();
  const probePort = await freePort();
  const fd = openSync(logPath, 'a');
  const argv = [
    process.execPath,
    ...(opts.nodeArgs ?? []),
    opts.main ?? main,
    `--kubeconfig=${identity}`,
    `--metrics-bind-address=${bindHost}:${metricsPort}`,
    `--health-probe-bind-address=${bindHost}:${probePort}`,
    ...(opts.secureMetrics === true ? [] : ['--metrics-secure=false']),
    ...args,
  ];
  const [command = '', ...rest] = opts.wrap?.(argv) ?? argv;
  const child: ChildProcess = spawn(command, rest, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const metricsUrl = `${opts.secureMetrics === true ? 'https' : 'http'}://${bindHost}:${metricsPort}/metrics`;
  // Ready means the caches have synced.
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  const deadline = Date.now() + readyTimeoutMs;
  for (; readyTimeoutMs > 0;) {
    if (child.exitCode !== null) throw new Error(`outrigger exited early:\n${tail(logPath)}`);
    try {
      if ((await fetch(`http://${bindHost}:${probePort}/readyz`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`outrigger did not become ready:\n${tail(logPath)}`);
    await delay(100);
  }
  return {
    pid: child.pid ?? 0,
    metricsUrl,
    logPath,
    async metric(name, labels = {}) {
      return sumSamples(await (await fetch(metricsUrl)).text(), name, labels, metricsUrl);
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
    exited,
  };
}

/** A histogram's or summary's samples carry a suffix after their family's name. */
const sampleSuffixes: Record<string, readonly string[]> = {
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['_sum', '_count'],
};

/**
 * The sum of the samples of `name` in a Prometheus text exposition whose labels include `labels`.
 * A family the exposition declares (# HELP / # TYPE) with no matching series is 0: a labelled
 * counter that has not counted yet. A name no declared family has is an error, so that a renamed
 * or never-registered metric cannot read as "nothing happened".
 */
export function sumSamples(
  exposition: string,
  name: string,
  labels: Record<string, string> = {},
  source = 'the exposition',
): number {
  const types = new Map<string, string>();
  for (const m of exposition.matchAll(/^# (?:HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (\S+))?/gm)) {
    const family = m[1] ?? '';
    if (!types.has(family) || m[0].startsWith('# TYPE')) types.set(family, m[2] ?? '');
  }
  const declared =
    types.has(name) ||
    Object.entries(sampleSuffixes).some(([type, suffixes]) =>
      suffixes.some((x) => name.endsWith(x) && types.get(name.slice(0, -x.length)) === type),
    );
  if (!declared) {
    const prefix = name.split('_').slice(0, 2).join('_');
    const near = [...types.keys()].filter((f) => f.startsWith(prefix));
    throw new Error(
      `metric ${name} is not exposed by ${source}; families starting with ${prefix}: ${near.length > 0 ? near.join(', ') : 'none'}`,
    );
  }
  let sum = 0;
  for (const line of exposition.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (m?.[1] !== name) continue;
    const have = new Map<string, string>();
    for (const x of (m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)) have.set(x[1] ?? '', x[2] ?? '');
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(m[4]);
  }
  return sum;
}

export interface Scrape {
  readonly status: number;
  readonly body: string;
  readonly ms: number;
}

/**
 * GETs a secure metrics URL with an optional bearer token, verifying the server's certificate
 * against `ca` (PEM); Node's fetch takes no CA of its own, hence node:https.
 */
export function scrapeSecure(
  url: string,
  o: {
    readonly token?: string;
    readonly ca: string;
    /** The name the certificate must carry, when it is not the URL's host (a Service's DNS name). */
    readonly servername?: string;
  },
): Promise<Scrape> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        ca: o.ca,
        ...(o.servername !== undefined && { servername: o.servername }),
        agent: false,
        headers: o.token === undefined ? {} : { Authorization: `Bearer ${o.token}` },
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - started });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * One replica of a quorum inside a node's namespace, as its pod on that Node would run: the
 * node's address and credentials, its pod and Node names, leader election in `default`, and
 * status written at once. `args` add the rest (lease timings, --probers-per-address).
 */
export function startReplicaInNode(
  node: {
    readonly netns: string;
    readonly nodeName: string;
    readonly ip: string;
    readonly kubeconfig: string;
  },
  name: string,
  args: readonly string[],
  logPath: string,
): Promise<OperatorProcess> {
  return startOperator(
    node.kubeconfig,
    [
      '--leader-elect',
      '--leader-election-namespace=default',
      `--pod-name=${name}`,
      `--node-name=${node.nodeName}`,
      '--status-batch-period=0',
      ...args,
    ],
    logPath,
    {
      installCrd: false,
      bindHost: node.ip,
      wrap: (argv) => ['ip', 'netns', 'exec', node.netns, ...argv],
    },
  );
}
