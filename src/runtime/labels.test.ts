import { describe, expect, it } from '@jest/globals';
import { labelSelectorMatches, selectorMatches } from './labels.ts';

describe('selectorMatches', () => {
  it('needs every selector label; an empty selector matches all; no selector matches nothing', () => {
    expect(selectorMatches({ app: 'web' }, { app: 'web', x: 'y' })).toBe(true);
    expect(selectorMatches({ app: 'web', t: 'c' }, { app: 'web' })).toBe(false);
    expect(selectorMatches({}, undefined)).toBe(true);
    expect(selectorMatches(undefined, { app: 'web' })).toBe(false);
  });
});

describe('labelSelectorMatches (metav1.LabelSelector)', () => {
  const labels = { app: 'web', tier: 'front' };
  it.each<[string, Parameters<typeof labelSelectorMatches>[0], boolean]>([
    ['empty selects everything', {}, true],
    ['matchLabels hit', { matchLabels: { app: 'web' } }, true],
    ['matchLabels miss', { matchLabels: { app: 'db' } }, false],
    [
      'In',
      { matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }] },
      true,
    ],
    [
      'In without the key',
      { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] },
      false,
    ],
    ['NotIn', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['back'] }] }, true],
    [
      'NotIn without the key',
      { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] },
      true,
    ],
    ['Exists', { matchExpressions: [{ key: 'app', operator: 'Exists' }] }, true],
    ['DoesNotExist', { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, false],
    [
      'all must hold',
      { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'x', operator: 'Exists' }] },
      false,
    ],
    [
      'unknown operator fails closed',
      { matchExpressions: [{ key: 'app', operator: 'Gt' }] },
      false,
    ],
  ])('%s', (_name, selector, expected) => {
    expect(labelSelectorMatches(selector, labels)).toBe(expected);
  });
});
