import { describe, expect, it } from '@jest/globals';
import type { V1Endpoints } from '@kubernetes/client-node';
import { labelEndpointsManagedBy, managerName } from '../../api/names.ts';
import { baseHoldMs, initialState, type ContestState } from '../../endpoints/conflict.ts';
import { annotationTriggerTime } from '../../endpoints/desired.ts';
import { pod, svc } from '../../endpoints/fixtures.test-helpers.ts';
import { nextTriggerTime } from '../../endpoints/triggertime.ts';
import { formatDuration, holding, planSync, writeFailure, type Observed } from './plan.ts';
import { ApiError } from '../../runtime/rest.ts';

const now = Date.UTC(2026, 0, 2);
const service = svc('web', { created: '2026-01-01T00:00:00Z' });
const pods = [pod('a', { ips: ['10.0.0.1'], ports: [{ name: 'http', port: 8080 }] })];

function observed(o: Partial<Observed> = {}): Observed {
  return {
    namespace: 'ns',
    name: 'web',
    service,
    serviceDeleted: false,
    pods,
    endpoints: undefined,
    stale: false,
    contest: initialState,
    trigger: undefined,
    ...o,
  };
}

function endpoints(managedBy: string | undefined, rv = '7'): V1Endpoints {
  return {
    metadata: {
      namespace: 'ns',
      name: 'web',
      uid: 'ep-uid',
      resourceVersion: rv,
      labels: managedBy === undefined ? {} : { [labelEndpointsManagedBy]: managedBy },
    },
    subsets: [],
  };
}

const ours: ContestState = { ...initialState, ours: true };

describe('planSync', () => {
  it('creates the Endpoints of a selector Service, with the Service creation as trigger time', () => {
    const plan = planSync(observed(), now);
    if (plan.kind !== 'write') throw new Error(`planned ${plan.kind}`);
    expect(plan.operation).toBe('create');
    expect(plan.endpoints.metadata?.labels?.[labelEndpointsManagedBy]).toBe(managerName);
    expect(plan.endpoints.subsets?.[0]?.addresses?.map((a) => a.ip)).toEqual(['10.0.0.1']);
    expect(plan.endpoints.metadata?.annotations?.[annotationTriggerTime]).toBe(
      '2026-01-01T00:00:00Z',
    );
    expect(plan.triggerTime).toEqual(new Date('2026-01-01T00:00:00Z'));
    // Remembered only after the write: the memory it will commit, and our write noted as ours.
    expect(plan.trigger).toEqual(nextTriggerTime(undefined, service, pods).state);
    expect(plan.afterWrite.ours).toBe(true);
    expect(holding(plan)).toBe(false);
  });

  it('writes nothing when the Endpoints already say it, and moves the trigger memory on', () => {
    const first = planSync(observed(), now);
    if (first.kind !== 'write') throw new Error(`planned ${first.kind}`);
    const plan = planSync(
      observed({ endpoints: { ...first.endpoints, metadata: { ...first.endpoints.metadata } } }),
      now,
    );
    expect(plan.kind).toBe('upToDate');
  });

  it('refuses to plan on a cache that still shows the version outrigger replaced', () => {
    const plan = planSync(observed({ endpoints: endpoints(managerName, '41'), stale: true }), now);
    expect(plan).toEqual({
      kind: 'staleCache',
      error: 'endpoints cache is out of date: resourceVersion 41 was already replaced',
    });
  });

  it('reports a conflict and holds when another writer relabelled Endpoints outrigger wrote', () => {
    const plan = planSync(
      observed({ endpoints: endpoints('endpoint-controller'), contest: ours }),
      now,
    );
    if (plan.kind !== 'conflict') throw new Error(`planned ${plan.kind}`);
    expect(plan.holdMs).toBe(baseHoldMs);
    expect(plan.contest).toEqual({
      ours: false,
      conflicts: 1,
      lastConflictAt: now,
      holdUntil: now + baseHoldMs,
    });
    expect(holding(plan)).toBe(true);
    expect(plan.event.object).toEqual({
      kind: 'Service',
      apiVersion: 'v1',
      namespace: 'ns',
      name: 'web',
      uid: 'svc-web',
    });
    expect(plan.event.reason).toBe('EndpointsConflict');
    expect(plan.event.message).toContain(
      "rewritten by kube-controller-manager's endpoints controller (managed-by: endpoint-controller)",
    );
    expect(plan.event.message).toContain('writes nothing to it for 1m0s (conflict 1 in a row');
    expect(plan.event.message).toContain('up to 30m0s');
  });

  it('holds until the hold ends, then takes the Endpoints over', () => {
    const held: ContestState = {
      ours: false,
      conflicts: 1,
      lastConflictAt: now,
      holdUntil: now + baseHoldMs,
    };
    const during = planSync(
      observed({ endpoints: endpoints('endpoint-controller'), contest: held }),
      now + 20_000,
    );
    expect(during).toEqual({ kind: 'hold', contest: held, requeueAfterMs: baseHoldMs - 20_000 });
    const after = planSync(
      observed({ endpoints: endpoints('endpoint-controller'), contest: held }),
      now + baseHoldMs,
    );
    if (after.kind !== 'write') throw new Error(`planned ${after.kind}`);
    expect(after.operation).toBe('update');
    expect(after.endpoints.metadata?.labels?.[labelEndpointsManagedBy]).toBe(managerName);
  });

  it('takes over Endpoints another controller wrote before outrigger ever did, without a conflict', () => {
    const plan = planSync(observed({ endpoints: endpoints('endpoint-controller') }), now);
    expect(plan.kind).toBe('write');
  });

  it('deletes the Endpoints of a gone Service when they are ours or its deletion was seen', () => {
    const gone = { service: undefined, pods: [] };
    const cases: [Partial<Observed>, boolean][] = [
      [{ endpoints: endpoints(managerName) }, true],
      [{ endpoints: endpoints('endpoint-controller') }, false],
      [{ endpoints: endpoints('endpoint-controller'), serviceDeleted: true }, true],
      [{ endpoints: undefined }, false],
      [{ endpoints: undefined, serviceDeleted: true }, true],
    ];
    for (const [o, deleteEndpoints] of cases) {
      expect(planSync(observed({ ...gone, ...o }), now)).toEqual({
        kind: 'serviceGone',
        deleteEndpoints,
      });
    }
  });

  it('leaves Services without a selector and ExternalName Services alone', () => {
    expect(planSync(observed({ service: svc('web', { selector: null }) }), now).kind).toBe(
      'notSelector',
    );
    expect(planSync(observed({ service: svc('web', { type: 'ExternalName' }) }), now).kind).toBe(
      'notSelector',
    );
  });
});

describe('writeFailure', () => {
  const create = planSync(observed(), now);
  const update = planSync(observed({ endpoints: endpoints(managerName) }), now);
  if (create.kind !== 'write' || update.kind !== 'write') throw new Error('no write planned');
  const conflict = new ApiError(409, 'Conflict', '{"reason":"Conflict"}', {});

  it('reports a failed update on the Endpoints with upstream reason and message', () => {
    expect(writeFailure(update, conflict)).toEqual({
      object: { kind: 'Endpoints', apiVersion: 'v1', namespace: 'ns', name: 'web', uid: 'ep-uid' },
      type: 'Warning',
      reason: 'FailedToUpdateEndpoint',
      message: `Failed to update endpoint ns/web: ${String(conflict)}`,
    });
  });

  it('reports a failed create, except one refused because the namespace is terminating', () => {
    const err = new Error('boom');
    expect(writeFailure(create, err)).toEqual({
      object: { kind: 'Endpoints', apiVersion: 'v1', namespace: 'ns', name: 'web' },
      type: 'Warning',
      reason: 'FailedToCreateEndpoint',
      message: 'Failed to create endpoint for service ns/web: Error: boom',
    });
    const terminating = new ApiError(
      403,
      'Forbidden',
      '{"details":{"causes":[{"reason":"NamespaceTerminating"}]}}',
      {},
    );
    expect(writeFailure(create, terminating)).toBe('ignore');
    // Only a create: an update refused so is reported like any other failure.
    expect(writeFailure(update, terminating)).not.toBe('ignore');
  });
});

describe('formatDuration', () => {
  it.each([
    [1_000, '1s'],
    [59_400, '59s'],
    [60_000, '1m0s'],
    [125_000, '2m5s'],
    [30 * 60_000, '30m0s'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
