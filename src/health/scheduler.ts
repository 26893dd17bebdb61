import PQueue from 'p-queue';
import type { DenyList } from '../net/denylist.ts';
import { probe, type ProbeResult, type ProbeSpec } from './probe.ts';
import {
  initialHealth,
  observe,
  type AddressHealth,
  type HealthState,
  type Thresholds,
} from './state.ts';

export interface Target {
  /** Stable identity, e.g. "<namespace>/<name>/<ip>". */
  readonly key: string;
  readonly spec: ProbeSpec;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly thresholds: Thresholds;
  /** Where to start (e.g. restored from the resource's status); default Unknown. */
  readonly initialState?: HealthState;
}

export interface SchedulerOptions {
  readonly denyList: DenyList;
  /** Probes in flight at once across every target. */
  readonly concurrency: number;
  /** Called after every probe, and with `changed` true when the state flipped. */
  readonly onResult: (
    target: Target,
    health: AddressHealth,
    result: ProbeResult,
    changed: boolean,
  ) => void;
  readonly now?: () => number;
  readonly random?: () => number;
}

/** Read through a call so that narrowing does not assume the flag cannot change during an await. */
function isStopped(run: Running): boolean {
  return run.stopped;
}

interface Running {
  target: Target;
  health: AddressHealth;
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
}

/**
 * Probes each target every `intervalMs` with ±10 % jitter (the first probe at a random point of the
 * first interval, so that many targets do not fire together), at most `concurrency` at a time.
 * Targets are replaced wholesale when their definition changes; their health carries over.
 */
export class ProbeScheduler {
  private readonly targets = new Map<string, Running>();
  private readonly pool: PQueue;
  private readonly o: SchedulerOptions;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(o: SchedulerOptions) {
    this.o = o;
    this.pool = new PQueue({ concurrency: o.concurrency });
    this.now = o.now ?? Date.now;
    this.random = o.random ?? Math.random;
  }

  health(key: string): AddressHealth | undefined {
    return this.targets.get(key)?.health;
  }

  keys(): string[] {
    return [...this.targets.keys()];
  }

  /**
   * Adds or redefines a target; an unchanged definition is left running as it is. `initialState`
   * only matters for a new target, so it is not part of the definition.
   */
  upsert(target: Target): void {
    const existing = this.targets.get(target.key);
    const definition = (t: Target): string => JSON.stringify({ ...t, initialState: undefined });
    if (existing !== undefined && definition(existing.target) === definition(target)) return;
    const health = existing?.health ?? initialHealth(this.now(), target.initialState ?? 'Unknown');
    if (existing !== undefined) this.stopOne(existing);
    const run: Running = { target, health, timer: undefined, stopped: false };
    this.targets.set(target.key, run);
    this.schedule(run, this.random() * target.intervalMs);
  }

  remove(key: string): void {
    const run = this.targets.get(key);
    if (run === undefined) return;
    this.stopOne(run);
    this.targets.delete(key);
  }

  /** Removes every target whose key is not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    for (const key of this.targets.keys()) if (!keep.has(key)) this.remove(key);
  }

  async stop(): Promise<void> {
    for (const run of this.targets.values()) this.stopOne(run);
    this.targets.clear();
    this.pool.clear();
    await this.pool.onIdle();
  }

  private stopOne(run: Running): void {
    run.stopped = true;
    if (run.timer !== undefined) clearTimeout(run.timer);
  }

  private schedule(run: Running, delayMs: number): void {
    run.timer = setTimeout(() => {
      void this.pool.add(async () => {
        if (run.stopped) return;
        const t = run.target;
        const result = await probe(t.spec, t.timeoutMs, this.o.denyList);
        // Removed or redefined while the probe ran: its result belongs to nobody.
        if (isStopped(run)) return;
        const before = run.health.state;
        run.health = observe(run.health, result.ok, t.thresholds, this.now(), result.message);
        this.o.onResult(t, run.health, result, run.health.state !== before);
        const jitter = 1 + (this.random() - 0.5) * 0.2;
        this.schedule(run, t.intervalMs * jitter);
      });
    }, delayMs);
  }
}
