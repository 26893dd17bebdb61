// The profile reader of the benchmark on a profile small enough to add up by hand: which time
// goes to which function and category, stacks merged, recursion counted once, JSON found from the
// calling line, and a flame graph whose frames are as wide as their time.
import { describe, expect, it } from '@jest/globals';
import {
  categoryOf,
  compareMarkdown,
  parseCpuProfile,
  renderFlameSvg,
  summarise,
  summaryMarkdown,
  type CallFrame,
  type CpuProfile,
  type ProfileNode,
  type SourceLines,
  type Summary,
} from './flame.ts';

const native = (functionName: string): CallFrame => ({
  functionName,
  url: '',
  lineNumber: -1,
  columnNumber: -1,
});
const at = (functionName: string, url: string, lineNumber: number): CallFrame => ({
  functionName,
  url,
  lineNumber,
  columnNumber: 4,
});

const repo = 'file:///repo';
const reconcileFrame = at('reconcile', `${repo}/src/controllers/selector/reconcile.ts`, 19);
const f = at('f', `${repo}/src/endpoints/build.ts`, 2);

const nodes: ProfileNode[] = [
  { id: 1, callFrame: native('(root)'), children: [2, 3, 4, 20] },
  { id: 2, callFrame: native('(program)') },
  { id: 3, callFrame: native('(idle)') },
  { id: 4, callFrame: at('main', `${repo}/src/runtime/loop.ts`, 9), children: [5, 6, 7, 21] },
  // 5 and 6 are one stack (main → reconcile) that V8 kept as two nodes.
  {
    id: 5,
    callFrame: reconcileFrame,
    children: [8],
    positionTicks: [
      { line: 21, ticks: 3 },
      { line: 22, ticks: 1 },
    ],
  },
  { id: 6, callFrame: reconcileFrame, children: [9] },
  {
    id: 7,
    callFrame: at('list', `${repo}/node_modules/@kubernetes/client-node/dist/api.js`, 4),
    children: [10],
  },
  { id: 8, callFrame: at('info', `${repo}/node_modules/pino/lib/proto.js`, 0) },
  { id: 9, callFrame: at('tick', 'node:internal/timers', 5) },
  // f → g → f: f's total must count the inner call once.
  { id: 10, callFrame: f, children: [11] },
  { id: 11, callFrame: at('g', `${repo}/src/endpoints/build.ts`, 7), children: [12] },
  { id: 12, callFrame: f },
  { id: 20, callFrame: native('(garbage collector)') },
  { id: 21, callFrame: at('rare', `${repo}/src/runtime/rare.ts`, 0) },
];

/** µs of sampled time per node, spread over samples that interleave the nodes. */
const time: [number, number][] = [
  [2, 1000],
  [3, 10_000],
  [4, 1000],
  [5, 2000],
  [6, 2000],
  [8, 1000],
  [9, 500],
  [7, 2000],
  [10, 1000],
  [11, 1000],
  [12, 1000],
  [20, 1500],
  [5, 2000],
  [21, 5],
];

/** A sample stands for the time up to the next one; the gap before the first is not counted. */
function profileOf(steps: readonly [number, number][]): CpuProfile {
  const start = 1_000_000;
  const timeDeltas = [250, ...steps.slice(0, -1).map(([, us]) => us)];
  const last = start + timeDeltas.reduce((a, b) => a + b, 0);
  return {
    nodes,
    startTime: start,
    endTime: last + (steps.at(-1)?.[1] ?? 0),
    samples: steps.map(([id]) => id),
    timeDeltas,
  };
}

const profile = profileOf(time);

// Line 21 (1-based) of reconcile.ts calls JSON.parse; line 22 does not.
const sources: SourceLines = (url) =>
  url.endsWith('/reconcile.ts')
    ? Array.from({ length: 30 }, (_, i) =>
        i === 20 ? '    const spec = JSON.parse(text) as Spec;' : `    step${i}();`,
      )
    : undefined;

function fn(s: Summary, name: string): { selfMs: number; totalMs: number; category: string } {
  const found = s.functions.filter((x) => x.name === name);
  expect(found).toHaveLength(1);
  const [only] = found;
  if (only === undefined) throw new Error(name);
  return only;
}

function category(s: Summary, name: string): number | undefined {
  return s.categories.find((c) => c.category === name)?.ms;
}

describe('summarise', () => {
  const s = summarise(profile, { sourceLines: sources });

  it('adds up the sampled time, idle apart', () => {
    expect(s.totalMs).toBeCloseTo(26.005, 6);
    expect(s.idleMs).toBeCloseTo(10, 6);
    expect(s.busyMs).toBeCloseTo(16.005, 6);
    expect(s.samples).toBe(time.length);
  });

  it('merges identical stacks and gives self and total time', () => {
    // Two nodes, one function: 4 ms + 2 ms of self, less the 3 ms on the JSON.parse line.
    expect(fn(s, 'reconcile')).toEqual({
      name: 'reconcile',
      location: 'src/controllers/selector/reconcile.ts:20',
      category: 'src/controllers/selector',
      selfMs: 3,
      totalMs: 7.5,
    });
    expect(fn(s, 'main').selfMs).toBeCloseTo(1, 6);
    expect(fn(s, 'main').totalMs).toBeCloseTo(13.505, 6);
    expect(fn(s, 'list').totalMs).toBeCloseTo(5, 6);
  });

  it('counts a recursive function once in its total', () => {
    expect(fn(s, 'f').selfMs).toBeCloseTo(2, 6);
    expect(fn(s, 'f').totalMs).toBeCloseTo(3, 6);
    expect(fn(s, 'g').totalMs).toBeCloseTo(2, 6);
  });

  it('moves the time of a line calling JSON.parse to a JSON frame', () => {
    const json = s.functions.find((x) => x.name === 'JSON.parse');
    expect(json).toEqual({
      name: 'JSON.parse',
      location: 'src/controllers/selector/reconcile.ts:21',
      category: 'JSON',
      selfMs: 3,
      totalMs: 3,
    });
    const without = summarise(profile, { sourceLines: null });
    expect(fn(without, 'reconcile').selfMs).toBeCloseTo(6, 6);
    expect(category(without, 'JSON')).toBeUndefined();
  });

  it('groups self time by category, most first', () => {
    const ms = Object.fromEntries(s.categories.map((c) => [c.category, c.ms]));
    expect(ms).toEqual({
      '(idle)': expect.closeTo(10, 6),
      'src/controllers/selector': expect.closeTo(3, 6),
      'src/endpoints': expect.closeTo(3, 6),
      JSON: expect.closeTo(3, 6),
      '@kubernetes/client-node': expect.closeTo(2, 6),
      '(garbage collector)': expect.closeTo(1.5, 6),
      'src/runtime': expect.closeTo(1.005, 6),
      '(program)': expect.closeTo(1, 6),
      pino: expect.closeTo(1, 6),
      'node internals': expect.closeTo(0.5, 6),
    });
    const order = s.categories.map((c) => c.ms);
    expect(order).toEqual([...order].sort((a, b) => b - a));
    expect(s.functions.map((x) => x.name)).not.toContain('(idle)');
    expect(s.functions.map((x) => x.name)).not.toContain('(root)');
  });

  it('takes a sample to last until the next, the last until endTime', () => {
    const p: CpuProfile = {
      nodes: [
        { id: 1, callFrame: native('(root)'), children: [2, 3] },
        { id: 2, callFrame: native('(program)') },
        { id: 3, callFrame: native('(idle)') },
      ],
      startTime: 0,
      endTime: 1000,
      samples: [2, 3, 2],
      timeDeltas: [100, 300, 200],
    };
    const t = summarise(p, { sourceLines: null });
    expect(category(t, '(program)')).toBeCloseTo(0.3 + 0.4, 6);
    expect(t.idleMs).toBeCloseTo(0.2, 6);
  });

  it('falls back to hitCount without samples', () => {
    const p: CpuProfile = {
      nodes: [
        { id: 1, callFrame: native('(root)'), children: [2, 3], hitCount: 0 },
        { id: 2, callFrame: native('(program)'), hitCount: 2 },
        { id: 3, callFrame: native('(idle)'), hitCount: 3 },
      ],
      startTime: 0,
      endTime: 5000,
    };
    const t = summarise(p, { sourceLines: null });
    expect(category(t, '(program)')).toBeCloseTo(2, 6);
    expect(t.idleMs).toBeCloseTo(3, 6);
  });
});

describe('categoryOf', () => {
  it.each([
    [native('(garbage collector)'), '(garbage collector)'],
    [native('(program)'), '(program)'],
    [native('(idle)'), '(idle)'],
    [native('parse'), 'JSON'],
    [native('stringify'), 'JSON'],
    [native('consoleCall'), 'V8 builtins / native'],
    [at('listOnTimeout', 'node:internal/timers', 1), 'node internals'],
    [
      at('watch', 'file:///w/node_modules/@kubernetes/client-node/dist/watch.js', 1),
      '@kubernetes/client-node',
    ],
    [at('x', 'file:///w/node_modules/.pnpm/pino@10/node_modules/pino/pino.js', 1), 'pino'],
    [at('x', 'file:///w/node_modules/foo/src/runtime/x.js', 1), 'foo'],
    [at('x', 'file:///w/src/controllers/selector/reconcile.ts', 1), 'src/controllers/selector'],
    [at('x', 'file:///w/src/runtime/clock.ts', 1), 'src/runtime'],
    [at('x', '/app/dist/endpoints/build.js', 1), 'src/endpoints'],
    [at('x', 'file:///w/src/main.ts', 1), 'src/main.ts'],
    [at('x', 'file:///w/e2e/bench/bench.ts', 1), 'e2e'],
    [at('x', '[eval]', 1), 'other'],
  ])('%j is %s', (frame, expected) => {
    expect(categoryOf(frame)).toBe(expected);
  });
});

describe('renderFlameSvg', () => {
  const svg = renderFlameSvg(profile, { sourceLines: sources, width: 1000, title: 'a <test>' });
  const frames = [
    ...svg.matchAll(
      /<g class="frame"><title>([^<]*)<\/title><rect x="([\d.]+)" y="(\d+)" width="([\d.]+)"/g,
    ),
  ].map(([, title = '', x = '', y = '', w = '']) => ({
    title,
    x: Number(x),
    y: Number(y),
    w: Number(w),
  }));
  const frame = (prefix: string): { title: string; x: number; y: number; w: number } => {
    const found = frames.filter((r) => r.title.startsWith(prefix));
    expect(found).toHaveLength(1);
    const [only] = found;
    if (only === undefined) throw new Error(prefix);
    return only;
  };

  it('draws one rect per merged frame, idle and frames under 0.1 % left out', () => {
    expect(frames.map((r) => r.title.split(' ')[0]).sort()).toEqual(
      [
        '(garbage',
        '(program)',
        'JSON.parse',
        'all',
        'f',
        'f',
        'g',
        'info',
        'list',
        'main',
        'reconcile',
        'tick',
      ].sort(),
    );
    expect(svg).not.toContain('(idle) —');
    expect(svg).not.toContain('rare');
  });

  it('makes each frame as wide as its total time', () => {
    const root = frame('all');
    const busyUs = 16_005;
    // Each rect is drawn half a pixel short of its slot, so that neighbours stay apart.
    const px = (us: number): number => (us / busyUs) * (root.w + 0.5) - 0.5;
    for (const [prefix, us] of [
      ['main', 13_505],
      ['reconcile', 7500],
      ['JSON.parse', 3000],
      ['list', 5000],
      ['(garbage', 1500],
      ['tick', 500],
    ] as const) {
      expect(Math.abs(frame(prefix).w - px(us))).toBeLessThan(0.05);
    }
    expect(root.w).toBeGreaterThan(900);
  });

  it('puts the root at the bottom and callees above their callers', () => {
    const root = frame('all');
    expect(Math.max(...frames.map((r) => r.y))).toBe(root.y);
    expect(frame('main').y).toBeLessThan(root.y);
    expect(frame('reconcile').y).toBeLessThan(frame('main').y);
    expect(frame('JSON.parse').y).toBeLessThan(frame('reconcile').y);
    expect(frame('reconcile').x).toBeGreaterThanOrEqual(frame('main').x);
  });

  it('says function, file:line, ms and % in each tooltip, and the total in the heading', () => {
    expect(frame('reconcile').title).toBe(
      'reconcile (src/controllers/selector/reconcile.ts:20) — 7.50 ms, 46.9 %',
    );
    expect(svg).toContain('26.0 ms sampled (14 samples): 16.0 ms busy, 10.0 ms idle');
    expect(svg).toContain('a &lt;test&gt;');
  });
});

describe('the Markdown', () => {
  const after = summarise(profile, { sourceLines: sources });
  const before = summarise(profile, { sourceLines: null });

  it('tables categories and functions with ms and % of busy time', () => {
    const md = summaryMarkdown(after, 3);
    expect(md).toMatch(/\| src\/endpoints +\| 3\.00 +\| 18\.7 % +\|/);
    expect(md).toMatch(/\| \(idle\) +\| 10\.0 +\| not busy +\|/);
    expect(md).toMatch(
      /\| reconcile \(src\/controllers\/selector\/reconcile\.ts:20\) +\| src\/controllers\/selector +\| 3\.00 +\| 18\.7 % +\| 7\.50 +\| 46\.9 % +\|/,
    );
    expect(md).toContain('Top 3 functions by self time');
  });

  it('sets two profiles side by side, per 1000 events', () => {
    const md = compareMarkdown(before, after, { perBefore: 100, perAfter: 200 });
    expect(md).toMatch(
      /\| JSON +\| 0\.00 +\| 0\.0 % +\| 3\.00 +\| 18\.7 % +\| \+3\.00 +\| 0\.00 +\| 15\.0 +\| \+15\.0 +\|/,
    );
    expect(md).toMatch(
      /\| src\/controllers\/selector +\| 6\.00 +\| 37\.5 % +\| 3\.00 +\| 18\.7 % +\| -3\.00 +\| 60\.0 +\| 15\.0 +\| -45\.0 +\|/,
    );
    expect(md).toMatch(/\| \(idle\) +\| 10\.0 +\| not busy +\| 10\.0 +\| not busy +\|/);
  });
});

describe('parseCpuProfile', () => {
  it('takes a profile and refuses what is not one', () => {
    expect(parseCpuProfile(JSON.parse(JSON.stringify(profile)))).toEqual(profile);
    expect(() => parseCpuProfile({ nodes: 3 })).toThrow(/no nodes/);
    expect(() => parseCpuProfile({ nodes: [{ id: 1 }], startTime: 0, endTime: 1 })).toThrow(
      /malformed/,
    );
  });
});
