import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { ApiError } from '../src/runtime/rest.ts';

/**
 * Whether `err` is a failed assertion (jest's JestAssertionError carries `matcherResult`): a retry
 * must never take one for "not yet", or a wait would turn a wrong answer into a later success.
 */
export function isAssertionError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'matcherResult' in err;
}

/**
 * Polls `fn` until it returns a value other than undefined, or throws after `timeoutMs` with the
 * last error or value it saw, so that a failing wait says what it was waiting for. A failed
 * assertion inside `fn` is thrown at once, not retried (the lint config also forbids `expect`
 * there: a condition to wait for is a returned value).
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
      last = undefined;
    } catch (err) {
      if (isAssertionError(err)) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await delay(intervalMs);
  }
}

/** Creates a namespace with a unique name and returns the name. */
export async function createTestNamespace(kc: KubeConfig, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

/** The status code and message of a failed API call (throws if `p` succeeds). */
export async function apiError(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    // client-node's error for the test's own calls, outrigger's for its clients'.
    if (err instanceof ApiException || err instanceof ApiError) {
      const body: unknown = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
      const message = (body as { message?: unknown } | null)?.message;
      return { code: err.code, message: typeof message === 'string' ? message : String(err.body) };
    }
    throw err;
  }
  throw new Error('expected the API call to fail, but it succeeded');
}

/** A Pod bound to a node, as the scheduler leaves it (there is no kubelet: nothing runs it). */
export function boundPod(
  name: string,
  labels: Record<string, string>,
  ports: readonly { name: string; port: number }[] = [],
): V1Pod {
  return {
    metadata: { name, labels },
    spec: {
      nodeName: 'node-a',
      containers: [
        {
          name: 'main',
          image: 'registry.invalid/app:1',
          ports: ports.map((p) => ({ name: p.name, containerPort: p.port })),
        },
      ],
    },
  };
}

/**
 * Writes a pod's status through the status subresource as a kubelet would: Running, one IP, and the
 * Ready condition with the current time as its transition time.
 */
export async function writePodStatus(
  core: CoreV1Api,
  namespace: string,
  name: string,
  ip: string,
  ready: boolean,
): Promise<V1Pod> {
  const pod = await core.readNamespacedPod({ name, namespace });
  return core.replaceNamespacedPodStatus({
    name,
    namespace,
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

/** Creates a bound pod and gives it a running status. */
export async function createRunningPod(
  core: CoreV1Api,
  namespace: string,
  name: string,
  o: {
    labels?: Record<string, string>;
    ip: string;
    ready: boolean;
    ports?: readonly { name: string; port: number }[];
  },
): Promise<V1Pod> {
  await core.createNamespacedPod({
    namespace,
    body: boundPod(name, o.labels ?? { app: 'web' }, o.ports),
  });
  return writePodStatus(core, namespace, name, o.ip, o.ready);
}

/**
 * A kubeconfig file that authenticates as ServiceAccount `namespace/name` with a token from the
 * TokenRequest API: a real identity that RBAC judges, not the admin.
 */
export async function serviceAccountKubeconfig(
  kc: KubeConfig,
  namespace: string,
  name: string,
  dir: string,
): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const token = await core.createNamespacedServiceAccountToken({
    name,
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const cl = kc.getCurrentCluster();
  if (cl === null) throw new Error('no cluster in the admin kubeconfig');
  const sa = new KubeConfig();
  sa.loadFromOptions({
    clusters: [cl],
    users: [{ name, token: token.status?.token ?? '' }],
    contexts: [{ name, cluster: cl.name, user: name }],
    currentContext: name,
  });
  const path = join(dir, `${namespace}-${name}.kubeconfig`);
  writeFileSync(path, sa.exportConfig(), { mode: 0o600 });
  return path;
}

/**
 * The addresses in the IPv4 EndpointSlice outrigger writes for a Service, or [] when there is no
 * such slice (404) or it lists none. Any other failure throws: a refused or failed read must not
 * read as "withdrawn".
 */
export async function outriggerSliceIPs(
  kc: KubeConfig,
  namespace: string,
  service: string,
): Promise<string[]> {
  try {
    const s = await kc
      .makeApiClient(DiscoveryV1Api)
      .readNamespacedEndpointSlice({ namespace, name: `${service}-outrigger-ipv4` });
    return (s.endpoints ?? []).flatMap((e) => e.addresses);
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return [];
    throw err;
  }
}

/**
 * Runs every clean-up step in order even when one fails, so that a beforeAll that stopped half-way
 * (leaving later fixtures unassigned: a TypeError here) still stops what it did start. Throws the
 * other failures together at the end.
 */
export async function teardown(...steps: readonly (() => Promise<unknown>)[]): Promise<void> {
  const failed: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      if (!(err instanceof TypeError)) failed.push(err);
    }
  }
  if (failed.length > 0) throw new AggregateError(failed, 'clean-up failed');
}

/** Creates an ExternalBackend through the API (as `kubectl create` would). */
export async function createExternalBackend(
  kc: KubeConfig,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group,
    version,
    plural,
    namespace,
    body: {
      apiVersion,
      kind: 'ExternalBackend',
      metadata: { name },
      spec,
    },
  });
}

/** A spec for TCP servers on `port` of `ips`, checked every second, one result deciding. */
export function fastTcpBackend(ips: readonly string[], port: number): Record<string, unknown> {
  return {
    ports: [{ name: 'p', port }],
    addresses: ips.map((ip) => ({ ip })),
    healthCheck: {
      tcp: { port: 'p' },
      intervalSeconds: 1,
      timeoutSeconds: 1,
      healthyThreshold: 1,
      unhealthyThreshold: 1,
    },
  };
}
