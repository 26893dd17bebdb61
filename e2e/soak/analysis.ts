// Pure arithmetic of the soak run: per-minute figures from raw scrapes, the memory slope after
// warm-up, and the verdict. Kept apart from the run so the verdict rule can be read in one place.

export interface Sample {
  /** Seconds since the run started. */
  readonly t: number;
  readonly heapUsedBytes: number;
  readonly rssBytes: number;
  /** Largest event-loop delay since the previous scrape (prom-client resets it on every scrape). */
  readonly lagMaxSeconds: number;
  readonly cpuSeconds: number;
}

export interface Minute {
  readonly minute: number;
  /** Lowest heap seen in the minute: close to what survives garbage collection. */
  readonly heapFloorMiB: number;
  readonly heapMaxMiB: number;
  readonly rssMiB: number;
  readonly lagMaxMs: number;
  /** CPU the operator used in the minute, in percent of one core. */
  readonly cpuPercent: number;
}

const MiB = 1024 * 1024;

export function perMinute(samples: readonly Sample[]): Minute[] {
  const byMinute = new Map<number, Sample[]>();
  for (const s of samples) {
    const m = Math.floor(s.t / 60);
    byMinute.set(m, [...(byMinute.get(m) ?? []), s]);
  }
  const out: Minute[] = [];
  let prevCpu: { t: number; cpu: number } | undefined;
  for (const [minute, xs] of [...byMinute].sort((a, b) => a[0] - b[0])) {
    const last = xs[xs.length - 1];
    if (last === undefined) continue;
    const cpuPercent =
      prevCpu === undefined || last.t === prevCpu.t
        ? 0
        : (100 * (last.cpuSeconds - prevCpu.cpu)) / (last.t - prevCpu.t);
    prevCpu = { t: last.t, cpu: last.cpuSeconds };
    out.push({
      minute,
      heapFloorMiB: Math.min(...xs.map((s) => s.heapUsedBytes)) / MiB,
      heapMaxMiB: Math.max(...xs.map((s) => s.heapUsedBytes)) / MiB,
      rssMiB: last.rssBytes / MiB,
      lagMaxMs: Math.max(...xs.map((s) => s.lagMaxSeconds)) * 1000,
      cpuPercent,
    });
  }
  return out;
}

/** Least-squares slope of y over x; 0 with fewer than two points. */
export function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

export interface Verdict {
  /** Heap floor growth after warm-up, MiB per hour. */
  readonly heapSlopeMiBPerHour: number;
  readonly rssSlopeMiBPerHour: number;
  /** The heap floor's mean over the first minutes after warm-up: the baseline growth is judged by. */
  readonly baselineHeapMiB: number;
  readonly largestStallMs: number;
  readonly largestStallMinute: number;
  /** Growth that fails the run, MiB per hour. */
  readonly limitMiBPerHour: number;
  readonly growing: boolean;
}

/**
 * The heap "keeps growing" when its floor, after warm-up, rises faster than 10% of its baseline
 * per hour and faster than 8 MiB per hour (the first guards big heaps, the second small ones: a
 * 40 MiB heap drifting 4 MiB in an hour is noise from the allocator, not a leak).
 */
export function verdict(minutes: readonly Minute[], warmupMinutes: number): Verdict {
  const after = minutes.filter((m) => m.minute >= warmupMinutes);
  const head = after.slice(0, Math.max(1, Math.floor(after.length / 4)));
  const baselineHeapMiB =
    head.length === 0 ? 0 : head.reduce((a, m) => a + m.heapFloorMiB, 0) / head.length;
  const heapSlopeMiBPerHour = 60 * slope(after.map((m) => [m.minute, m.heapFloorMiB]));
  const rssSlopeMiBPerHour = 60 * slope(after.map((m) => [m.minute, m.rssMiB]));
  const worst = minutes.reduce<Minute | undefined>(
    (a, m) => (a === undefined || m.lagMaxMs > a.lagMaxMs ? m : a),
    undefined,
  );
  const limitMiBPerHour = Math.max(8, 0.1 * baselineHeapMiB);
  return {
    heapSlopeMiBPerHour,
    rssSlopeMiBPerHour,
    baselineHeapMiB,
    largestStallMs: worst?.lagMaxMs ?? 0,
    largestStallMinute: worst?.minute ?? 0,
    limitMiBPerHour,
    growing: after.length >= 3 && heapSlopeMiBPerHour > limitMiBPerHour,
  };
}
