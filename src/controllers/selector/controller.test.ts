// The selector controller built from fakes of outrigger's own interfaces: in-memory informers
// that the test moves (FakeInformer), a writer that records and can fail, an Event recorder and a
// clock. The e2e suite proves the same paths against a real API server; these pin the decisions.
import { afterEach, describe, expect, it } from '@jest/globals';
import type { V1Endpoints, V1ObjectReference } from '@kubernetes/client-node';
import { pino } from 'pino';
import { labelEndpointsManagedBy, managerName } from '../../api/names.ts';
import { baseHoldMs } from '../../endpoints/conflict.ts';
import { annotationTriggerTime } from '../../endpoints/desired.ts';
import { pod, svc } from '../../endpoints/fixtures.test-helpers.ts';
import type { CachedEndpoints, CachedPod, CachedService } from '../../runtime/cached.ts';
import { FakeClock } from '../../runtime/clock.test-helpers.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import { FakeInformer } from '../../runtime/informer.test-helpers.ts';
import { createMetrics } from '../../runtime/metrics.ts';
import { EndpointsController, StaleCacheError } from './controller.ts';
import type { EndpointsWriter } from './writer.ts';
import { ApiError } from '../../runtime/rest.ts';

interface Call {
  readonly operation: 'create' | 'update' | 'delete';
  readonly key: string;
  readonly endpoints?: V1Endpoints;
}

/**
 * Stores what it is asked to write, as the API server would (a new resourceVersion each time),
 * and records every call. The watch is the test's to play: `deliver` puts what was stored into the
 * endpoints informer, and with `autoDeliver` every write is delivered before the call returns (a
 * watch with no lag). `fail` makes the next call reject.
 */
class FakeWriter implements EndpointsWriter {
  readonly calls: Call[] = [];
  autoDeliver = true;
  private readonly stored = new Map<string, V1Endpoints>();
  private nextVersion = 100;
  private failure: Error | undefined;
  private readonly cache: FakeInformer<CachedEndpoints>;

  constructor(cache: FakeInformer<CachedEndpoints>) {
    this.cache = cache;
  }

  fail(err: Error): void {
    this.failure = err;
  }

  create(ep: V1Endpoints): Promise<V1Endpoints> {
    return this.write('create', ep);
  }

  update(ep: V1Endpoints): Promise<V1Endpoints> {
    return this.write('update', ep);
  }

  delete(namespace: string, name: string): Promise<boolean> {
    const key = `${namespace}/${name}`;
    this.calls.push({ operation: 'delete', key });
    this.takeFailure();
    const existed = this.stored.delete(key) || this.cache.get(namespace, name) !== undefined;
    if (this.autoDeliver) this.cache.remove(namespace, name);
    return Promise.resolve(existed);
  }

  /** Lets the informer show what the server stored for `key` (the watch catching up). */
  deliver(key: string): void {
    const ep = this.stored.get(key);
    if (ep === undefined) throw new Error(`nothing stored for ${key}`);
    this.cache.set(ep);
  }

  private write(operation: 'create' | 'update', ep: V1Endpoints): Promise<V1Endpoints> {
    const key = `${ep.metadata?.namespace ?? ''}/${ep.metadata?.name ?? ''}`;
    this.calls.push({ operation, key, endpoints: ep });
    this.takeFailure();
    const stored: V1Endpoints = structuredClone({
      ...ep,
      metadata: {
        ...ep.metadata,
        uid: ep.metadata?.uid ?? `uid-${key}`,
        resourceVersion: String(this.nextVersion++),
      },
    });
    this.stored.set(key, stored);
    if (this.autoDeliver) this.cache.set(structuredClone(stored));
    return Promise.resolve(structuredClone(stored));
  }

  private takeFailure(): void {
    const err = this.failure;
    this.failure = undefined;
    if (err !== undefined) throw err;
  }
}

interface RecordedEvent {
  readonly object: V1ObjectReference;
  readonly type: string;
  readonly reason: string;
  readonly message: string;
}

class FakeEvents implements EventRecorder {
  readonly recorded: RecordedEvent[] = [];
  event(object: V1ObjectReference, type: 'Normal' | 'Warning', reason: string, message: string) {
    this.recorded.push({ object, type, reason, message });
  }
}

const ports = [{ name: 'http', port: 8080 }];

function setup(
  o: { batchPeriodMs?: number; endpoints?: CachedEndpoints[]; services?: CachedService[] } = {},
) {
  const clock = new FakeClock(Date.UTC(2026, 0, 2));
  const services = new FakeInformer<CachedService>([
    svc('web', { created: '2026-01-01T00:00:00Z' }),
    ...(o.services ?? []),
  ]);
  const pods = new FakeInformer<CachedPod>([pod('a', { ips: ['10.0.0.1'], ports })]);
  const endpoints = new FakeInformer<CachedEndpoints>(o.endpoints ?? []);
  const writer = new FakeWriter(endpoints);
  const events = new FakeEvents();
  const metrics = createMetrics({ defaultMetrics: false });
  const controller = new EndpointsController({
    services,
    pods,
    endpoints,
    writer,
    events,
    inScope: (ns) => ns === 'ns',
    workers: 1,
    batchPeriodMs: o.batchPeriodMs ?? 0,
    log: pino({ level: 'silent' }),
    metrics,
    clock,
  });
  return { clock, services, pods, endpoints, writer, events, metrics, controller };
}

type Setup = ReturnType<typeof setup>;

const ips = (ep: V1Endpoints | undefined): string[] =>
  (ep?.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip)).sort();

/** Another endpoints controller rewriting the Endpoints: same object, its label, a new version. */
function foreignRewrite(t: Setup): void {
  const current = t.endpoints.get('ns', 'web');
  if (current === undefined) throw new Error('no Endpoints to rewrite');
  t.endpoints.set({
    ...structuredClone(current),
    metadata: {
      ...structuredClone(current.metadata),
      resourceVersion: '900',
      labels: { [labelEndpointsManagedBy]: 'endpoint-controller' },
    },
  });
}

async function contested(t: Setup): Promise<number> {
  const m = await t.metrics.endpointsContested.get();
  return m.values[0]?.value ?? 0;
}

describe('EndpointsController, reconcile called directly', () => {
  it('creates the Endpoints of a selector Service, then writes nothing while they are right', async () => {
    const t = setup();
    await expect(t.controller.reconcile('ns/web')).resolves.toEqual({});
    expect(t.writer.calls.map((c) => [c.operation, c.key])).toEqual([['create', 'ns/web']]);
    const created = t.writer.calls[0]?.endpoints;
    expect(ips(created)).toEqual(['10.0.0.1']);
    expect(created?.subsets?.[0]?.ports).toEqual([{ name: 'http', port: 8080, protocol: 'TCP' }]);
    expect(created?.metadata?.labels?.[labelEndpointsManagedBy]).toBe(managerName);
    expect(created?.metadata?.annotations?.[annotationTriggerTime]).toBe('2026-01-01T00:00:00Z');
    expect(t.events.recorded).toEqual([]);

    await t.controller.reconcile('ns/web');
    expect(t.writer.calls).toHaveLength(1);
  });

  it('leaves a Service without a selector alone', async () => {
    const t = setup();
    t.services.set(svc('manual', { selector: null }));
    await expect(t.controller.reconcile('ns/manual')).resolves.toEqual({});
    expect(t.writer.calls).toEqual([]);
  });

  it('does not write again on a cache that lags its update: stale-cache error until the watch catches up', async () => {
    const t = setup();
    await t.controller.reconcile('ns/web');
    t.writer.autoDeliver = false;
    t.pods.set(pod('b', { ips: ['10.0.0.2'], ports }));
    await t.controller.reconcile('ns/web');
    expect(t.writer.calls.map((c) => c.operation)).toEqual(['create', 'update']);
    expect(ips(t.writer.calls[1]?.endpoints)).toEqual(['10.0.0.1', '10.0.0.2']);

    // The cache still shows the version just replaced, which lacks 10.0.0.2: planning on it
    // would write the same update again (and fail its precondition).
    expect(ips(t.endpoints.get('ns', 'web'))).toEqual(['10.0.0.1']);
    await expect(t.controller.reconcile('ns/web')).rejects.toThrow(StaleCacheError);
    await expect(t.controller.reconcile('ns/web')).rejects.toThrow(
      'endpoints cache is out of date: resourceVersion 100 was already replaced',
    );
    expect(t.writer.calls).toHaveLength(2);

    t.writer.deliver('ns/web');
    await expect(t.controller.reconcile('ns/web')).resolves.toEqual({});
    expect(t.writer.calls).toHaveLength(2);
  });

  it('reports a foreign writer, writes nothing and holds off; writes again when the hold ends', async () => {
    const t = setup();
    await t.controller.reconcile('ns/web');
    foreignRewrite(t);

    await expect(t.controller.reconcile('ns/web')).resolves.toEqual({ requeueAfterMs: baseHoldMs });
    expect(t.writer.calls).toHaveLength(1);
    expect(t.events.recorded.map((e) => [e.object.kind, e.object.name, e.reason])).toEqual([
      ['Service', 'web', 'EndpointsConflict'],
    ]);
    expect(t.events.recorded[0]?.message).toContain('writes nothing to it for 1m0s');
    expect(await contested(t)).toBe(1);

    await t.clock.advance(20_000);
    await expect(t.controller.reconcile('ns/web')).resolves.toEqual({
      requeueAfterMs: baseHoldMs - 20_000,
    });
    expect(t.writer.calls).toHaveLength(1);

    await t.clock.advance(baseHoldMs - 20_000);
    await expect(t.controller.reconcile('ns/web')).resolves.toEqual({});
    expect(t.writer.calls.map((c) => c.operation)).toEqual(['create', 'update']);
    expect(t.writer.calls[1]?.endpoints?.metadata?.labels?.[labelEndpointsManagedBy]).toBe(
      managerName,
    );
    expect(await contested(t)).toBe(0);
    expect(t.events.recorded).toHaveLength(1);
  });

  it('emits FailedToUpdateEndpoint and rethrows when an update gets a 409; the retry carries the trigger time', async () => {
    const t = setup();
    await t.controller.reconcile('ns/web');
    t.pods.set(pod('b', { ips: ['10.0.0.2'], ports, readySince: '2026-01-01T12:00:00Z' }));
    const conflict = new ApiError(409, 'Conflict', '{"reason":"Conflict"}', {});
    t.writer.fail(conflict);

    await expect(t.controller.reconcile('ns/web')).rejects.toBe(conflict);
    expect(t.events.recorded).toEqual([
      {
        object: {
          kind: 'Endpoints',
          apiVersion: 'v1',
          namespace: 'ns',
          name: 'web',
          uid: 'uid-ns/web',
        },
        type: 'Warning',
        reason: 'FailedToUpdateEndpoint',
        message: `Failed to update endpoint ns/web: ${String(conflict)}`,
      },
    ]);

    // The failed sync committed nothing: the retry still says what triggered the change.
    await t.controller.reconcile('ns/web');
    const retried = t.writer.calls[2];
    expect(retried?.operation).toBe('update');
    expect(retried?.endpoints?.metadata?.annotations?.[annotationTriggerTime]).toBe(
      '2026-01-01T12:00:00Z',
    );
    expect(t.events.recorded).toHaveLength(1);
  });

  it('emits FailedToCreateEndpoint and rethrows when a create fails, but not for a terminating namespace', async () => {
    const t = setup();
    t.writer.fail(new Error('connection refused'));
    await expect(t.controller.reconcile('ns/web')).rejects.toThrow('connection refused');
    expect(t.events.recorded.map((e) => [e.reason, e.message])).toEqual([
      [
        'FailedToCreateEndpoint',
        'Failed to create endpoint for service ns/web: Error: connection refused',
      ],
    ]);

    t.writer.fail(
      new ApiError(
        403,
        'Forbidden',
        'unable to create new content in namespace ns because it is being terminated: NamespaceTerminating',
        {},
      ),
    );
    await expect(t.controller.reconcile('ns/web')).resolves.toEqual({});
    expect(t.events.recorded).toHaveLength(1);
  });

  it("deletes outrigger's Endpoints of a deleted Service, and another writer's only when the deletion was seen", async () => {
    const t = setup();
    await t.controller.reconcile('ns/web');
    t.services.remove('ns', 'web');
    await t.controller.reconcile('ns/web');
    expect(t.writer.calls.map((c) => [c.operation, c.key])).toEqual([
      ['create', 'ns/web'],
      ['delete', 'ns/web'],
    ]);
    expect(t.endpoints.get('ns', 'web')).toBeUndefined();

    // No Service, and Endpoints another controller wrote, with no deletion seen: not ours to touch.
    t.endpoints.set({
      metadata: {
        namespace: 'ns',
        name: 'orphan',
        uid: 'o',
        resourceVersion: '1',
        labels: { [labelEndpointsManagedBy]: 'endpoint-controller' },
      },
    });
    await t.controller.reconcile('ns/orphan');
    expect(t.writer.calls).toHaveLength(2);
  });
});

describe('EndpointsController, driven by informer events through its queue', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  function start(t: Setup): void {
    const running = t.controller.run();
    stop = async () => {
      t.controller.shutDown();
      await running;
    };
  }

  it('syncs a Service added in scope, and ignores one out of scope', async () => {
    const t = setup();
    start(t);
    t.services.set(svc('api', { selector: { app: 'web' } }));
    t.services.set(svc('away', { ns: 'other' }));
    await t.clock.advance(0);
    expect(t.writer.calls.map((c) => [c.operation, c.key])).toEqual([['create', 'ns/api']]);
  });

  it('batches pod events for the batch period, then writes once', async () => {
    const t = setup({ batchPeriodMs: 1_000 });
    await t.controller.reconcile('ns/web');
    start(t);
    await t.clock.advance(0);
    expect(t.writer.calls).toHaveLength(1); // the start-up key finds nothing to do

    t.pods.set(pod('b', { ips: ['10.0.0.2'], ports }));
    await t.clock.advance(500);
    t.pods.set(pod('c', { ips: ['10.0.0.3'], ports }));
    expect(t.writer.calls).toHaveLength(1);
    await t.clock.advance(500);
    expect(t.writer.calls.map((c) => c.operation)).toEqual(['create', 'update']);
    expect(ips(t.writer.calls[1]?.endpoints)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  });

  it('retries a stale cache through the queue until the watch delivers, writing once', async () => {
    const t = setup();
    t.writer.autoDeliver = false;
    start(t);
    t.services.set(svc('web', { created: '2026-01-01T00:00:00Z' })); // a resync-like update
    await t.clock.advance(0);
    expect(t.writer.calls.map((c) => c.operation)).toEqual(['create']);
    t.writer.deliver('ns/web');

    t.pods.set(pod('b', { ips: ['10.0.0.2'], ports }));
    await t.clock.advance(0);
    expect(t.writer.calls.map((c) => c.operation)).toEqual(['create', 'update']);
    // The Service changes again before the watch shows the update: that sync fails as stale and
    // is retried with backoff, without a second update.
    t.services.set(svc('web', { created: '2026-01-01T00:00:00Z', labels: { tier: 'front' } }));
    await t.clock.advance(1_000);
    expect(t.writer.calls).toHaveLength(2);

    t.writer.deliver('ns/web');
    await t.clock.advance(10_000);
    expect(t.writer.calls.map((c) => c.operation)).toEqual(['create', 'update', 'update']);
    expect(t.writer.calls[2]?.endpoints?.metadata?.labels).toEqual({
      tier: 'front',
      [labelEndpointsManagedBy]: managerName,
    });
  });

  it('looks again when another writer relabels its Endpoints, and after the hold', async () => {
    const t = setup();
    start(t);
    t.services.set(svc('web', { created: '2026-01-01T00:00:00Z' }));
    await t.clock.advance(0);
    expect(t.writer.calls).toHaveLength(1);

    foreignRewrite(t);
    await t.clock.advance(0);
    expect(t.events.recorded.map((e) => e.reason)).toEqual(['EndpointsConflict']);
    expect(t.writer.calls).toHaveLength(1);

    await t.clock.advance(baseHoldMs - 1);
    expect(t.writer.calls).toHaveLength(1);
    await t.clock.advance(1);
    expect(t.writer.calls.map((c) => c.operation)).toEqual(['create', 'update']);
  });

  it('deletes the Endpoints when the Service is deleted, and at start-up those whose Service is gone', async () => {
    const t = setup({
      endpoints: [
        {
          metadata: {
            namespace: 'ns',
            name: 'gone',
            uid: 'g',
            resourceVersion: '1',
            labels: { [labelEndpointsManagedBy]: managerName },
          },
        },
      ],
    });
    start(t);
    await t.clock.advance(0);
    expect(t.writer.calls.map((c) => [c.operation, c.key])).toEqual([['delete', 'ns/gone']]);

    t.services.set(svc('web', { created: '2026-01-01T00:00:00Z' }));
    await t.clock.advance(0);
    t.services.remove('ns', 'web');
    await t.clock.advance(0);
    expect(t.writer.calls.map((c) => [c.operation, c.key])).toEqual([
      ['delete', 'ns/gone'],
      ['create', 'ns/web'],
      ['delete', 'ns/web'],
    ]);
  });

  it("deletes another writer's Endpoints once it sees their Service deleted, as upstream", async () => {
    const theirs = (name: string): CachedEndpoints => ({
      metadata: {
        namespace: 'ns',
        name,
        uid: name,
        resourceVersion: '1',
        labels: { [labelEndpointsManagedBy]: 'endpoint-controller' },
      },
    });
    const t = setup({
      services: [svc('theirs', { selector: null })],
      endpoints: [theirs('theirs'), theirs('orphan')],
    });
    start(t);
    await t.clock.advance(0);
    expect(t.writer.calls).toEqual([]);
    t.services.remove('ns', 'theirs');
    await t.clock.advance(0);
    expect(t.writer.calls.map((c) => [c.operation, c.key])).toEqual([['delete', 'ns/theirs']]);
  });
});
