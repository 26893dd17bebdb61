import { afterEach, describe, expect, it } from '@jest/globals';
import type { CachedPolicy } from '../../api/resources.ts';
import type { PolicySpec } from '../../api/policy.ts';
import { loadPolicies } from '../../policy/evaluate.ts';
import { FakeClock } from '../../runtime/clock.test-helpers.ts';
import { FakeInformer } from '../../runtime/informer.test-helpers.ts';
import { createLogger } from '../../runtime/log.ts';
import { createMetrics } from '../../runtime/metrics.ts';
import { EffectivePolicyController, planEffective } from './controller.ts';
import type { PolicyWriter } from './writer.ts';

const grant = (name: string, cidr: string) => ({
  metadata: { name },
  spec: { rules: [{ name: 'r', namespaceSelector: {}, cidrs: [cidr] }] },
});

describe('planEffective', () => {
  it('applies the union of the grants when the compiled object says something else', () => {
    const plan = planEffective(
      loadPolicies([grant('b', '198.51.100.0/24'), grant('a', '192.0.2.0/24')]),
      undefined,
    );
    expect(plan.frozen).toBeUndefined();
    expect(plan.rules).toBe(2);
    expect(plan.apply?.rules.map((r) => [r.name, r.cidrs])).toEqual([
      ['a.r', ['192.0.2.0/24']],
      ['b.r', ['198.51.100.0/24']],
    ]);
  });

  it('writes nothing when the compiled object already says it, whatever its key order', () => {
    const policy = loadPolicies([grant('a', '192.0.2.0/24')]);
    const compiled = planEffective(policy, undefined).apply;
    const reordered = JSON.parse(
      JSON.stringify(compiled, (_k, v: unknown) =>
        v !== null && typeof v === 'object' && !Array.isArray(v)
          ? Object.fromEntries(Object.entries(v).reverse())
          : v,
      ),
    ) as unknown;
    const plan = planEffective(policy, {
      metadata: { name: 'outrigger-effective' },
      spec: reordered,
    });
    expect(plan.apply).toBeUndefined();
  });

  it('creates the compiled object by apply, and replaces the rules of one that exists', () => {
    const policy = loadPolicies([grant('a', '192.0.2.0/24')]);
    expect(planEffective(policy, undefined).replace).toBeUndefined();
    // A rule that no grant holds (a restored or hand-edited copy) must go, not stay beside ours.
    const plan = planEffective(policy, {
      metadata: { name: 'outrigger-effective' },
      spec: {
        rules: [
          { name: 'a.r', namespaceSelector: {}, cidrs: ['192.0.2.0/24'] },
          { name: 'old.revoked', namespaceSelector: {}, cidrs: ['10.0.0.0/8'] },
        ],
      },
    });
    expect(plan.replace).toBe(true);
    expect(plan.apply?.rules.map((r) => r.name)).toEqual(['a.r']);
  });

  it('keeps the compiled object as it is while the grants are missing', () => {
    for (const missing of [loadPolicies([]), loadPolicies([grant('a', '192.0.2.0/24')], '403')]) {
      const plan = planEffective(missing, undefined);
      expect(plan.apply).toBeUndefined();
      expect(plan.frozen).toBeDefined();
    }
  });

  it('writes nothing and says why when the grants hold more rules than the compiled object may', () => {
    const many = Array.from({ length: 17 }, (_, i) => ({
      metadata: { name: `team-${String(i)}` },
      spec: {
        rules: Array.from({ length: 64 }, (_, j) => ({
          name: `r${String(j)}`,
          namespaceSelector: {},
          cidrs: ['192.0.2.0/24'],
        })),
      },
    }));
    const plan = planEffective(loadPolicies(many), undefined);
    expect(plan.apply).toBeUndefined();
    expect(plan.frozen).toBeUndefined();
    expect(plan.uncompilable).toContain('1088 rules, more than the 1024');
  });
});

/** Records each apply (at the clock's time) and fails while `failing` is set. */
class FakePolicyWriter implements PolicyWriter {
  readonly applies: { at: number; rules: string[]; replace: boolean }[] = [];
  failing = false;
  private readonly clock: FakeClock;
  constructor(clock: FakeClock) {
    this.clock = clock;
  }
  applyEffective(spec: PolicySpec, _labels: Record<string, string>, replace = false) {
    this.applies.push({ at: this.clock.now(), rules: spec.rules.map((r) => r.name), replace });
    return this.failing ? Promise.reject(new Error('the API server said no')) : Promise.resolve();
  }
}

describe('EffectivePolicyController', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  function setup(grants: CachedPolicy[]) {
    const clock = new FakeClock();
    const policies = new FakeInformer<CachedPolicy>(grants);
    const writer = new FakePolicyWriter(clock);
    const frozenChanges: number[] = [];
    const controller = new EffectivePolicyController({
      policies,
      writer,
      log: createLogger('silent'),
      metrics: createMetrics({ defaultMetrics: false }),
      onFrozenChange: () => frozenChanges.push(clock.now()),
      clock,
    });
    return { clock, policies, writer, frozenChanges, controller };
  }

  function start(controller: EffectivePolicyController): void {
    const running = controller.run();
    stop = async () => {
      controller.shutDown();
      await running;
    };
  }

  it('returns its own look-again time as the reconcile result', async () => {
    const t = setup([grant('a', '192.0.2.0/24')]);
    await expect(t.controller.reconcile()).resolves.toEqual({ requeueAfterMs: 10_000 });
    expect(t.writer.applies.map((a) => a.rules)).toEqual([['a.r']]);
  });

  it('applies the grants at start and on a change, and looks again every 10 s without events', async () => {
    const t = setup([grant('a', '192.0.2.0/24')]);
    start(t.controller);
    await t.clock.advance(0);
    expect(t.writer.applies).toEqual([{ at: t.clock.now(), rules: ['a.r'], replace: false }]);
    // The compiled object shows up in the cache: nothing more to apply.
    t.policies.set({
      metadata: { name: 'outrigger-effective' },
      spec: { rules: [{ name: 'a.r', namespaceSelector: {}, cidrs: ['192.0.2.0/24'] }] },
    });
    t.policies.set(grant('b', '198.51.100.0/24'));
    await t.clock.advance(0);
    expect(t.writer.applies.map((a) => [a.rules, a.replace])).toEqual([
      [['a.r'], false],
      [['a.r', 'b.r'], true],
    ]);

    // A watch failing sends no event; only the look-again sees the grants become unreadable
    // once the failure has lasted 30 s, and freezes decisions.
    const failingSince = t.clock.now();
    t.policies.setFailure(undefined, { code: 500, message: 'watch failed', since: failingSince });
    await t.clock.advance(29_999);
    expect(t.frozenChanges).toEqual([]);
    await t.clock.advance(10_001);
    expect(t.frozenChanges).toHaveLength(1);
    expect(t.frozenChanges[0]).toBeGreaterThanOrEqual(failingSince + 30_000);
    expect(t.frozenChanges[0]).toBeLessThanOrEqual(failingSince + 40_000);
  });

  it('retries a failing apply no less often than every 10 s, however long it fails', async () => {
    const t = setup([grant('a', '192.0.2.0/24')]);
    t.writer.failing = true;
    start(t.controller);
    await t.clock.advance(10 * 60_000);
    const gaps = t.writer.applies.slice(1).map((a, i) => a.at - (t.writer.applies[i]?.at ?? 0));
    expect(gaps.length).toBeGreaterThan(60);
    expect(Math.max(...gaps)).toBe(10_000);
  });
});
