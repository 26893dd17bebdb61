import { realClock, type Clock, type Timer } from '../runtime/clock.ts';
import { withConcern } from '../runtime/errors.ts';
import type { DenyList } from '../net/denylist.ts';
import { FairPool, type Tenant } from '../runtime/fairpool.ts';
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
  /** Whose probe this is, for fair scheduling: [namespace, backend name]. */
  readonly tenant: Tenant;
  readonly spec: ProbeSpec;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly thresholds: Thresholds;
  /** Where to start (e.g. restored from the resource's status); default Unknown. */
  readonly initialState?: HealthState;
  /**
   * Set when the address is a Node's, granted by an ExternalBackendPolicy rule: the prober's own
   * deny-list check lets it through on the probe's port unless something else denies it.
   */
  readonly nodeGrant?: true;
}

export interface SchedulerOptions {
  readonly denyList: Pick<DenyList, 'denies'>;
  /** Probes in flight at once across every target. */
  readonly concurrency: number;
  /**
   * Called after every probe, and with `changed` true when the state flipped or the certificate
   * the probes see is another one (its expiry is in status).
   */
  readonly onResult: (
    target: Target,
    health: AddressHealth,
    result: ProbeResult,
    changed: boolean,
  ) => void;
  /** How late a probe started after it was due, in seconds (time spent waiting for a slot). */
  readonly onLag?: (seconds: number) => void;
  /**
   * Told about an error that escaped a probe or `onResult` (a bug: probe() never rejects). The
   * target keeps its schedule either way.
   */
  readonly onError?: (target: Target, err: unknown) => void;
  /** Times the schedule and the health transitions; the real clock by default. */
  readonly clock?: Clock;
  readonly random?: () => number;
  /** Runs one probe; the real prober by default (tests substitute a scripted one). */
  readonly probe?: typeof probe;
}

/** Read through a call so that narrowing does not assume the flag cannot change during an await. */
function isStopped(run: Running): boolean {
  return run.stopped;
}

interface Running {
  readonly target: Target;
  health: AddressHealth;
  timer: Timer | undefined;
  stopped: boolean;
  /** When the probe waiting in the pool was due (a target has one at a time). */
  due: number;
  /**
   * The timer's callback and the pool's task, made once per target: at a thousand probes a second
   * what each probe allocates is what the garbage collector costs.
   */
  readonly fire: () => void;
  readonly attempt: () => Promise<void>;
}

/**
 * Probes each target every `intervalMs` with ±10 % jitter (the first probe at a random point of the
 * first interval, so that many targets do not fire together), through a pool that is fair across
 * namespaces and backends (see fairpool.ts). The next probe is scheduled when one finishes, so a
 * target never has two probes in flight. Targets are replaced wholesale when their definition
 * changes; their health carries over.
 */
export class ProbeScheduler {
  private readonly targets = new Map<string, Running>();
  private readonly pool: FairPool;
  private readonly o: SchedulerOptions;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly probe: typeof probe;

  constructor(o: SchedulerOptions) {
    this.o = o;
    this.pool = new FairPool({ concurrency: o.concurrency });
    this.clock = o.clock ?? realClock;
    this.random = o.random ?? Math.random;
    this.probe = o.probe ?? probe;
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
    // A redefined target keeps its state (no flap on an edit) but not the certificate: the new
    // definition may not speak TLS, or may speak it to another server name.
    const kept = existing?.health;
    const health =
      kept === undefined
        ? initialHealth(this.clock.now(), target.initialState ?? 'Unknown')
        : {
            state: kept.state,
            successes: kept.successes,
            failures: kept.failures,
            since: kept.since,
            message: kept.message,
          };
    if (existing !== undefined) this.stopOne(existing);
    const run: Running = {
      target,
      health,
      timer: undefined,
      stopped: false,
      due: 0,
      fire: () => {
        run.due = this.clock.now();
        this.pool.submit(target.tenant, run.attempt);
      },
      attempt: () => this.attempt(run),
    };
    this.targets.set(target.key, run);
    // Everything a probe runs (its socket's callbacks too) is work on behalf of this address, so
    // that an error escaping it is reported with the address (see runtime/errors.ts). A timer
    // keeps the context it was set in, and each probe sets the next one, so entering the concern
    // here, once, covers every probe of the address; the pool runs a task that had to wait in the
    // context it was submitted from.
    withConcern({ probe: target.key }, () => {
      this.schedule(run, this.random() * target.intervalMs);
    });
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
    if (run.timer !== undefined) this.clock.clearTimeout(run.timer);
  }

  private schedule(run: Running, delayMs: number): void {
    run.timer = this.clock.setTimeout(run.fire, delayMs);
  }

  /** One probe of `run`, from the pool; never rejects. */
  private async attempt(run: Running): Promise<void> {
    if (run.stopped) return;
    const t = run.target;
    try {
      this.o.onLag?.(Math.max(0, this.clock.now() - run.due) / 1000);
      const result = await this.probe(
        t.spec,
        t.timeoutMs,
        this.o.denyList,
        t.nodeGrant === true ? { ports: [t.spec.port] } : undefined,
      );
      // Removed or redefined while the probe ran: its result belongs to nobody.
      if (isStopped(run)) return;
      const before = run.health;
      run.health = observe(
        run.health,
        result.ok,
        t.thresholds,
        this.clock.now(),
        result.message,
        result.certificateNotAfter,
      );
      this.o.onResult(
        t,
        run.health,
        result,
        run.health.state !== before.state ||
          run.health.certificateNotAfter !== before.certificateNotAfter,
      );
    } catch (err) {
      this.o.onError?.(t, err);
    } finally {
      if (!isStopped(run)) this.schedule(run, t.intervalMs * (1 + (this.random() - 0.5) * 0.2));
    }
  }
}
