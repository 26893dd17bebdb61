// A rollback across spec.backup: an outrigger built before backup servers existed (the commit
// before them, run from this repository's history) takes over from the current one, first with
// the current CRD, then with its own. It must never publish a backup as a primary: the backups
// leave the Service, the primaries stay as they were. Then the roll forward: the older CRD prunes
// spec.backup from what it serves, not from what etcd stores, so a backend nobody wrote meanwhile
// gets its backups back; one whose object was written under the older CRD has lost them.
// Documentation addresses without a health check: no packet is sent anywhere.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { apiVersion, group, plural, version } from '../src/api/externalbackend.ts';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { installCrd, kubectl } from './harness/crd.ts';
import { startOperator, type OperatorProcess } from './harness/operator.ts';
import { teardown, waitFor } from './helpers.ts';
import { describeUnless, localOnly } from './skips.ts';

/** The last commit before spec.backup: the build a rollback returns to. */
const beforeBackups = 'fcb2fbab3dfe6d463156bcec06e6d03a14761379';
const repo = fileURLToPath(new URL('..', import.meta.url));
const ns = 'rollback';
const primary = '198.51.100.10';
const backupIp = '198.51.100.20';

const suite = describeUnless(localOnly);
let cluster: Cluster;
let kc: KubeConfig;
let objects: CustomObjectsApi;
let operator: OperatorProcess | undefined;
let older: string;

/** The source tree of `commit`, beside this one's node_modules; returns its main.ts. */
function olderBuild(commit: string, dir: string): string {
  const out = join(dir, `outrigger-${commit}`);
  const archive = spawnSync('git', ['-C', repo, 'archive', commit, 'src', 'crds', 'package.json'], {
    maxBuffer: 64 << 20,
  });
  if (archive.status !== 0)
    throw new Error(
      `git archive ${commit} failed (this test needs the repository's history: a full clone): ${archive.stderr.toString()}`,
    );
  spawnSync('mkdir', ['-p', out]);
  const untar = spawnSync('tar', ['-x', '-C', out], { input: archive.stdout });
  if (untar.status !== 0) throw new Error(`tar failed: ${untar.stderr.toString()}`);
  symlinkSync(join(repo, 'node_modules'), join(out, 'node_modules'));
  return out;
}

beforeAll(async () => {
  if (localOnly !== undefined) return;
  cluster = await startCluster();
  kc = cluster.kubeConfig();
  objects = kc.makeApiClient(CustomObjectsApi);
  older = olderBuild(beforeBackups, mkdtempSync(join(cluster.dir ?? '/tmp', 'older-')));
  await installCrd(cluster.kubeconfigPath);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  const create = (name: string, drain: boolean) =>
    objects.createNamespacedCustomObject({
      group,
      version,
      plural,
      namespace: ns,
      body: {
        apiVersion,
        kind: 'ExternalBackend',
        metadata: { name },
        spec: {
          ports: [{ name: 'p', port: 5432 }],
          addresses: [{ ip: primary, drain }],
          backup: { addresses: [{ ip: backupIp }] },
        },
      },
    });
  // "needed": its only primary is drained, so its backup is published. "standby": not needed.
  await create('needed', true);
  await create('standby', false);
}, 300_000);

afterAll(async () => {
  if (localOnly !== undefined) return;
  await teardown(
    () => operator?.stop() ?? Promise.resolve(),
    () => cluster.stop(),
  );
}, 60_000);

/** The backend's slice as "ip ready|draining" strings, sorted. */
async function published(name: string): Promise<string[]> {
  const slice = await kc
    .makeApiClient(DiscoveryV1Api)
    .readNamespacedEndpointSlice({ namespace: ns, name: `${name}-outrigger-ipv4` })
    .catch((err: unknown) => {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    });
  return (slice?.endpoints ?? [])
    .flatMap((e) =>
      e.addresses.map(
        (ip) =>
          `${ip} ${e.conditions?.ready === true ? 'ready' : e.conditions?.terminating === true ? 'draining' : 'not-ready'}`,
      ),
    )
    .sort();
}

async function until(name: string, want: string[], what: string): Promise<void> {
  await waitFor(
    what,
    async () => ((await published(name)).join() === [...want].sort().join() ? true : undefined),
    30_000,
  );
}

async function specOf(name: string): Promise<Record<string, unknown>> {
  const o = (await objects.getNamespacedCustomObject({
    group,
    version,
    plural,
    namespace: ns,
    name,
  })) as {
    spec: Record<string, unknown>;
  };
  return o.spec;
}

async function run(main: string | undefined, log: string): Promise<void> {
  await operator?.stop();
  operator = await startOperator(
    cluster.kubeconfigPath,
    ['--status-batch-period=0'],
    join(cluster.dir ?? '/tmp', log),
    { installCrd: false, ...(main !== undefined ? { main } : {}) },
  );
}

suite('a rollback across spec.backup', () => {
  it('the current build publishes a needed backup, and keeps a standby one out', async () => {
    await run(undefined, 'current.log');
    await until('needed', [`${backupIp} ready`, `${primary} draining`], 'the backup published');
    await until('standby', [`${primary} ready`], 'the primary alone');
  }, 60_000);

  it('an older build with the current CRD withdraws the backups and never publishes them as primaries', async () => {
    await run(join(older, 'src/main.ts'), 'older.log');
    await until('needed', [`${primary} draining`], 'the backup withdrawn');
    await until('standby', [`${primary} ready`], 'the primary alone');
    // Level, not a moment: it stays so.
    await new Promise((r) => setTimeout(r, 2000));
    expect(await published('needed')).toEqual([`${primary} draining`]);
    expect(await published('standby')).toEqual([`${primary} ready`]);
  }, 90_000);

  it("the older build's own CRD prunes spec.backup, and nothing changes for the Service", async () => {
    kubectl(cluster.kubeconfigPath, [
      'apply',
      '--server-side',
      '--force-conflicts',
      '-f',
      join(older, 'crds/outrigger.dev_externalbackends.yaml'),
    ]);
    await waitFor('spec.backup pruned when read', async () =>
      (await specOf('needed')).backup === undefined ? true : undefined,
    );
    // A spec edit, so the older build reconciles with the object as its CRD now serves it.
    await objects.patchNamespacedCustomObject(
      {
        group,
        version,
        plural,
        namespace: ns,
        name: 'standby',
        body: { metadata: { labels: { touched: 'yes' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await new Promise((r) => setTimeout(r, 2000));
    expect(await published('needed')).toEqual([`${primary} draining`]);
    expect(await published('standby')).toEqual([`${primary} ready`]);
  }, 90_000);

  it('rolling forward: the current CRD and build again, and what the stored objects kept', async () => {
    await installCrd(cluster.kubeconfigPath);
    const kept = (await specOf('needed')).backup;
    await run(undefined, 'forward.log');
    // The older CRD pruned the field from what it served, not from what etcd stores: the status
    // writes of the older build did not drop it, so the backups come back with the current CRD.
    expect(kept).toEqual({ addresses: [{ ip: backupIp }], dnsNames: [], minReadyPrimaries: 1 });
    await until('needed', [`${backupIp} ready`, `${primary} draining`], 'the backup again');
    // A write of the object itself under the older CRD (the label patch above) stored it pruned:
    // that backend's backups are gone until its manifest is applied again.
    expect((await specOf('standby')).backup).toBeUndefined();
    await until('standby', [`${primary} ready`], 'the primary alone');
  }, 90_000);
});
