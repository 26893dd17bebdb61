// The ExternalBackend controller built from fakes of outrigger's own interfaces: the paths that
// otherwise only the e2e suite reaches (a lagging cache, someone else's object in the way, a 409,
// adoption, the address policy changing under a backend) and the order of writes and Events.
import { describe, expect, it } from '@jest/globals';
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import { labelEndpointsManagedBy } from '../../api/names.ts';
import { adoptEndpointsAnnotation } from '../../api/externalbackend.ts';
import type { ExternalBackendStatus } from '../../api/externalbackendstatus.ts';
import type { CachedExternalBackend, CachedPolicy } from '../../api/resources.ts';
import type { CachedNamespace } from '../../runtime/transforms.ts';
import type { CachedProbeSource, CachedService } from '../../runtime/cached.ts';
import { FakeClock } from '../../runtime/clock.test-helpers.ts';
import { createLogger } from '../../runtime/log.ts';
import { createMetrics } from '../../runtime/metrics.ts';
import { ExternalBackendController } from './controller.ts';
import { CacheLagError } from './finish.ts';
import { ownerReference } from './owner.ts';
import {
  apiError,
  FakeCache,
  FakeResolver,
  FakeScheduler,
  FakeWriter,
  fakeEvents,
} from './fakes.test-helpers.ts';

const key = 'shop/db';
const uid = 'db-uid';

function backend(ips: string[], over: Partial<CachedExternalBackend> = {}): CachedExternalBackend {
  return {
    apiVersion: 'outrigger.dev/v1alpha1',
    kind: 'ExternalBackend',
    metadata: { namespace: 'shop', name: 'db', uid, generation: ips.length, resourceVersion: '1' },
    spec: { ports: [{ name: 'pg', port: 5432 }], addresses: ips.map((ip) => ({ ip })) },
    ...over,
  };
}

const grant = (cidr: string): CachedPolicy => ({
  metadata: { name: 'grants' },
  spec: { rules: [{ name: 'shop', namespaceSelector: {}, cidrs: [cidr] }] },
});

/** The hand-made selectorless Service a backend publishes into (read only). */
const service: CachedService = {
  metadata: { namespace: 'shop', name: 'db', resourceVersion: '2' },
  spec: { clusterIP: '10.0.0.1', ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] },
};

function setup() {
  const log: string[] = [];
  const caches = {
    backends: new FakeCache<CachedExternalBackend>(),
    services: new FakeCache<CachedService>(),
    endpoints: new FakeCache<V1Endpoints>(),
    slices: new FakeCache<V1EndpointSlice>(),
    policies: new FakeCache<CachedPolicy>(),
    namespaces: new FakeCache<CachedNamespace>(),
    secrets: new FakeCache<CachedProbeSource>(),
    configMaps: new FakeCache<CachedProbeSource>(),
  };
  caches.namespaces.put({ metadata: { name: 'shop', labels: {} } });
  caches.policies.put(grant('192.0.2.0/24'));
  caches.services.put(service);
  const writer = new FakeWriter(log);
  const events = fakeEvents(log);
  const controller = new ExternalBackendController({
    ...caches,
    pods: undefined,
    maxProbeTargetsPerNamespace: 100,
    certificateWarningMs: 0,
    maxEndpointsPerSlice: 100,
    statusBatchMs: 0,
    writer,
    events,
    denyList: { denies: () => undefined, nodeAddress: () => undefined },
    scheduler: new FakeScheduler(),
    resolver: new FakeResolver(),
    clock: new FakeClock(),
    workers: 1,
    inScope: () => true,
    log: createLogger('silent'),
    metrics: createMetrics({ defaultMetrics: false }),
  });
  let delivered = 0;
  /** The watches catch up with every write made so far, each with the version it was given. */
  const deliver = (): void => {
    for (; delivered < writer.calls.length; delivered++) {
      const c = writer.calls[delivered];
      const rv = writer.versions[delivered];
      if (c === undefined || rv === undefined) continue;
      const at = <T extends { metadata?: object }>(o: T): T => ({
        ...o,
        metadata: { ...o.metadata, resourceVersion: rv },
      });
      if ((c.call === 'create' || c.call === 'apply') && c.kind === 'Endpoints')
        caches.endpoints.put(at(c.obj as V1Endpoints));
      if ((c.call === 'create' || c.call === 'apply') && c.kind === 'EndpointSlice')
        caches.slices.put(at(c.obj as V1EndpointSlice));
      if (c.call === 'patchStatus') {
        const xb = caches.backends.get('shop', 'db');
        if (xb !== undefined) caches.backends.put(at({ ...xb, status: c.status }));
      }
    }
  };
  const status = (): ExternalBackendStatus | undefined => writer.of('patchStatus').at(-1)?.status;
  const ready = () => status()?.conditions?.find((c) => c.type === 'Ready');
  /** The addresses of the backend's slice as last written (none once it is deleted). */
  const published = (): string[] => {
    const last = writer.calls.filter((c) => 'kind' in c && c.kind === 'EndpointSlice').at(-1);
    if (last === undefined || !('obj' in last)) return [];
    return ((last.obj as V1EndpointSlice).endpoints ?? []).map((e) => e.addresses[0] ?? '');
  };
  return { log, caches, writer, events, controller, deliver, status, ready, published };
}

/** A change to the backend's spec (a new generation), as the watch delivers it. */
function respec(t: ReturnType<typeof setup>, ips: string[], rv: string): void {
  const xb = t.caches.backends.get('shop', 'db');
  t.caches.backends.put(
    backend(ips, {
      metadata: {
        ...xb?.metadata,
        generation: (xb?.metadata?.generation ?? 0) + 1,
        resourceVersion: rv,
      },
      ...(xb?.status !== undefined ? { status: xb.status } : {}),
    }),
  );
}

describe('a lagging cache (the mutation cache reads through)', () => {
  it('writes neither an unchanged status nor an unchanged object twice, and applies on the version it wrote', async () => {
    const t = setup();
    t.caches.backends.put(backend(['192.0.2.1']));
    await t.controller.reconcile(key);
    expect(t.writer.calls.map((c) => c.call)).toEqual(['create', 'create', 'patchStatus']);
    // The status write has not reached the cache: the next reconcile knows it anyway.
    await t.controller.reconcile(key);
    expect(t.writer.of('patchStatus')).toHaveLength(1);
    t.deliver();
    const endpointsVersion = t.caches.endpoints.get('shop', 'db')?.metadata?.resourceVersion;

    respec(t, ['192.0.2.1', '192.0.2.2'], '10');
    await t.controller.reconcile(key);
    const applies = t.writer.of('apply');
    expect(applies.map((a) => [a.kind, a.obj.metadata?.resourceVersion])).toEqual([
      ['Endpoints', endpointsVersion],
      ['EndpointSlice', t.caches.slices.list()[0]?.metadata?.resourceVersion],
    ]);
    const first = applies[0];
    if (first === undefined) throw new Error('expected an apply of the Endpoints');
    const written = t.writer.versions[t.writer.calls.indexOf(first)];

    // Nothing delivered yet: the same world again is no change, not a second apply.
    await t.controller.reconcile(key);
    expect(t.writer.of('apply')).toHaveLength(2);

    // A further change applies on the version outrigger's own write made, not the cached one.
    respec(t, ['192.0.2.1', '192.0.2.2', '192.0.2.3'], '11');
    await t.controller.reconcile(key);
    const next = t.writer.of('apply').filter((a) => a.kind === 'Endpoints');
    expect(next.map((a) => a.obj.metadata?.resourceVersion)).toEqual([endpointsVersion, written]);
    expect(t.published()).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.3']);
  });

  it("forgets its unseen writes of a backend's objects when the backend is gone", async () => {
    const t = setup();
    t.caches.backends.put(backend(['192.0.2.1']));
    await t.controller.reconcile(key);
    t.deliver();
    respec(t, ['192.0.2.1', '192.0.2.2'], '10');
    await t.controller.reconcile(key);
    // The Endpoints and slice applies and the status write, none of them watched yet.
    expect(t.controller.unseenWrites).toBe(3);
    // The backend goes; garbage collection of its objects may never be watched (the namespace
    // leaving scope), so the memory cannot wait for their deletions.
    t.caches.backends.remove('shop', 'db');
    await t.controller.reconcile(key);
    expect(t.controller.unseenWrites).toBe(0);
  });
});

describe('a 409 on an apply', () => {
  it('writes no status and says nothing, then retries from the fresh cache with its version', async () => {
    const t = setup();
    t.caches.backends.put(backend(['192.0.2.1']));
    await t.controller.reconcile(key);
    t.deliver();
    const before = { calls: t.writer.calls.length, events: t.events.recorded.length };
    t.writer.fail = (c) =>
      c.call === 'apply' ? apiError(409, 'the object has been modified') : undefined;
    respec(t, ['192.0.2.1', '192.0.2.2'], '10');
    expect((await t.controller.reconcile(key)).error).toBeInstanceOf(CacheLagError);
    expect(t.writer.calls.slice(before.calls).map((c) => c.call)).toEqual(['apply']);
    expect(t.events.recorded).toHaveLength(before.events);

    // Someone else's write arrives; the retry applies on exactly that version.
    const theirs = t.caches.endpoints.get('shop', 'db');
    t.caches.endpoints.put({ ...theirs, metadata: { ...theirs?.metadata, resourceVersion: '77' } });
    t.writer.fail = () => undefined;
    await t.controller.reconcile(key);
    const applied = t.writer.of('apply').filter((a) => a.kind === 'Endpoints');
    expect(applied.at(-1)?.obj.metadata?.resourceVersion).toBe('77');
  });
});

describe('a foreign object', () => {
  it('never overwrites a slice someone else holds under its name; Ready says so, once the status is written', async () => {
    const t = setup();
    const other = {
      apiVersion: 'outrigger.dev/v1alpha1',
      kind: 'ExternalBackend',
      name: 'x',
      uid: 'x',
    };
    t.writer.serverSlices.set('db-outrigger-ipv4', {
      addressType: 'IPv4',
      endpoints: [],
      metadata: {
        namespace: 'shop',
        name: 'db-outrigger-ipv4',
        ownerReferences: [{ ...other, controller: true }],
      },
    });
    t.writer.fail = (c) =>
      c.call === 'create' && c.kind === 'EndpointSlice' ? apiError(409, 'exists') : undefined;
    t.caches.backends.put(backend(['192.0.2.1']));
    const result = await t.controller.reconcile(key);
    expect(result.requeueAfterMs).toBe(10_000);
    expect(t.writer.of('apply')).toEqual([]);
    expect(t.ready()).toMatchObject({ status: 'False', reason: 'EndpointsConflict' });
    expect(t.ready()?.message).toContain(
      'it is owned by ExternalBackend x; outrigger will not overwrite it',
    );
    expect(t.events.recorded.map((e) => e.reason)).toContain('EndpointsConflict');
    expect(t.log.indexOf('event EndpointsConflict')).toBeGreaterThan(
      t.log.indexOf('patchStatus db'),
    );
  });

  it("refuses another controller's Endpoints without writing anything but status", async () => {
    const t = setup();
    t.caches.endpoints.put({
      metadata: {
        namespace: 'shop',
        name: 'db',
        resourceVersion: '5',
        labels: { [labelEndpointsManagedBy]: 'someone.example' },
      },
    });
    t.caches.backends.put(backend(['192.0.2.1']));
    await t.controller.reconcile(key);
    expect(t.writer.calls.map((c) => c.call)).toEqual(['patchStatus']);
    expect(t.ready()).toMatchObject({ status: 'False', reason: 'EndpointsConflict' });
  });
});

describe('adoption of a hand-written Endpoints', () => {
  const handWritten: V1Endpoints = {
    metadata: { namespace: 'shop', name: 'db', resourceVersion: '7' },
    subsets: [
      { addresses: [{ ip: '192.0.2.1' }], ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] },
    ],
  };

  it('leaves it alone without the opt-in, publishing the slices beside it', async () => {
    const t = setup();
    t.caches.endpoints.put(handWritten);
    t.caches.backends.put(backend(['192.0.2.1']));
    await t.controller.reconcile(key);
    t.deliver();
    await t.controller.reconcile(key);
    expect(t.writer.calls.filter((c) => 'kind' in c && c.kind === 'Endpoints')).toEqual([]);
    const held = t.status()?.conditions?.find((c) => c.type === 'ForeignEndpoints');
    expect(held?.reason).toBe('EndpointsHeldByAnotherWriter');
  });

  it('with the opt-in, takes it over in place on the version it judged, once its slices are published', async () => {
    const t = setup();
    t.caches.endpoints.put(handWritten);
    const annotations = { [adoptEndpointsAnnotation]: 'true' };
    t.caches.backends.put(
      backend(['192.0.2.1'], { metadata: { ...backend([]).metadata, generation: 1, annotations } }),
    );
    await t.controller.reconcile(key);
    // The slices are being published: adoption waits for them.
    expect(t.writer.of('apply')).toEqual([]);
    t.deliver();
    await t.controller.reconcile(key);
    const adopt = t.writer.of('apply');
    expect(adopt.map((a) => [a.kind, a.obj.metadata?.resourceVersion])).toEqual([
      ['Endpoints', '7'],
    ]);
    expect(adopt[0]?.obj.metadata?.ownerReferences).toEqual([
      ownerReference({ namespace: 'shop', name: 'db', uid }),
    ]);
    expect(t.log.indexOf('event EndpointsAdopted')).toBeGreaterThan(
      t.log.indexOf('apply Endpoints db'),
    );
  });
});

describe('the address policy changing under a backend', () => {
  it('freezes what is published when the grants go, and withdraws an address a narrowed grant no longer covers', async () => {
    const t = setup();
    t.caches.backends.put(backend(['192.0.2.1']));
    await t.controller.reconcile(key);
    t.deliver();
    expect(t.published()).toEqual(['192.0.2.1']);

    // No grant object: decisions freeze. What is published stays; a new address waits.
    t.caches.policies.remove('', 'grants');
    respec(t, ['192.0.2.1', '192.0.2.2'], '10');
    await t.controller.reconcile(key);
    t.deliver();
    expect(t.published()).toEqual(['192.0.2.1']);
    const frozen = t.status()?.conditions?.find((c) => c.type === 'AddressPolicyFrozen');
    expect(frozen?.status).toBe('True');
    expect(t.events.recorded.map((e) => e.reason)).toContain('AddressPolicyFrozen');

    // A grant that no longer covers the published address: it is withdrawn.
    t.caches.policies.put(grant('198.51.100.0/24'));
    await t.controller.reconcile(key);
    expect(t.published()).toEqual([]);
    const states = t.status()?.addresses?.map((a) => [a.ip, a.state]);
    expect(states).toEqual([
      ['192.0.2.1', 'Denied'],
      ['192.0.2.2', 'Denied'],
    ]);
  });
});

describe('Events only after the writes they describe', () => {
  it('says nothing of a status whose write failed, and says it once the write succeeds', async () => {
    const t = setup();
    // An address no grant covers: Ready goes False, which the status write announces.
    t.caches.backends.put(backend(['203.0.113.1']));
    t.writer.fail = (c) => (c.call === 'patchStatus' ? apiError(500, 'etcd is down') : undefined);
    await expect(t.controller.reconcile(key)).rejects.toThrow('etcd is down');
    expect(t.events.recorded).toEqual([]);

    t.deliver();
    t.writer.fail = () => undefined;
    await t.controller.reconcile(key);
    expect(t.ready()).toMatchObject({ status: 'False', reason: 'NoReadyAddresses' });
    expect(t.events.recorded.map((e) => e.reason)).toEqual(['AddressDenied', 'NoReadyAddresses']);
    expect(t.log.indexOf('event AddressDenied')).toBeGreaterThan(
      t.log.lastIndexOf('patchStatus db'),
    );
    expect(t.log.indexOf('event NoReadyAddresses')).toBeGreaterThan(
      t.log.lastIndexOf('patchStatus db'),
    );
  });

  it('says nothing of a Service whose create failed; the status says why, then the Event follows the create', async () => {
    const t = setup();
    t.caches.services.remove('shop', 'db');
    t.writer.fail = (c) =>
      c.call === 'create' && c.kind === 'Service' ? apiError(500, 'quota exceeded') : undefined;
    t.caches.backends.put(backend(['192.0.2.1']));
    expect(String((await t.controller.reconcile(key)).error)).toContain('quota exceeded');
    expect(t.events.recorded.map((e) => e.reason)).toEqual(['WriteFailed']);
    expect(t.ready()).toMatchObject({
      status: 'False',
      reason: 'WriteFailed',
      message: 'quota exceeded',
    });

    t.writer.fail = () => undefined;
    t.deliver();
    await t.controller.reconcile(key);
    expect(t.events.recorded.map((e) => e.reason)).toEqual([
      'WriteFailed',
      'ServiceCreated',
      'Ready',
    ]);
    expect(t.log.indexOf('event ServiceCreated')).toBe(t.log.indexOf('create Service db') + 1);
  });
});
