// The planner's decisions for a Service whose Endpoints someone else wrote: the seed migration
// (hand-written Endpoints → ExternalBackend) as planBackend sees each step of it.
import { labelEndpointsManagedBy, labelSkipMirror, managerName } from '../../api/names.ts';
import { describe, expect, it } from '@jest/globals';
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import { initialHealth, observe, type AddressHealth } from '../../health/state.ts';
import { desiredSlices } from './desired.ts';
import { endpointsHolder, type BackendRef } from './owner.ts';
import { adoptionBlocker } from './foreign.ts';
import { planBackend, targetKey, type BackendWorld } from './plan.ts';
import { externalBackendSpec, type ExternalBackendSpecInput } from '../../api/externalbackend.ts';
import { buildStatus, planStatus } from './status.ts';
import { foreignEndpointsConditionType } from './ready.ts';

const ref: BackendRef = { name: 'etcd-k8s', namespace: 'kube-system', uid: 'xb-uid' };
const ips = ['192.0.2.10', '192.0.2.11', '192.0.2.12'];
const spec = (s: Partial<ExternalBackendSpecInput> = {}) =>
  externalBackendSpec.parse({
    ports: [{ name: 'port', port: 2379 }],
    addresses: ips.map((ip, i) => ({ ip, nodeName: `etc-master${String(i + 1)}` })),
    healthCheck: { tcp: { port: 'port' }, intervalSeconds: 1, healthyThreshold: 2 },
    ...s,
  });
const up = (): AddressHealth =>
  observe(initialHealth(0), true, { healthyThreshold: 2, unhealthyThreshold: 3 }, 1);

/** The by-hand Endpoints of examples/etcd-k8s/by-hand.yaml, as kubectl created it. */
const handWritten = (meta: Partial<NonNullable<V1Endpoints['metadata']>> = {}): V1Endpoints => ({
  apiVersion: 'v1',
  kind: 'Endpoints',
  metadata: { name: 'etcd-k8s', namespace: 'kube-system', resourceVersion: '41', ...meta },
  subsets: [
    {
      addresses: ips.map((ip) => ({ ip })),
      ports: [{ name: 'port', port: 2379, protocol: 'TCP' }],
    },
  ],
});

function world(over: Partial<BackendWorld> = {}): BackendWorld {
  const s = over.spec ?? spec();
  return {
    ref,
    spec: s,
    previous: undefined,
    judge: () => undefined,
    drainEntries: new Set(),
    resolutions: new Map(),
    health: new Map(ips.map((ip) => [targetKey(ref, ip), up()])),
    probeRoom: 100,
    probeLimit: 100,
    // The hand-written selectorless Service, adopted (read only).
    service: {
      metadata: { name: 'etcd-k8s', namespace: 'kube-system' },
      spec: { clusterIP: '10.96.0.20', ports: [{ name: 'port', port: 2379, protocol: 'TCP' }] },
    },
    endpoints: undefined,
    slices: [],
    ownedServices: [],
    ownedEndpoints: [],
    pods: [],
    maxEndpointsPerSlice: 100,
    now: 10,
    ...over,
  };
}

/** The slices as the cache shows them once outrigger created them (all checked and healthy). */
function published(): V1EndpointSlice[] {
  const views = ips.map((ip, i) => ({
    ip,
    nodeName: `etc-master${String(i + 1)}`,
    state: 'Healthy' as const,
    ready: true,
    message: '',
  }));
  return desiredSlices(ref, spec(), views).map((sl) => ({
    ...sl,
    metadata: { ...sl.metadata, resourceVersion: '50' },
  }));
}

describe('endpointsHolder', () => {
  it('tells objects nobody manages from those of a controller', () => {
    expect(endpointsHolder(handWritten())).toBe('unmanaged');
    // Left behind by an ExternalBackend deleted with --cascade=orphan: outrigger's label, no owner.
    expect(
      endpointsHolder(handWritten({ labels: { [labelEndpointsManagedBy]: managerName } })),
    ).toBe('unmanaged');
    expect(
      endpointsHolder(handWritten({ labels: { [labelEndpointsManagedBy]: 'someone.example' } })),
    ).toBe('controller');
    expect(
      endpointsHolder(
        handWritten({
          ownerReferences: [
            {
              apiVersion: 'outrigger.dev/v1alpha1',
              kind: 'ExternalBackend',
              name: 'other',
              uid: 'u2',
              controller: true,
            },
          ],
        }),
      ),
    ).toBe('controller');
  });
});

describe('a hand-written Endpoints beside the backend (migration)', () => {
  it('publishes the slices beside it, leaves it alone and says how to finish', () => {
    const plan = planBackend(world({ endpoints: handWritten() }));
    expect(plan.refused).toBeUndefined();
    expect(plan.endpoints).toBeUndefined();
    expect(plan.sliceCreates.map((s) => s.metadata?.name)).toEqual(['etcd-k8s-outrigger-ipv4']);
    expect((plan.sliceCreates[0]?.endpoints ?? []).map((e) => e.addresses[0])).toEqual(ips);
    expect(plan.deletes).toEqual([]);
    expect(plan.foreignEndpoints?.reason).toBe('EndpointsHeldByAnotherWriter');
    expect(plan.foreignEndpoints?.message).toContain('outrigger.dev/adopt-endpoints=true');
    expect(plan.foreignEndpoints?.message).toContain('written by hand or by another tool');
  });

  it('keeps its slices up to date meanwhile: a dead member leaves them', () => {
    const down = [false, false, false].reduce(
      (h, ok) => observe(h, ok, { healthyThreshold: 2, unhealthyThreshold: 3 }, 2, 'refused'),
      up(),
    );
    const health = new Map(ips.map((ip) => [targetKey(ref, ip), up()]));
    health.set(targetKey(ref, ips[2] ?? ''), down);
    const plan = planBackend(world({ endpoints: handWritten(), slices: published(), health }));
    expect(plan.sliceUpdates).toHaveLength(1);
    const ready = (plan.sliceUpdates[0]?.want.endpoints ?? []).filter((e) => e.conditions?.ready);
    expect(ready.map((e) => e.addresses[0])).toEqual(ips.slice(0, 2));
    expect(plan.endpoints).toBeUndefined();
  });

  it('still refuses an Endpoints another controller manages, opt-in or not', () => {
    for (const adoptEndpoints of [false, true]) {
      const plan = planBackend(
        world({
          adoptEndpoints,
          endpoints: handWritten({ labels: { [labelEndpointsManagedBy]: 'someone.example' } }),
        }),
      );
      expect(plan.refused?.reason).toBe('EndpointsConflict');
      expect(plan.sliceCreates).toEqual([]);
      expect(plan.endpoints).toBeUndefined();
    }
  });

  it('with the opt-in, waits for its own slices before adopting', () => {
    const plan = planBackend(world({ endpoints: handWritten(), adoptEndpoints: true }));
    expect(plan.endpoints).toBeUndefined();
    expect(plan.sliceCreates).toHaveLength(1);
    expect(plan.foreignEndpoints?.reason).toBe('AdoptionPending');
    expect(plan.foreignEndpoints?.message).toContain(
      "outrigger's EndpointSlices are being published",
    );
  });

  it('with the opt-in, waits for every checked address to have a verdict', () => {
    const health = new Map(ips.map((ip) => [targetKey(ref, ip), up()]));
    health.set(targetKey(ref, ips[1] ?? ''), initialHealth(0));
    const plan = planBackend(
      world({ endpoints: handWritten(), adoptEndpoints: true, slices: published(), health }),
    );
    expect(plan.endpoints).toBeUndefined();
    expect(plan.foreignEndpoints?.reason).toBe('AdoptionPending');
    expect(plan.foreignEndpoints?.message).toContain(
      '1 addresses have no health-check verdict yet (192.0.2.11)',
    );
  });

  it('with the opt-in and its slices in place, takes the Endpoints over in place', () => {
    const current = handWritten();
    const plan = planBackend(
      world({ endpoints: current, adoptEndpoints: true, slices: published() }),
    );
    expect(plan.foreignEndpoints).toBeUndefined();
    expect(plan.sliceCreates).toEqual([]);
    expect(plan.sliceUpdates).toEqual([]);
    expect(plan.deletes).toEqual([]);
    if (plan.endpoints?.op !== 'adopt') throw new Error(`planned ${String(plan.endpoints?.op)}`);
    // Judged against exactly the version it read (the write carries it as a precondition).
    expect(plan.endpoints.current).toBe(current);
    const want = plan.endpoints.want;
    expect(want.metadata?.name).toBe('etcd-k8s');
    expect(want.metadata?.labels?.[labelSkipMirror]).toBe('true');
    expect(want.metadata?.ownerReferences?.[0]?.uid).toBe('xb-uid');
    expect(want.subsets?.[0]?.addresses?.map((a) => a.ip)).toEqual(ips);
  });

  it('an address over the probe-target limit (never checked) does not hold adoption back', () => {
    expect(
      adoptionBlocker(
        0,
        [{ ip: ips[0] ?? '', state: 'Unknown', ready: false, message: '' }],
        new Set([ips[0] ?? '']),
      ),
    ).toBeUndefined();
    expect(adoptionBlocker(1, [], new Set())).toContain('being published');
  });

  it('without a health check, adopts as soon as its slices are in place', () => {
    const s = spec({ healthCheck: undefined });
    const plan = planBackend(
      world({
        spec: s,
        endpoints: handWritten(),
        adoptEndpoints: true,
        slices: published(),
        health: new Map(),
      }),
    );
    expect(plan.endpoints?.op).toBe('adopt');
  });

  it('once adopted (ours), the opt-in changes nothing', () => {
    const adopted = planBackend(
      world({ endpoints: handWritten(), adoptEndpoints: true, slices: published() }),
    );
    if (adopted.endpoints?.op !== 'adopt') throw new Error('not adopted');
    const ours = {
      ...adopted.endpoints.want,
      metadata: { ...adopted.endpoints.want.metadata, resourceVersion: '60' },
    };
    for (const adoptEndpoints of [false, true]) {
      const plan = planBackend(world({ endpoints: ours, adoptEndpoints, slices: published() }));
      expect(plan.endpoints).toBeUndefined();
      expect(plan.foreignEndpoints).toBeUndefined();
      expect(plan.refused).toBeUndefined();
    }
  });

  it('the hand-written Endpoints deleted (no opt-in): outrigger creates its own', () => {
    const plan = planBackend(world({ slices: published() }));
    expect(plan.endpoints?.op).toBe('create');
    expect(plan.foreignEndpoints).toBeUndefined();
  });
});

describe('status while another writer holds the Endpoints', () => {
  const views = ips.map((ip) => ({ ip, state: 'Healthy' as const, ready: true, message: '' }));
  const base = {
    generation: 1,
    views,
    counts: { ready: 3, total: 3 },
    failOpen: false,
    now: new Date(1000),
  };
  const held = { reason: 'EndpointsHeldByAnotherWriter' as const, message: 'held' };

  it('Ready says whether what outrigger publishes serves; ForeignEndpoints says who holds the Endpoints', () => {
    const { events, status } = planStatus({ ...base, previous: undefined, foreignEndpoints: held });
    const ready = status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready?.status).toBe('True');
    expect(ready?.message).toContain('held by another writer');
    const cond = status?.conditions?.find((c) => c.type === foreignEndpointsConditionType);
    expect(cond).toMatchObject({
      status: 'True',
      reason: 'EndpointsHeldByAnotherWriter',
      message: 'held',
    });
    expect(events).toContainEqual({
      type: 'Warning',
      reason: 'EndpointsHeldByAnotherWriter',
      message: 'held',
    });
  });

  it('says it once, again when the reason changes, and drops the condition when it is over', () => {
    const first = buildStatus({ ...base, previous: undefined, foreignEndpoints: held });
    const again = planStatus({ ...base, previous: first, foreignEndpoints: held });
    expect(again.events).toEqual([]);
    expect(again.status).toBeUndefined();
    const pending = planStatus({
      ...base,
      previous: first,
      foreignEndpoints: { reason: 'AdoptionPending', message: 'waiting' },
    });
    expect(pending.events.map((e) => e.reason)).toEqual(['AdoptionPending']);
    const over = planStatus({ ...base, previous: first });
    expect(over.status?.conditions?.map((c) => c.type)).toEqual(['Ready']);
  });
});
