import { describe, expect, it } from '@jest/globals';
import { loadPolicies } from '../../policy/evaluate.ts';
import { planEffective } from './controller.ts';

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
