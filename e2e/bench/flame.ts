// Reads a V8 CPU profile (`node --cpu-prof`, or the inspector's Profiler.stop) and says where the
// time went: a flame graph as SVG, and tables of the costliest functions and of self time by
// category (outrigger's layers of src/, @kubernetes/client-node, other packages, Node, GC, JSON).
// Written for the benchmark's profile of a readiness churn, and for setting the profile of one
// tree beside another's:
//
//   node e2e/bench/flame.ts <profile.cpuprofile> [--svg=out.svg] [--title=...] [--top=15]
//   node e2e/bench/flame.ts --before=a.cpuprofile --after=b.cpuprofile [--per=N | --per-before=N
//     --per-after=M] [--top=15]
//
// Hand-written rather than a dependency: a flame graph is a tree walk and some rectangles, and the
// categories are this repository's own.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  /** 0-based, -1 for frames without a script (GC, program, idle, native builtins). */
  readonly lineNumber: number;
  readonly columnNumber: number;
  readonly scriptId?: string;
}

export interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly hitCount?: number;
  readonly children?: readonly number[];
  /** Hits by source line of this function, 1-based. */
  readonly positionTicks?: readonly { readonly line: number; readonly ticks: number }[];
}

/** The `.cpuprofile` format; times in µs. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  /** The node each sample landed on, in order. */
  readonly samples?: readonly number[];
  /** µs from the previous sample (from startTime for the first) to each sample. */
  readonly timeDeltas?: readonly number[];
}

/** A source file's lines (0-based array) for a profile's script url, or undefined if unknown. */
export type SourceLines = (url: string) => readonly string[] | undefined;

export interface AnalysisOptions {
  /**
   * Where to read the source of a sampled script. V8 never samples JSON.parse or JSON.stringify
   * as frames of their own: their time is charged to the calling JS function, on the line of the
   * call. With the source at hand, time on a line that calls JSON.parse/stringify is moved to a
   * frame of that name (category JSON); without it, JSON's cost stays hidden in its callers.
   * Default: read `file://` and absolute-path scripts from disk (so the profiled tree must still
   * be there, unchanged). `null`: do not look.
   */
  readonly sourceLines?: SourceLines | null;
}

export interface FunctionTime {
  readonly name: string;
  /** `file:line` (1-based), shortened to the part after node_modules/ or from src/; '' if none. */
  readonly location: string;
  readonly category: string;
  readonly selfMs: number;
  /** Time with this function anywhere on the stack, a recursive function counted once. */
  readonly totalMs: number;
}

export interface CategoryTime {
  readonly category: string;
  readonly ms: number;
}

export interface Summary {
  /** Every sample's time, idle included. */
  readonly totalMs: number;
  readonly idleMs: number;
  /** totalMs less idle: what the percentages are of. */
  readonly busyMs: number;
  readonly samples: number;
  /** Every function but (root) and (idle), most self time first. */
  readonly functions: readonly FunctionTime[];
  /** Self time by category, most first; (idle) included. */
  readonly categories: readonly CategoryTime[];
}

export const IDLE = '(idle)';
export const PROGRAM = '(program)';
export const GC = '(garbage collector)';
export const JSON_CATEGORY = 'JSON';
export const CLIENT_NODE = '@kubernetes/client-node';
export const NODE_INTERNALS = 'node internals';
export const NATIVE = 'V8 builtins / native';
export const OTHER = 'other';

const ROOT = '(root)';

// ---------------------------------------------------------------------------------------------
// Reading a profile

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** Checks that `value` (a parsed .cpuprofile, or what Profiler.stop returned) is a CPU profile. */
export function parseCpuProfile(value: unknown): CpuProfile {
  if (!isRecord(value) || !Array.isArray(value.nodes)) {
    throw new Error('not a V8 CPU profile: no nodes array');
  }
  if (typeof value.startTime !== 'number' || typeof value.endTime !== 'number') {
    throw new Error('not a V8 CPU profile: no startTime/endTime');
  }
  for (const n of value.nodes as unknown[]) {
    if (
      !isRecord(n) ||
      typeof n.id !== 'number' ||
      !isRecord(n.callFrame) ||
      typeof n.callFrame.functionName !== 'string' ||
      typeof n.callFrame.url !== 'string' ||
      typeof n.callFrame.lineNumber !== 'number'
    ) {
      throw new Error(`not a V8 CPU profile: a node is malformed: ${JSON.stringify(n)}`);
    }
  }
  return value as unknown as CpuProfile;
}

export function readCpuProfile(file: string): CpuProfile {
  try {
    return parseCpuProfile(JSON.parse(readFileSync(file, 'utf8')));
  } catch (err) {
    throw new Error(`${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** Reads scripts from disk once each; what cannot be read (node:, eval, a deleted tree) is skipped. */
export function sourceFromDisk(): SourceLines {
  const cache = new Map<string, readonly string[] | undefined>();
  return (url) => {
    if (cache.has(url)) return cache.get(url);
    let lines: readonly string[] | undefined;
    try {
      const path = url.startsWith('file://') ? fileURLToPath(url) : url.startsWith('/') ? url : '';
      if (path !== '') lines = readFileSync(path, 'utf8').split('\n');
    } catch {
      lines = undefined;
    }
    cache.set(url, lines);
    return lines;
  };
}

/**
 * Each node's share of the sampled time (µs). A sample stands for the interval up to the next one
 * (the last, up to endTime), as DevTools' timeline takes it, so that a stall of the sampler (a long
 * GC, a busy machine) is charged to what was running rather than spread evenly. Profiles without
 * samples fall back to hitCount × the mean interval.
 */
function selfTimes(profile: CpuProfile): { self: Map<number, number>; samples: number } {
  const self = new Map<number, number>();
  const add = (id: number, us: number): void => {
    self.set(id, (self.get(id) ?? 0) + us);
  };
  const { samples, timeDeltas } = profile;
  if (
    samples !== undefined &&
    timeDeltas !== undefined &&
    samples.length > 0 &&
    samples.length === timeDeltas.length
  ) {
    let t = profile.startTime;
    const times = timeDeltas.map((d) => (t += d));
    samples.forEach((id, i) => {
      const at = times[i] ?? 0;
      const next = times[i + 1] ?? Math.max(profile.endTime, at);
      // Samples can come out of order by a few µs; a negative interval is no time at all.
      add(id, Math.max(0, next - at));
    });
    return { self, samples: samples.length };
  }
  const hits = profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0);
  const interval = hits > 0 ? (profile.endTime - profile.startTime) / hits : 0;
  for (const n of profile.nodes) if (n.hitCount) add(n.id, n.hitCount * interval);
  return { self, samples: hits };
}

// ---------------------------------------------------------------------------------------------
// Categories and names

function packageName(url: string): string | undefined {
  const at = url.lastIndexOf('/node_modules/');
  if (at < 0) return undefined;
  const [first = '', second = ''] = url.slice(at + '/node_modules/'.length).split('/');
  return first.startsWith('@') ? `${first}/${second}` : first;
}

/** The path after the last /src/ (or /dist/, the same tree built) of a script outside node_modules. */
function ownPath(url: string): string | undefined {
  if (url.includes('/node_modules/') || url.startsWith('node:')) return undefined;
  const at = Math.max(url.lastIndexOf('/src/'), url.lastIndexOf('/dist/'));
  if (at < 0) return undefined;
  return url.slice(url.indexOf('/', at + 1) + 1);
}

const JSON_BUILTINS = new Set(['parse', 'stringify', 'JSON.parse', 'JSON.stringify']);

export function categoryOf(frame: Pick<CallFrame, 'functionName' | 'url'>): string {
  const { functionName: name, url } = frame;
  if (name === GC || name === IDLE || name === PROGRAM) return name;
  if (name === ROOT) return PROGRAM;
  if (url === '') return JSON_BUILTINS.has(name) ? JSON_CATEGORY : NATIVE;
  if (url.startsWith('node:')) return NODE_INTERNALS;
  const pkg = packageName(url);
  if (pkg !== undefined) return pkg;
  const own = ownPath(url);
  if (own !== undefined) {
    const parts = own.split('/');
    // Each controller is a reconciler of its own, so src/controllers is told apart one deeper.
    if (parts[0] === 'controllers' && parts.length > 2) return `src/controllers/${parts[1] ?? ''}`;
    return `src/${parts[0] ?? ''}`;
  }
  if (url.includes('/e2e/')) return 'e2e';
  return OTHER;
}

function shortUrl(url: string): string {
  const path = url.startsWith('file://') ? url.slice('file://'.length) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) return path.slice(nm + '/node_modules/'.length);
  const own = ownPath(path);
  if (own !== undefined) return `src/${own}`;
  const e2e = path.lastIndexOf('/e2e/');
  if (e2e >= 0) return path.slice(e2e + 1);
  return path;
}

function locationOf(url: string, line: number): string {
  if (url === '') return '';
  return line > 0 ? `${shortUrl(url)}:${line}` : shortUrl(url);
}

// ---------------------------------------------------------------------------------------------
// The merged tree

interface Frame {
  readonly key: string;
  readonly name: string;
  readonly location: string;
  readonly category: string;
  /** µs */
  self: number;
  /** µs, this frame and everything above it */
  total: number;
  readonly children: Map<string, Frame>;
}

function newFrame(key: string, name: string, location: string, category: string): Frame {
  return { key, name, location, category, self: 0, total: 0, children: new Map() };
}

function child(parent: Frame, key: string, make: () => Frame): Frame {
  let f = parent.children.get(key);
  if (f === undefined) {
    f = make();
    parent.children.set(key, f);
  }
  return f;
}

const JSON_CALL = /\bJSON\s*\.\s*(parse|stringify)\b/g;

/** The JSON call a source line makes, as a frame name, if it makes one. */
function jsonCallOn(line: string | undefined): string | undefined {
  if (line === undefined) return undefined;
  const calls = new Set([...line.matchAll(JSON_CALL)].map((m) => m[1]));
  if (calls.size === 0) return undefined;
  return calls.size === 1 ? `JSON.${[...calls][0] ?? ''}` : 'JSON.parse/stringify';
}

interface Tree {
  readonly root: Frame;
  readonly samples: number;
}

/**
 * The profile as a tree of frames in which identical stacks are one (V8 keeps separate nodes for
 * one stack when, say, a function was recompiled), with self and total time in µs.
 */
function buildTree(profile: CpuProfile, options: AnalysisOptions): Tree {
  const source = options.sourceLines === undefined ? sourceFromDisk() : options.sourceLines;
  const { self, samples } = selfTimes(profile);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const isChild = new Set(profile.nodes.flatMap((n) => n.children ?? []));
  const root = newFrame(ROOT, ROOT, '', PROGRAM);
  const pending: [ProfileNode, Frame][] = [];
  for (const n of profile.nodes) {
    if (isChild.has(n.id)) continue;
    if (n.callFrame.functionName === ROOT) {
      root.self += self.get(n.id) ?? 0;
      for (const c of n.children ?? []) {
        const node = byId.get(c);
        if (node !== undefined) pending.push([node, root]);
      }
    } else {
      pending.push([n, root]);
    }
  }
  const seen = new Set<number>();
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    const [node, parent] = item;
    // A well-formed profile is a tree; this only keeps a corrupt one from looping.
    if (seen.has(node.id)) continue;
    seen.add(node.id);
    const cf = node.callFrame;
    const line = cf.lineNumber >= 0 ? cf.lineNumber + 1 : 0;
    const key = `${cf.functionName}\u0000${cf.url}\u0000${line}\u0000${cf.columnNumber}`;
    const frame = child(parent, key, () =>
      newFrame(key, cf.functionName || '(anonymous)', locationOf(cf.url, line), categoryOf(cf)),
    );
    let us = self.get(node.id) ?? 0;
    const ticks = node.positionTicks ?? [];
    const lines = us > 0 && ticks.length > 0 && source ? source(cf.url) : undefined;
    if (lines !== undefined) {
      const all = ticks.reduce((s, t) => s + t.ticks, 0);
      const sampled = us;
      for (const t of ticks) {
        const call = jsonCallOn(lines[t.line - 1]);
        if (call === undefined || all === 0) continue;
        const moved = (sampled * t.ticks) / all;
        const location = locationOf(cf.url, t.line);
        const jsonKey = `${call}\u0000${location}`;
        child(frame, jsonKey, () => newFrame(jsonKey, call, location, JSON_CATEGORY)).self += moved;
        us -= moved;
      }
    }
    frame.self += us;
    for (const c of node.children ?? []) {
      const next = byId.get(c);
      if (next !== undefined) pending.push([next, frame]);
    }
  }
  // Totals bottom-up: a pre-order list walked backwards visits every child before its parent.
  const order: [Frame, Frame | undefined][] = [];
  const stack: [Frame, Frame | undefined][] = [[root, undefined]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    order.push(item);
    for (const c of item[0].children.values()) stack.push([c, item[0]]);
  }
  for (const [f] of order) f.total = f.self;
  for (let i = order.length - 1; i > 0; i--) {
    const [f, parent] = order[i] ?? [root, undefined];
    if (parent) parent.total += f.total;
  }
  return { root, samples };
}

// ---------------------------------------------------------------------------------------------
// The summary

export function summarise(profile: CpuProfile, options: AnalysisOptions = {}): Summary {
  const { root, samples } = buildTree(profile, options);
  const fns = new Map<string, { f: Frame; self: number; total: number }>();
  const categories = new Map<string, number>();
  // Depth-first with a count of each function on the current stack: a frame adds its total to its
  // function only when no frame below it is the same function, so recursion is not counted twice.
  const onStack = new Map<string, number>();
  const walk: { f: Frame; leaving: boolean }[] = [{ f: root, leaving: false }];
  for (let step = walk.pop(); step !== undefined; step = walk.pop()) {
    const { f, leaving } = step;
    const depth = onStack.get(f.key) ?? 0;
    if (leaving) {
      onStack.set(f.key, depth - 1);
      continue;
    }
    categories.set(f.category, (categories.get(f.category) ?? 0) + f.self);
    if (f !== root && f.name !== IDLE) {
      const agg = fns.get(f.key) ?? { f, self: 0, total: 0 };
      agg.self += f.self;
      if (depth === 0) agg.total += f.total;
      fns.set(f.key, agg);
    }
    onStack.set(f.key, depth + 1);
    walk.push({ f, leaving: true });
    for (const c of f.children.values()) walk.push({ f: c, leaving: false });
  }
  const ms = (us: number): number => us / 1000;
  const totalMs = ms(root.total);
  const idleMs = ms(categories.get(IDLE) ?? 0);
  return {
    totalMs,
    idleMs,
    busyMs: totalMs - idleMs,
    samples,
    functions: [...fns.values()]
      .map(({ f, self, total }) => ({
        name: f.name,
        location: f.location,
        category: f.category,
        selfMs: ms(self),
        totalMs: ms(total),
      }))
      .sort((a, b) => b.selfMs - a.selfMs || b.totalMs - a.totalMs),
    categories: [...categories]
      .filter(([, us]) => us > 0)
      .map(([category, us]) => ({ category, ms: ms(us) }))
      .sort((a, b) => b.ms - a.ms),
  };
}

/** Three significant figures or so, whatever the size (and sign: a difference is formatted too). */
function fmtMs(v: number): string {
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function pct(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : '—';
}

function cell(s: string): string {
  return s.replaceAll('|', '\\|');
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows].map((r) => r.map(cell));
  const widths = header.map((_, i) => Math.max(3, ...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string =>
    `| ${widths.map((w, i) => (r[i] ?? '').padEnd(w)).join(' | ')} |`;
  const [head = [], ...body] = all;
  return [line(head), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...body.map(line)]
    .join('\n')
    .concat('\n');
}

function fnLabel(f: FunctionTime): string {
  return f.location === '' ? f.name : `${f.name} (${f.location})`;
}

function fnRows(fns: readonly FunctionTime[], busy: number): string[][] {
  return fns.map((f) => [
    fnLabel(f),
    f.category,
    fmtMs(f.selfMs),
    pct(f.selfMs, busy),
    fmtMs(f.totalMs),
    pct(f.totalMs, busy),
  ]);
}

/** The summary as Markdown: a line of totals, then categories, top functions by self and total. */
export function summaryMarkdown(summary: Summary, topN = 15): string {
  const { busyMs: busy } = summary;
  const fnHeader = ['function', 'category', 'self ms', 'self %', 'total ms', 'total %'];
  const byTotal = [...summary.functions].sort((a, b) => b.totalMs - a.totalMs).slice(0, topN);
  return [
    `${fmtMs(summary.totalMs)} ms sampled (${summary.samples} samples): ${fmtMs(busy)} ms busy, ` +
      `${fmtMs(summary.idleMs)} ms idle. Percentages are of the busy time.\n`,
    '#### Self time by category\n',
    table(
      ['category', 'self ms', '% of busy'],
      summary.categories.map((c) => [
        c.category,
        fmtMs(c.ms),
        c.category === IDLE ? 'not busy' : pct(c.ms, busy),
      ]),
    ),
    `#### Top ${topN} functions by self time\n`,
    table(fnHeader, fnRows(summary.functions.filter((f) => f.selfMs > 0).slice(0, topN), busy)),
    `#### Top ${topN} functions by total time\n`,
    table(fnHeader, fnRows(byTotal, busy)),
  ].join('\n');
}

export interface CompareOptions {
  /** Events (e.g. readiness flips) in the before profile's window, for ms per 1000 events. */
  readonly perBefore?: number;
  readonly perAfter?: number;
  /** Functions with the largest change in self time to list. Default 15. */
  readonly top?: number;
}

/**
 * Two summaries side by side. Functions are matched by name and file, not line, so that an edit
 * above a function between the two trees does not split it in two.
 */
export function compareMarkdown(
  before: Summary,
  after: Summary,
  options: CompareOptions = {},
): string {
  const { perBefore, perAfter, top = 15 } = options;
  const per = perBefore !== undefined && perAfter !== undefined && perBefore > 0 && perAfter > 0;
  const perK = (v: number, n: number | undefined): string =>
    n === undefined ? '—' : fmtMs((1000 * v) / n);
  const delta = (a: number, b: number): string => `${b - a >= 0 ? '+' : ''}${fmtMs(b - a)}`;
  const header = ['category', 'before ms', 'before %', 'after ms', 'after %', 'Δ ms'];
  if (per) header.push('before ms/1k events', 'after ms/1k events', 'Δ ms/1k events');
  const row = (name: string, a: number, b: number, pa: string, pb: string): string[] => {
    const r = [name, fmtMs(a), pa, fmtMs(b), pb, delta(a, b)];
    if (per) {
      r.push(
        perK(a, perBefore),
        perK(b, perAfter),
        delta((1000 * a) / perBefore, (1000 * b) / perAfter),
      );
    }
    return r;
  };
  const cats = new Map<string, [number, number]>();
  for (const c of before.categories) cats.set(c.category, [c.ms, 0]);
  for (const c of after.categories) cats.set(c.category, [cats.get(c.category)?.[0] ?? 0, c.ms]);
  const busyCats = [...cats]
    .filter(([name]) => name !== IDLE)
    .sort(([, a], [, b]) => Math.max(...b) - Math.max(...a));
  const catRows = busyCats.map(([name, [a, b]]) =>
    row(name, a, b, pct(a, before.busyMs), pct(b, after.busyMs)),
  );
  catRows.push(
    row('**busy, all**', before.busyMs, after.busyMs, '100 %', '100 %'),
    row(IDLE, before.idleMs, after.idleMs, 'not busy', 'not busy'),
  );

  const fnKey = (f: FunctionTime): string =>
    `${f.name} (${f.location.replace(/:\d+$/, '')}) ${f.category}`;
  const fns = new Map<string, [FunctionTime, number, number]>();
  for (const f of before.functions) {
    const e = fns.get(fnKey(f)) ?? [f, 0, 0];
    e[1] += f.selfMs;
    fns.set(fnKey(f), e);
  }
  for (const f of after.functions) {
    const e = fns.get(fnKey(f)) ?? [f, 0, 0];
    e[2] += f.selfMs;
    fns.set(fnKey(f), e);
  }
  const changed = [...fns.values()]
    .sort(([, a1, b1], [, a2, b2]) => Math.abs(b2 - a2) - Math.abs(b1 - a1))
    .slice(0, top);
  const fnHeader = ['function', 'category', 'before self ms', 'after self ms', 'Δ ms'];
  if (per) fnHeader.push('before ms/1k events', 'after ms/1k events');
  const fnRowsOut = changed.map(([f, a, b]) => {
    const r = [
      `${f.name}${f.location === '' ? '' : ` (${f.location.replace(/:\d+$/, '')})`}`,
      f.category,
      fmtMs(a),
      fmtMs(b),
      delta(a, b),
    ];
    if (per) r.push(perK(a, perBefore), perK(b, perAfter));
    return r;
  });

  const events = per ? `; ${perBefore} events before, ${perAfter} after` : '';
  return [
    `Before: ${fmtMs(before.totalMs)} ms sampled, ${fmtMs(before.busyMs)} ms busy. ` +
      `After: ${fmtMs(after.totalMs)} ms sampled, ${fmtMs(after.busyMs)} ms busy${events}. ` +
      'Percentages are of each profile’s busy time.\n',
    '#### Self time by category\n',
    table(header, catRows),
    `#### The ${top} functions whose self time changed most\n`,
    table(fnHeader, fnRowsOut),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The flame graph

export interface FlameOptions extends AnalysisOptions {
  readonly title?: string;
  /** Of the whole picture, px. Default 1200. */
  readonly width?: number;
  /** Frames narrower than this fraction of the graph are left out, with what is above them. */
  readonly minFraction?: number;
  /** Draw (idle) too; by default the graph's width is the busy time only. */
  readonly includeIdle?: boolean;
  /** A line under the graph; by default a note on how to read it. */
  readonly caption?: string;
}

const FRAME_H = 18;
const PAD = 12;
const FONT = 12;
/** DejaVu Sans Mono's advance is 0.602 em; a little over it so labels never overrun a frame. */
const CHAR_W = FONT * 0.61;
const MONO = "'DejaVu Sans Mono', Menlo, Consolas, monospace";
const SANS = "'DejaVu Sans', Verdana, Helvetica, Arial, sans-serif";

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

function hslHex(h: number, s: number, l: number): string {
  const a = (s / 100) * Math.min(l / 100, 1 - l / 100);
  const channel = (n: number): string => {
    const k = (n + h / 30) % 12;
    const v = l / 100 - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(255 * v)
      .toString(16)
      .padStart(2, '0');
  };
  return `#${channel(0)}${channel(8)}${channel(4)}`;
}

/**
 * A category's hue family; within it a frame's shade varies by its name so that neighbours stay
 * apart. The hue of a src/ folder or a package is from its name, so one graph's colours are the
 * next one's.
 */
function colour(category: string, name: string): string {
  const j = (hash(name) % 9) - 4; // lightness jitter, ±4 %
  const pick = (lo: number, span: number): number => lo + (hash(category) % span);
  if (category === GC) return hslHex(0, 65, 72 + j);
  if (category === PROGRAM) return hslHex(0, 0, 78 + j);
  if (category === IDLE) return hslHex(0, 0, 90);
  if (category === JSON_CATEGORY) return hslHex(290, 55, 74 + j);
  if (category === NATIVE) return hslHex(30, 18, 74 + j);
  if (category === NODE_INTERNALS) return hslHex(22, 85, 70 + j);
  if (category === CLIENT_NODE) return hslHex(212, 70, 72 + j);
  if (category.startsWith('src/')) return hslHex(pick(85, 95), 52, 62 + j);
  if (category === 'e2e') return hslHex(250, 40, 78 + j);
  if (category === OTHER) return hslHex(45, 25, 72 + j);
  return hslHex(pick(38, 22), 85, 62 + j); // another package
}

function xml(s: string): string {
  return s
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}

function fit(text: string, px: number): string {
  const room = Math.floor((px - 6) / CHAR_W);
  if (text.length <= room) return text;
  return room >= 4 ? `${text.slice(0, room - 1)}…` : '';
}

/** A frame's label as SVG text content: the name, and its file in grey if there is room. */
function frameLabel(f: Frame, px: number): string {
  const file = f.location.slice(f.location.lastIndexOf('/') + 1);
  if (file !== '' && (f.name.length + 1 + file.length) * CHAR_W + 6 <= px) {
    return `${xml(f.name)} <tspan fill="#505050">${xml(file)}</tspan>`;
  }
  return xml(fit(f.name, px));
}

function byName(a: Frame, b: Frame): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

export function renderFlameSvg(profile: CpuProfile, options: FlameOptions = {}): string {
  const {
    title = 'CPU flame graph',
    width = 1200,
    minFraction = 0.001,
    includeIdle = false,
  } = options;
  const { root, samples } = buildTree(profile, options);
  const idle = [...root.children.values()]
    .filter((f) => f.name === IDLE)
    .reduce((s, f) => s + f.total, 0);
  const drawn = includeIdle ? root.total : root.total - idle;
  const graphW = width - 2 * PAD;
  const scale = drawn > 0 ? graphW / drawn : 0;

  // Laid out first, drawn second: the depth of the deepest frame sets where the root goes.
  // Children in name order, as in the classic flame graph, so that two graphs of one program line
  // up; the order of time is not a time axis.
  interface Placed {
    f: Frame;
    depth: number;
    x: number;
    w: number;
  }
  const placed: Placed[] = [];
  const rootName = includeIdle ? 'all' : 'all busy time (idle left out)';
  const rootFrame: Frame = { ...root, name: rootName, total: drawn };
  const stack: Placed[] = [{ f: rootFrame, depth: 0, x: PAD, w: drawn * scale }];
  let maxDepth = 0;
  for (let p = stack.pop(); p !== undefined; p = stack.pop()) {
    placed.push(p);
    maxDepth = Math.max(maxDepth, p.depth);
    let x = p.x;
    const kids = [...p.f.children.values()]
      .filter((c) => includeIdle || p.f !== rootFrame || c.name !== IDLE)
      .sort(byName);
    for (const c of kids) {
      const w = c.total * scale;
      if (drawn > 0 && c.total / drawn >= minFraction) {
        stack.push({ f: c, depth: p.depth + 1, x, w });
      }
      x += w;
    }
  }

  // The legend counts every frame, those too narrow to draw as well.
  const categories = new Map<string, number>();
  const all = [root];
  for (let f = all.pop(); f !== undefined; f = all.pop()) {
    categories.set(f.category, (categories.get(f.category) ?? 0) + f.self);
    all.push(...f.children.values());
  }
  const legend = [...categories]
    .filter(([c, us]) => us > 0 && (includeIdle || c !== IDLE))
    .sort(([, a], [, b]) => b - a);

  const headH = 58;
  const graphTop = headH;
  const graphH = (maxDepth + 1) * FRAME_H;
  // The legend wraps into rows of swatches as wide as their labels.
  const items = legend.map(([c, us]) => {
    const text = `${c}  ${fmtMs(us / 1000)} ms (${pct(us, drawn)})`;
    return { c, text, w: 18 + text.length * 6.6 + 18 };
  });
  const rows: (typeof items)[] = [[]];
  let rowW = 0;
  for (const it of items) {
    if (rowW + it.w > graphW && rowW > 0) {
      rows.push([]);
      rowW = 0;
    }
    rows.at(-1)?.push(it);
    rowW += it.w;
  }
  const legendTop = graphTop + graphH + 26;
  const captionTop = legendTop + rows.length * 20 + 8;
  const caption =
    options.caption ??
    'Width is sampled CPU time, the root at the bottom, callees above callers; left to right is ' +
      'by name, not time. Self time by category, as a share of the graph, is in the legend. ' +
      `Frames under ${(minFraction * 100).toFixed(1)} % of the width are left out. ` +
      'JSON.parse/stringify frames are inferred from the calling line (V8 charges them to the ' +
      'caller). Hover a frame for its file, line and time.';
  const captionLines = wrap(caption, Math.floor(graphW / 6.2));
  const height = captionTop + captionLines.length * 16 + PAD;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" font-family="${xml(SANS)}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" font-size="17" font-weight="bold" text-anchor="middle">` +
      `${xml(title)}</text>`,
    `<text x="${width / 2}" y="44" font-size="13" fill="#333333" text-anchor="middle">` +
      xml(
        `${fmtMs(root.total / 1000)} ms sampled (${samples} samples): ${fmtMs((root.total - idle) / 1000)} ms busy, ` +
          `${fmtMs(idle / 1000)} ms idle${includeIdle ? '' : ' (not drawn)'}`,
      ) +
      '</text>',
    `<g font-family="${xml(MONO)}" font-size="${FONT}">`,
  );
  for (const { f, depth, x, w } of placed) {
    const y = graphTop + (maxDepth - depth) * FRAME_H;
    const where = f.location === '' ? f.name : `${f.name} (${f.location})`;
    const tip = `${where} — ${fmtMs(f.total / 1000)} ms, ${pct(f.total, drawn)}`;
    const label = frameLabel(f, w);
    out.push(
      `<g class="frame"><title>${xml(tip)}</title>` +
        `<rect x="${x.toFixed(2)}" y="${y}" width="${Math.max(0, w - 0.5).toFixed(2)}" ` +
        `height="${FRAME_H - 1}" rx="2" fill="${colour(f.category, f.name)}"/>` +
        (label === ''
          ? ''
          : `<text x="${(x + 3).toFixed(2)}" y="${y + FRAME_H - 5}">${label}</text>`) +
        '</g>',
    );
  }
  out.push('</g>');
  rows.forEach((row, i) => {
    let x = PAD;
    const y = legendTop + i * 20;
    for (const it of row) {
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y - 11}" width="13" height="13" rx="2" ` +
          `fill="${colour(it.c, '')}" stroke="#888888" stroke-width="0.5"/>`,
        `<text x="${(x + 18).toFixed(1)}" y="${y}" font-size="12">${xml(it.text)}</text>`,
      );
      x += it.w;
    }
  });
  captionLines.forEach((l, i) => {
    out.push(
      `<text x="${PAD}" y="${captionTop + i * 16}" font-size="12" fill="#555555">${xml(l)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}

function wrap(text: string, chars: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > chars) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

// ---------------------------------------------------------------------------------------------
// The command

function count(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} wants a positive number, not ${v}`);
  return n;
}

function main(argv: readonly string[]): void {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      svg: { type: 'string' },
      title: { type: 'string' },
      top: { type: 'string', default: '15' },
      width: { type: 'string', default: '1200' },
      before: { type: 'string' },
      after: { type: 'string' },
      per: { type: 'string' },
      'per-before': { type: 'string' },
      'per-after': { type: 'string' },
    },
  });
  const top = count(values.top, '--top') ?? 15;
  if (values.before !== undefined || values.after !== undefined) {
    if (values.before === undefined || values.after === undefined) {
      throw new Error('compare mode wants both --before=<profile> and --after=<profile>');
    }
    const per = count(values.per, '--per');
    const perBefore = count(values['per-before'], '--per-before') ?? per;
    const perAfter = count(values['per-after'], '--per-after') ?? per;
    const before = summarise(readCpuProfile(values.before));
    const after = summarise(readCpuProfile(values.after));
    process.stdout.write(
      compareMarkdown(before, after, {
        top,
        ...(perBefore === undefined ? {} : { perBefore }),
        ...(perAfter === undefined ? {} : { perAfter }),
      }),
    );
    return;
  }
  const [file, ...extra] = positionals;
  if (file === undefined || extra.length > 0) {
    throw new Error(
      'usage: flame.ts <profile.cpuprofile> [--svg=out.svg] [--title=…] [--top=15] [--width=1200]\n' +
        '       flame.ts --before=a.cpuprofile --after=b.cpuprofile [--per=N | --per-before=N --per-after=M]',
    );
  }
  const profile = readCpuProfile(file);
  const source = sourceFromDisk();
  process.stdout.write(summaryMarkdown(summarise(profile, { sourceLines: source }), top));
  if (values.svg !== undefined) {
    writeFileSync(
      values.svg,
      renderFlameSvg(profile, {
        sourceLines: source,
        width: count(values.width, '--width') ?? 1200,
        title: values.title ?? file.slice(file.lastIndexOf('/') + 1),
      }),
    );
    process.stderr.write(`wrote ${values.svg}\n`);
  }
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  }
}
