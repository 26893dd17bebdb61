// The decisions of one reconcile as data: operations with their preconditions, the failure →
// Ready reason mapping, the status batch window and what each outcome plans next.
import { describe, expect, it } from '@jest/globals';
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import { labelSliceManagedBy, managerName } from '../../api/names.ts';
import { externalBackendSpec } from '../../api/externalbackend.ts';
import { annotationOverCapacity } from '../../endpoints/desired.ts';
import { cacheWaitMs, planAfterFailure, planReconcile } from './decide.ts';
import { ownerReference, type BackendRef } from './owner.ts';
import {
  CacheLagError,
  ForeignObjectError,
  classifyFailure,
  foreignRecheckMs,
  statusWaitMs,
} from './finish.ts';
import type { BackendFacts, Gathered } from './gather.ts';
import { applyOperation, onSliceTaken, planOperations } from './operations.ts';
import { planBackend, type BackendWorld } from './plan.ts';
import { ApiError } from '../../runtime/rest.ts';

const ref: BackendRef = { namespace: 'shop', name: 'db', uid: 'db-uid' };
const spec = externalBackendSpec.parse({
  ports: [{ name: 'pg', port: 5432 }],
  addresses: [{ ip: '192.0.2.1' }],
});
const settings = {
  maxProbeTargetsPerNamespace: 10,
  maxEndpointsPerSlice: 100,
  certificateWarningMs: 0,
  statusBatchMs: 1000,
};
const service = {
  metadata: { namespace: 'shop', name: 'db', ownerReferences: [ownerReference(ref)] },
  spec: { clusterIP: '10.0.0.1', ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] },
};

function world(over: Partial<BackendWorld> = {}): BackendWorld {
  return {
    ref,
    spec,
    previous: undefined,
    judge: () => undefined,
    drainEntries: new Set(),
    resolutions: new Map(),
    health: new Map(),
    probeRoom: 10,
    probeLimit: 10,
    service,
    endpoints: undefined,
    slices: [],
    ownedServices: [service],
    ownedEndpoints: [],
    pods: [],
    maxEndpointsPerSlice: 100,
    now: 5000,
    ...over,
  };
}

function gathered(facts: Partial<BackendFacts> = {}, w: BackendWorld | null = world()) {
  const backend: BackendFacts = {
    ref,
    resourceVersion: '7',
    generation: 1,
    previous: undefined,
    spec: externalBackendSpec.safeParse(spec),
    podSelectorServed: true,
    cachesCover: true,
    statusWrittenAt: undefined,
    checkSourcesLost: undefined,
    ...(w !== null ? { world: w } : {}),
    ...facts,
  };
  const g: Gathered = {
    key: 'shop/db',
    namespace: 'shop',
    name: 'db',
    now: 5000,
    settings,
    backend,
  };
  return g;
}

describe('planOperations', () => {
  it('applies with the resourceVersion it judged and drops the over-capacity mark it no longer sets', () => {
    const first = planBackend(world());
    const ep = first.endpoints?.op === 'create' ? first.endpoints.want : undefined;
    if (ep === undefined) throw new Error('expected an Endpoints create');
    const current: V1Endpoints = {
      ...ep,
      subsets: [],
      metadata: {
        ...ep.metadata,
        resourceVersion: '7',
        annotations: { [annotationOverCapacity]: 'truncated' },
      },
    };
    const ops = planOperations(
      planBackend(world({ endpoints: current, ownedEndpoints: [current] })),
    );
    const apply = ops.find((o) => o.op === 'apply');
    expect(apply).toMatchObject({
      kind: 'Endpoints',
      obj: { metadata: { name: 'db', resourceVersion: '7' } },
      dropAnnotations: [annotationOverCapacity],
      events: [],
    });
  });

  it('drops nothing when the current object carries no mark', () => {
    const want: V1Endpoints = { metadata: { name: 'db', namespace: 'shop' } };
    const op = applyOperation('Endpoints', want, { metadata: { resourceVersion: '3' } });
    expect(op).toMatchObject({ dropAnnotations: [], obj: { metadata: { resourceVersion: '3' } } });
  });

  it('writes nothing for a refused plan', () => {
    const plan = planBackend(world({ service: undefined, ownedServices: [] }));
    expect(plan.refused).toBeUndefined();
    const refused = planBackend(
      world({ service: { ...service, spec: { ...service.spec, selector: { app: 'x' } } } }),
    );
    expect(refused.refused?.reason).toBe('ServiceHasSelector');
    expect(planOperations(refused)).toEqual([]);
  });

  it('creates the Service with its Event, then Endpoints and slices, in that order', () => {
    const ops = planOperations(planBackend(world({ service: undefined, ownedServices: [] })));
    expect(ops.map((o) => `${o.op} ${'kind' in o ? o.kind : ''}`)).toEqual([
      'create Service',
      'create Endpoints',
      'create EndpointSlice',
    ]);
    expect(ops[0]?.op === 'create' ? ops[0].events : []).toEqual([
      { type: 'Normal', reason: 'ServiceCreated', message: 'Created selectorless Service db' },
    ]);
  });
});

describe('onSliceTaken', () => {
  const want: V1EndpointSlice = {
    addressType: 'IPv4',
    endpoints: [],
    metadata: { name: 'db-outrigger-ipv4', namespace: 'shop' },
  };
  const existing = (meta: V1EndpointSlice['metadata']): V1EndpointSlice => ({
    ...want,
    metadata: { ...want.metadata, resourceVersion: '9', ...meta },
  });

  it('retries when the slice is gone again or carries our labels (the cache lags)', () => {
    expect(onSliceTaken(ref, want, undefined).next).toBe('retry');
    const labelled = existing({
      ownerReferences: [ownerReference(ref)],
      labels: { [labelSliceManagedBy]: managerName },
    });
    expect(onSliceTaken(ref, want, labelled).next).toBe('retry');
  });

  it("refuses another's slice, naming who holds it", () => {
    const taken = onSliceTaken(ref, want, existing({ labels: { [labelSliceManagedBy]: 'x' } }));
    expect(taken).toEqual({
      next: 'refuse',
      message: expect.stringContaining('it is managed by x; outrigger will not overwrite it'),
    });
  });

  it('restores its own slice that lost its labels, on the version found, with an Event', () => {
    const taken = onSliceTaken(ref, want, existing({ ownerReferences: [ownerReference(ref)] }));
    expect(taken).toMatchObject({
      next: 'restore',
      operation: {
        op: 'apply',
        obj: { metadata: { resourceVersion: '9' } },
        events: [{ type: 'Warning', reason: 'EndpointSliceRestored' }],
      },
    });
  });
});

describe('classifyFailure', () => {
  it('retries cache lag quietly, reports a foreign object and looks again, reports other errors and retries', () => {
    const lag = new CacheLagError('lag');
    expect(classifyFailure(lag)).toEqual({ retry: lag });
    expect(classifyFailure(new ForeignObjectError('theirs'))).toEqual({
      problem: { reason: 'EndpointsConflict', message: 'theirs' },
      requeueAfterMs: foreignRecheckMs,
    });
    const api = new ApiError(500, 'boom', JSON.stringify({ message: 'etcd is down' }), {});
    expect(classifyFailure(api)).toEqual({
      problem: { reason: 'WriteFailed', message: 'etcd is down' },
      retry: api,
    });
  });
});

describe('statusWaitMs', () => {
  it('holds a write within the batch window, not a first write or a new generation', () => {
    expect(statusWaitMs(undefined, 1000, 5000, false)).toBe(0);
    expect(statusWaitMs(4500, 1000, 5000, false)).toBe(500);
    expect(statusWaitMs(4500, 1000, 5000, true)).toBe(0);
    expect(statusWaitMs(3000, 1000, 5000, false)).toBe(0);
  });
});

describe('planReconcile', () => {
  it('forgets a backend that is gone', () => {
    const g: Gathered = { key: 'shop/db', namespace: 'shop', name: 'db', now: 0, settings };
    expect(planReconcile(g)).toMatchObject({ forget: true, operations: [] });
  });

  it('waits for the caches of a namespace that has just started being watched', () => {
    const plan = planReconcile(gathered({ cachesCover: false }, null));
    expect(plan).toEqual({ forget: false, operations: [], requeueAfterMs: cacheWaitMs });
  });

  it('holds an invalid spec: no probes, no writes, Ready False InvalidSpec', () => {
    const plan = planReconcile(
      gathered({ spec: externalBackendSpec.safeParse({ ports: 'no' }) }, null),
    );
    expect(plan.keep).toEqual({ probes: [], names: [], limited: false, events: [] });
    expect(plan.operations).toEqual([]);
    const ready = plan.finish?.status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(plan.finish?.events.map((e) => e.reason)).toEqual(['InvalidSpec']);
  });

  it('batches a status write that comes within the window, Events and all', () => {
    const first = planReconcile(gathered());
    expect(first.finish?.status).toBeDefined();
    const previous = first.finish?.status;
    const again = planReconcile(
      gathered(
        { statusWrittenAt: 4800, previous },
        world({ previous, judge: () => 'denied: test' }),
      ),
    );
    expect(again.finish?.status).toBeUndefined();
    expect(again.finish?.events).toEqual([]);
    expect(again.requeueAfterMs).toBe(800);
  });

  it('after a write failure plans the status with the reason, and looks again when asked', () => {
    const plan = planReconcile(gathered());
    const after = planAfterFailure(gathered(), plan, classifyFailure(new ForeignObjectError('x')));
    const ready = after.finish?.status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'EndpointsConflict', message: 'x' });
    expect(after.requeueAfterMs).toBe(foreignRecheckMs);
    const lag = planAfterFailure(gathered(), plan, classifyFailure(new CacheLagError('lag')));
    expect(lag.finish).toBeUndefined();
    expect(lag.requeueAfterMs).toBeUndefined();
  });
});
