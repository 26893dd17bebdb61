// The seed migration, for real and with traffic: the hand-written `etcd-k8s` Service + Endpoints
// of examples/etcd-k8s (three real etcd members in a network namespace) handed over to an
// ExternalBackend and back, with the commands docs/guide/migration.md gives, while etcdctl on a
// node (kube-proxy in nftables mode, CoreDNS) opens a new connection through the Service every
// ~100 ms. kube-controller-manager runs the endpointslice-mirroring controller (which turns the
// hand-written Endpoints into the slice kube-proxy reads) and the garbage collector (which
// orphans on `kubectl delete --cascade=orphan`). Three witnesses, none of them outrigger:
// - every etcdctl call's exit status and answer (goal: no failure in cutover and rollback);
// - a watch on Endpoints/etcd-k8s, what Endpoints-based readers (Prometheus' endpoints discovery)
//   see: it must never be deleted during cutover or rollback;
// - kube-proxy's programmed endpoints for the Service, sampled every 100 ms: never fewer than
//   the three members.
// A last step measures the other documented way (delete the hand-written Endpoints instead of
// adopting it): its calls must not fail either, and its Endpoints gap is printed.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  Watch,
  type CoreV1Event,
  type V1EndpointSlice,
  type V1Endpoints,
} from '@kubernetes/client-node';
import { group, plural, version } from '../src/api/externalbackend.ts';
import { ensureDataPlaneBinary } from './harness/binaries.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { dataPlaneUnavailable, startNode, type Node } from './harness/dataplane.ts';
import { startEtcdMembers, type EtcdMembers } from './harness/etcdmembers.ts';
import { createBackendNetwork, type BackendNetwork } from './harness/netns.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { claim } from './harness/claims.ts';
import { teardown, waitFor } from './helpers.ts';
import { describeUnless } from './skips.ts';

const run = promisify(execFile);
const skipReason = dataPlaneUnavailable();
const suite = describeUnless(skipReason);

const ns = 'kube-system';
const name = 'etcd-k8s';
const fqdn = `${name}.${ns}.svc.cluster.local`;
const examples = new URL('../examples/etcd-k8s/', import.meta.url);
const mirrored = 'endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io';
const ours = 'endpointslice.kubernetes.io/managed-by=controller.outrigger.dev';

let cluster: Cluster;
let node: Node;
let net: BackendNetwork;
let etcd: EtcdMembers;
let operator: OperatorProcess;
let etcdctl: string;

beforeAll(async () => {
  if (skipReason !== undefined) {
    console.warn(`skipping the seed migration test: ${skipReason}`);
    return;
  }
  etcdctl = ensureDataPlaneBinary('etcdctl');
  cluster = await startCluster({
    controllers: ['garbage-collector-controller', 'endpointslice-mirroring-controller'],
  });
  const dir = cluster.dir ?? '/tmp';
  node = await startNode(cluster, { dir: join(dir, 'node') });
  net = createBackendNetwork(dir, 3, { fromNodes: true });
  etcd = await startEtcdMembers(net, dir, ['etc-master1', 'etc-master2', 'etc-master3']);
  operator = await startOperator(cluster.kubeconfigPath, [], join(dir, 'outrigger.log'));
}, 600_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  await teardown(
    () => operator.stop(),
    () => etcd.stop(),
    () => net.remove(),
    () => node.stop(),
    () => cluster.stop(),
  );
}, 60_000);

/** An example manifest with the documentation addresses replaced by the real members'. */
function example(file: string): string {
  let text = readFileSync(new URL(file, examples), 'utf8');
  ['192.0.2.10', '192.0.2.11', '192.0.2.12'].forEach((doc, i) => {
    text = text.replaceAll(doc, etcd.members[i]?.ip ?? '');
  });
  return text;
}

/** kubectl as docs/guide/migration.md has the user run it; resolves with stdout, throws with stderr. */
async function kubectl(args: readonly string[], input?: string): Promise<string> {
  const argv = [`--kubeconfig=${cluster.kubeconfigPath}`, ...args];
  if (input === undefined) return (await run(cluster.kubectl, argv, { timeout: 60_000 })).stdout;
  return new Promise((resolve, reject) => {
    const child = execFile(cluster.kubectl, argv, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kubectl ${args.join(' ')}: ${stderr}`));
      else resolve(stdout);
    });
    child.stdin?.end(input);
  });
}

const core = () => cluster.kubeConfig().makeApiClient(CoreV1Api);
const discovery = () => cluster.kubeConfig().makeApiClient(DiscoveryV1Api);

async function endpoints(): Promise<V1Endpoints | undefined> {
  try {
    return await core().readNamespacedEndpoints({ namespace: ns, name });
  } catch {
    return undefined;
  }
}

async function slices(selector: string): Promise<V1EndpointSlice[]> {
  const { items } = await discovery().listNamespacedEndpointSlice({
    namespace: ns,
    labelSelector: `kubernetes.io/service-name=${name},${selector}`,
  });
  return items;
}

const readyIPs = (s: readonly V1EndpointSlice[]): string[] =>
  s
    .flatMap((x) => x.endpoints ?? [])
    .filter((e) => e.conditions?.ready === true)
    .flatMap((e) => e.addresses)
    .sort();

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

async function backend(): Promise<
  { metadata: { uid: string }; status?: { conditions?: Condition[] } } | undefined
> {
  try {
    return (await cluster
      .kubeConfig()
      .makeApiClient(CustomObjectsApi)
      .getNamespacedCustomObject({ group, version, plural, namespace: ns, name })) as {
      metadata: { uid: string };
      status?: { conditions?: Condition[] };
    };
  } catch {
    return undefined;
  }
}

const condition = async (type: string) =>
  (await backend())?.status?.conditions?.find((c) => c.type === type);

async function eventReasons(): Promise<string[]> {
  const { items } = await core().listNamespacedEvent({
    namespace: ns,
    fieldSelector: `involvedObject.kind=ExternalBackend,involvedObject.name=${name}`,
  });
  return items.map((e: CoreV1Event) => `${e.type ?? ''}/${e.reason ?? ''}`);
}

/** What an Endpoints reader sees: every change of Endpoints/etcd-k8s, with when it arrived. */
interface EndpointsWatch {
  readonly events: { type: string; at: number; owned: boolean; skipMirror: boolean }[];
  readonly ended: () => unknown;
  stop(): void;
}

async function watchEndpoints(): Promise<EndpointsWatch> {
  const events: EndpointsWatch['events'] = [];
  let ended: unknown;
  const controller = await new Watch(cluster.kubeConfig()).watch(
    `/api/v1/namespaces/${ns}/endpoints`,
    { fieldSelector: `metadata.name=${name}` },
    (type: string, obj: V1Endpoints) => {
      events.push({
        type,
        at: Date.now(),
        owned: (obj.metadata?.ownerReferences ?? []).length > 0,
        skipMirror: obj.metadata?.labels?.['endpointslice.kubernetes.io/skip-mirror'] === 'true',
      });
    },
    (err: unknown) => {
      ended = err ?? 'ended';
    },
  );
  return {
    events,
    ended: () => ended,
    stop: () => {
      controller.abort();
    },
  };
}

interface Call {
  phase: string;
  at: number;
  ok: boolean;
  out: string;
}

/**
 * etcdctl on the node, one new process (so one new connection through the ClusterIP) at a time,
 * ~100 ms apart, labelled with the phase it started in; and kube-proxy's programmed endpoints
 * for the Service, sampled as often.
 */
function traffic() {
  const calls: Call[] = [];
  const programmed: { phase: string; at: number; n: number }[] = [];
  const state = { phase: 'seed', stop: false };
  const loop = (async () => {
    while (!state.stop) {
      const phase = state.phase;
      const at = Date.now();
      const r = await node.exec(
        etcdctl,
        [
          `--endpoints=http://${fqdn}:2379`,
          '--dial-timeout=1s',
          '--command-timeout=2s',
          'get',
          'seed',
          '--print-value-only',
        ],
        10_000,
      );
      const ok = r.code === 0 && r.stdout.trim() === 'etcd-outside';
      calls.push({ phase, at, ok, out: ok ? '' : `${r.stdout}${r.stderr}`.trim() });
      await delay(100);
    }
  })();
  const sampler = (async () => {
    while (!state.stop) {
      programmed.push({
        phase: state.phase,
        at: Date.now(),
        n: node.programmedEndpoints(ns, name).length,
      });
      await delay(100);
    }
  })();
  return {
    calls,
    programmed,
    set phase(p: string) {
      state.phase = p;
    },
    async stop() {
      state.stop = true;
      await Promise.all([loop, sampler]);
    },
  };
}

suite('the seed migration: hand-written Endpoints → ExternalBackend → hand-written', () => {
  it('hands etcd-k8s over and back with no failed etcdctl call and no moment without Endpoints', async () => {
    const members = etcd.members.map((m) => m.ip).sort();
    const programmedAll = () =>
      node.programmedEndpoints(ns, name).join() === members.map((ip) => `${ip}:2379`).join();

    // The seed setup, as the articles have it: kube-proxy reads it through the mirrored slice.
    await kubectl(['apply', '-f', '-'], example('by-hand.yaml'));
    await waitFor('the mirrored slice', async () =>
      readyIPs(await slices(mirrored)).join() === members.join() ? true : undefined,
    );
    await waitFor('kube-proxy to program the three members', () =>
      Promise.resolve(programmedAll() || undefined),
    );
    await waitFor('a write through the Service', async () => {
      const r = await node.exec(etcdctl, [
        `--endpoints=http://${fqdn}:2379`,
        'put',
        'seed',
        'etcd-outside',
      ]);
      return r.stdout.trim() === 'OK' || undefined;
    });
    const handWrittenVersion = (await endpoints())?.metadata?.resourceVersion;

    const watch = await watchEndpoints();
    const t = traffic();
    const marks: Record<string, number> = {};
    const mark = (phase: string) => {
      t.phase = phase;
      marks[phase] = Date.now();
    };
    try {
      await delay(2000);

      // Cutover, step 1: the ExternalBackend beside the hand-written Endpoints.
      mark('cutover');
      await kubectl(['apply', '-f', '-'], example('externalbackend.yaml'));
      const held = await waitFor(
        'ForeignEndpoints: EndpointsHeldByAnotherWriter',
        async () => {
          const c = await condition('ForeignEndpoints');
          return c?.reason === 'EndpointsHeldByAnotherWriter' ? c : undefined;
        },
        60_000,
      );
      expect(held.message).toContain('outrigger.dev/adopt-endpoints=true');
      await waitFor(
        "outrigger's slice, every member checked and ready",
        async () => (readyIPs(await slices(ours)).join() === members.join() ? true : undefined),
        60_000,
      );
      await waitFor('the Warning event', async () =>
        (await eventReasons()).includes('Warning/EndpointsHeldByAnotherWriter') ? true : undefined,
      );
      // Left alone, and still mirrored: kube-proxy has both slices now.
      expect((await endpoints())?.metadata?.resourceVersion).toBe(handWrittenVersion);
      expect(readyIPs(await slices(mirrored))).toEqual(members);
      expect((await condition('Ready'))?.status).toBe('True');
      await delay(2000);

      // Cutover, step 2: the opt-in. The Endpoints is taken over in place; the mirroring
      // controller drops its slice; outrigger's carries the Service alone.
      await kubectl(['annotate', 'xb', name, '-n', ns, 'outrigger.dev/adopt-endpoints=true']);
      const uid = (await backend())?.metadata.uid;
      await waitFor(
        'the Endpoints owned by the ExternalBackend',
        async () => {
          const ep = await endpoints();
          if (
            ep?.metadata?.ownerReferences?.some((o) => o.uid === uid) === true &&
            ep.metadata.labels?.['endpointslice.kubernetes.io/skip-mirror'] === 'true'
          )
            return true;
          // Said when the wait times out.
          throw new Error(JSON.stringify((await backend())?.status?.conditions));
        },
        60_000,
      );
      await waitFor('the mirrored slice to go', async () =>
        (await slices(mirrored)).length === 0 ? true : undefined,
      );
      await waitFor('ForeignEndpoints to clear', async () =>
        (await condition('ForeignEndpoints')) === undefined ? true : undefined,
      );
      expect((await eventReasons()).includes('Normal/EndpointsAdopted')).toBe(true);
      await delay(3000);
      expect(programmedAll()).toBe(true);

      // Rollback: orphan what the backend owns, give the Endpoints back to the mirroring
      // controller, and only once its slice is there remove outrigger's.
      mark('rollback');
      await kubectl(['delete', 'xb', name, '-n', ns, '--cascade=orphan']);
      await waitFor('the Endpoints orphaned', async () =>
        (await endpoints())?.metadata?.ownerReferences === undefined ? true : undefined,
      );
      await waitFor("outrigger's slice orphaned", async () => {
        const s = await slices(ours);
        return s.length > 0 && s.every((x) => x.metadata?.ownerReferences === undefined)
          ? true
          : undefined;
      });
      await kubectl([
        'label',
        '-n',
        ns,
        'endpoints',
        name,
        'endpointslice.kubernetes.io/skip-mirror-',
        'endpoints.kubernetes.io/managed-by-',
        'app.kubernetes.io/managed-by-',
      ]);
      await waitFor('the mirrored slice back', async () =>
        readyIPs(await slices(mirrored)).join() === members.join() ? true : undefined,
      );
      await kubectl([
        'delete',
        'endpointslice',
        '-n',
        ns,
        '-l',
        `kubernetes.io/service-name=${name},${ours}`,
      ]);
      // The hand-written manifest in charge again.
      await kubectl(['apply', '-f', '-'], example('by-hand.yaml'));
      await delay(3000);
      expect(await slices(ours)).toEqual([]);
      expect(programmedAll()).toBe(true);
      mark('done');
    } finally {
      await t.stop();
      watch.stop();
    }

    const during = (phase: string) => t.calls.filter((c) => c.phase === phase);
    const failed = (phase: string) => during(phase).filter((c) => !c.ok);
    const deletions = watch.events.filter((e) => e.type === 'DELETED');
    const fewest = (phase: string) =>
      Math.min(...t.programmed.filter((p) => p.phase === phase).map((p) => p.n));
    console.log(
      `seed migration: cutover ${String(failed('cutover').length)}/${String(during('cutover').length)} etcdctl calls failed, ` +
        `rollback ${String(failed('rollback').length)}/${String(during('rollback').length)}; ` +
        `Endpoints/etcd-k8s: ${String(watch.events.length)} watch events, ${String(deletions.length)} deletions; ` +
        `kube-proxy programmed at least ${String(fewest('cutover'))} (cutover) and ${String(fewest('rollback'))} (rollback) of 3 members; ` +
        `cutover took ${String((marks.rollback ?? 0) - (marks.cutover ?? 0))} ms, rollback ${String((marks.done ?? 0) - (marks.rollback ?? 0))} ms` +
        (failed('cutover').length + failed('rollback').length > 0
          ? `; failures: ${[...failed('cutover'), ...failed('rollback')].map((c) => c.out).join(' | ')}`
          : ''),
    );
    expect(watch.ended()).toBeUndefined();
    // Traffic ran throughout (a call starts every ~100 ms; fewer on a loaded machine).
    expect(during('cutover').length).toBeGreaterThan(10);
    expect(during('rollback').length).toBeGreaterThan(10);
    expect(failed('seed')).toEqual([]);
    claim(
      'seed-migration-failed-calls',
      failed('cutover').length + failed('rollback').length,
      `of ${String(during('cutover').length + during('rollback').length)} during the cutover and the way back`,
    );
    expect(deletions).toEqual([]);
    // The watch saw the handover happen (so it was watching the right object): taken over in
    // place, then released.
    expect(watch.events.some((e) => e.type === 'MODIFIED' && e.owned && e.skipMirror)).toBe(true);
    expect(watch.events.at(-1)).toMatchObject({ owned: false, skipMirror: false });
    expect(fewest('cutover')).toBe(3);
    expect(fewest('rollback')).toBe(3);
  }, 300_000);

  it('the other way (delete the hand-written Endpoints, no opt-in): no failed call; the Endpoints gap measured', async () => {
    const members = etcd.members.map((m) => m.ip).sort();
    await kubectl(['apply', '-f', '-'], example('externalbackend.yaml'));
    await waitFor(
      "outrigger's slice beside the hand-written Endpoints",
      async () => (readyIPs(await slices(ours)).join() === members.join() ? true : undefined),
      60_000,
    );
    await waitFor('ForeignEndpoints', async () =>
      (await condition('ForeignEndpoints'))?.reason === 'EndpointsHeldByAnotherWriter'
        ? true
        : undefined,
    );
    const watch = await watchEndpoints();
    const t = traffic();
    const command = { at: NaN };
    try {
      await delay(2000);
      t.phase = 'delete';
      command.at = Date.now();
      await kubectl(['delete', '-n', ns, 'endpoints', name]);
      await waitFor('outrigger to create its own Endpoints', async () =>
        (await endpoints())?.metadata?.ownerReferences !== undefined ? true : undefined,
      );
      await waitFor('the mirrored slice to go', async () =>
        (await slices(mirrored)).length === 0 ? true : undefined,
      );
      await delay(3000);
      // Enough calls across the change to count, however slowly etcdctl starts on a busy machine.
      await waitFor(
        'twenty calls since the deletion',
        () =>
          Promise.resolve(
            t.calls.filter((c) => c.phase === 'delete').length > 20 ? true : undefined,
          ),
        60_000,
      );
    } finally {
      await t.stop();
      watch.stop();
    }
    const deleted = watch.events.find((e) => e.type === 'DELETED');
    const back = watch.events.find((e) => e.type === 'ADDED' && e.at >= (deleted?.at ?? Infinity));
    const calls = t.calls.filter((c) => c.phase === 'delete');
    const failed = calls.filter((c) => !c.ok);
    const gapMs = (back?.at ?? NaN) - (deleted?.at ?? NaN);
    console.log(
      `seed migration by deletion: ${String(failed.length)}/${String(calls.length)} etcdctl calls failed; ` +
        `Endpoints/etcd-k8s missing for ${String(gapMs)} ms as a watch saw it (deleted ${String((deleted?.at ?? 0) - command.at)} ms after the command); ` +
        `kube-proxy programmed at least ${String(Math.min(...t.programmed.filter((p) => p.phase === 'delete').map((p) => p.n)))} of 3 members`,
    );
    expect(deleted).toBeDefined();
    expect(back?.owned).toBe(true);
    expect(calls.length).toBeGreaterThan(20);
    expect(failed).toEqual([]);
    expect(Math.min(...t.programmed.filter((p) => p.phase === 'delete').map((p) => p.n))).toBe(3);
  }, 180_000);
  // A control for the witnesses: the way back in the wrong order (outrigger's slices deleted while
  // the Endpoints is still skip-mirror, so no slice is left) must show up as failed calls and as
  // kube-proxy programming nothing; otherwise the zeros above would prove nothing.
  it('control: the way back in the wrong order is seen as failed calls and an empty Service', async () => {
    await kubectl(['delete', 'xb', name, '-n', ns, '--cascade=orphan']);
    await waitFor("outrigger's slice orphaned", async () => {
      const s = await slices(ours);
      return s.length > 0 && s.every((x) => x.metadata?.ownerReferences === undefined)
        ? true
        : undefined;
    });
    const t = traffic();
    try {
      await delay(2000);
      t.phase = 'wrong-order';
      await kubectl([
        'delete',
        'endpointslice',
        '-n',
        ns,
        '-l',
        `kubernetes.io/service-name=${name},${ours}`,
      ]);
      await waitFor('kube-proxy to program nothing', () =>
        Promise.resolve(node.programmedEndpoints(ns, name).length === 0 || undefined),
      );
      // Long enough for calls to start in the gap (a failing call takes up to its timeouts).
      await delay(4000);
      await kubectl([
        'label',
        '-n',
        ns,
        'endpoints',
        name,
        'endpointslice.kubernetes.io/skip-mirror-',
        'endpoints.kubernetes.io/managed-by-',
        'app.kubernetes.io/managed-by-',
      ]);
      await waitFor('kube-proxy to program the members again', () =>
        Promise.resolve(node.programmedEndpoints(ns, name).length === 3 || undefined),
      );
    } finally {
      await t.stop();
    }
    const calls = t.calls.filter((c) => c.phase === 'wrong-order');
    const failed = calls.filter((c) => !c.ok);
    const fewest = Math.min(
      ...t.programmed.filter((p) => p.phase === 'wrong-order').map((p) => p.n),
    );
    console.log(
      `seed migration, wrong order (control): ${String(failed.length)}/${String(calls.length)} etcdctl calls failed; kube-proxy programmed at least ${String(fewest)} of 3 members`,
    );
    expect(t.calls.filter((c) => c.phase === 'seed' && !c.ok)).toEqual([]);
    expect(failed.length).toBeGreaterThan(0);
    expect(fewest).toBe(0);
  }, 120_000);
});
