import { describe, expect, it } from '@jest/globals';
import { assignProbers, decide, dissent, partitionedProbers, type Ballot } from './vote.ts';

const b = (prober: string, unhealthy: boolean, zone?: string): Ballot => ({
  prober,
  unhealthy,
  ...(zone !== undefined ? { zone } : {}),
});
const none = new Set<string>();

describe('decide', () => {
  const cases: [string, Ballot[], ReadonlySet<string>, boolean][] = [
    ['one prober, healthy', [b('a', false)], none, false],
    ['one prober, unhealthy: today’s single-prober verdict', [b('a', true)], none, true],
    ['two probers split 1–1: a tie stays healthy', [b('a', true), b('b', false)], none, false],
    ['two probers both unhealthy', [b('a', true), b('b', true)], none, true],
    [
      'three, one sees it down: published',
      [b('a', true), b('b', false), b('c', false)],
      none,
      false,
    ],
    ['three, two see it down: withdrawn', [b('a', true), b('b', true), b('c', false)], none, true],
    [
      'three, two down but one of them partitioned: 1–1, stays',
      [b('a', true), b('b', true), b('c', false)],
      new Set(['a']),
      false,
    ],
    [
      'the partitioned prober alone sees it healthy: the others decide',
      [b('a', false), b('b', true), b('c', true)],
      new Set(['a']),
      true,
    ],
    [
      'every ballot partitioned: counted after all (today’s behaviour)',
      [b('a', true)],
      new Set(['a']),
      true,
    ],
    ['no ballot at all: healthy (unknown, published ready)', [], none, false],
  ];
  it.each(cases)('%s', (_name, ballots, partitioned, unhealthy) => {
    expect(decide(ballots, partitioned).unhealthy).toBe(unhealthy);
  });

  it('counts each way, shows what it ignores, and names the zones', () => {
    const v = decide(
      [b('a', true, 'z1'), b('b', false, 'z2'), b('c', false, 'z3'), b('d', true, 'z1')],
      new Set(['d']),
    );
    expect(v).toEqual({
      unhealthy: false,
      healthy: 2,
      against: 1,
      ignored: 1,
      zonesUnhealthy: ['z1'],
      zonesHealthy: ['z2', 'z3'],
    });
  });
});

describe('partitions', () => {
  const everything = (cutOff: string, probers: string[], n: number): Ballot[][] =>
    Array.from({ length: n }, () => probers.map((p) => b(p, p === cutOff)));

  it('a prober that cannot reach anything the others reach is partitioned', () => {
    expect(partitionedProbers(everything('c', ['a', 'b', 'c'], 10))).toEqual(new Set(['c']));
  });

  it('so is the leader, with two probers, when it alone fails everything', () => {
    expect(partitionedProbers(everything('leader', ['leader', 'b'], 4))).toEqual(
      new Set(['leader']),
    );
  });

  it('a real outage that every prober sees partitions nobody', () => {
    const all = Array.from({ length: 10 }, () => [b('a', true), b('b', true), b('c', true)]);
    expect(partitionedProbers(all)).toEqual(new Set());
  });

  it('one lone failure is a dead path to one server, not a partition', () => {
    const ballots = [
      [b('a', true), b('b', false), b('c', false)],
      ...Array.from({ length: 9 }, () => [b('a', false), b('b', false), b('c', false)]),
    ];
    expect(dissent(ballots).get('a')).toEqual({ prober: 'a', shared: 10, alone: 1 });
    expect(partitionedProbers(ballots)).toEqual(new Set());
  });

  it('lone failures on under half of what it shares: not partitioned', () => {
    const ballots = [
      ...Array.from({ length: 4 }, () => [b('a', true), b('b', false)]),
      ...Array.from({ length: 6 }, () => [b('a', false), b('b', false)]),
    ];
    expect(partitionedProbers(ballots)).toEqual(new Set());
    ballots.push([b('a', true), b('b', false)], [b('a', true), b('b', false)]);
    expect(partitionedProbers(ballots)).toEqual(new Set(['a']));
  });

  it('addresses with a single ballot tell nothing about anyone', () => {
    expect(dissent([[b('a', true)], [b('a', true)]]).size).toBe(0);
  });
});

describe('assignProbers', () => {
  const standbys = ['r0', 'r1', 'r2', 'r3', 'r4'];

  it('picks the asked number, deterministically', () => {
    const one = assignProbers('ns/db', standbys, 2);
    expect(one).toHaveLength(2);
    expect(assignProbers('ns/db', [...standbys].reverse(), 2)).toEqual(one);
    expect(assignProbers('ns/db', standbys, 0)).toEqual([]);
    expect(assignProbers('ns/db', ['r0'], 3)).toEqual(['r0']);
  });

  it('moves only the backends of a replica that goes', () => {
    const keys = Array.from({ length: 200 }, (_, i) => `ns/b${String(i)}`);
    const before = new Map(keys.map((k) => [k, assignProbers(k, standbys, 2)]));
    const without = standbys.filter((s) => s !== 'r2');
    let moved = 0;
    for (const k of keys) {
      const was = before.get(k) ?? [];
      const now = assignProbers(k, without, 2);
      if (!was.includes('r2')) expect(now).toEqual(was);
      else moved++;
    }
    // About two fifths of the backends had r2 among their two.
    expect(moved).toBeGreaterThan(40);
    expect(moved).toBeLessThan(120);
  });
});
