// GC pauses as V8 reports them with --trace-gc, one line per collection, read from a process's log:
// the benchmarks run outrigger with that flag so that every pause is counted, not only what
// prom-client's coarse histogram buckets can tell.

export interface GcFigures {
  readonly count: number;
  readonly totalMs: number;
  readonly maxMs: number;
  readonly maxKind: string;
  /** The 99th percentile of all pauses, young and old generation together. */
  readonly p99Ms: number;
  /** Major (mark-compact) collections. */
  readonly majorCount: number;
  readonly majorMaxMs: number;
  /** Pauses of 100 ms or more. */
  readonly over100ms: number;
  /** prom-client's nodejs_gc_duration_seconds_sum, all kinds (what a dashboard shows). */
  readonly promTotalSeconds: number | undefined;
}

/** GC pauses from V8's --trace-gc lines ("... Scavenge ... MB, pooled: 0.0 MB, 1.23 / 0.00 ms"). */
export function gcFromTrace(logText: string): Omit<GcFigures, 'promTotalSeconds'> {
  const pauses: number[] = [];
  let totalMs = 0;
  let maxMs = 0;
  let maxKind = '';
  let majorCount = 0;
  let majorMaxMs = 0;
  let over100ms = 0;
  for (const line of logText.split('\n')) {
    const m =
      /\d+ ms: ([A-Za-z-]+(?: \([^)]*\))?) .*?MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/.exec(
        line,
      );
    if (m === null) continue;
    const ms = Number(m[2]);
    const kind = m[1] ?? '';
    pauses.push(ms);
    totalMs += ms;
    if (ms >= 100) over100ms++;
    if (ms > maxMs) {
      maxMs = ms;
      maxKind = kind;
    }
    if (kind.startsWith('Mark-Compact') || kind.startsWith('Mark-Sweep')) {
      majorCount++;
      majorMaxMs = Math.max(majorMaxMs, ms);
    }
  }
  pauses.sort((a, b) => a - b);
  const p99Ms = pauses.length === 0 ? NaN : (pauses[Math.ceil(pauses.length * 0.99) - 1] ?? NaN);
  return {
    count: pauses.length,
    totalMs,
    maxMs,
    maxKind,
    p99Ms,
    majorCount,
    majorMaxMs,
    over100ms,
  };
}
