import { AsyncResource } from 'node:async_hooks';

/**
 * A bounded pool that is fair across tenants: probes of one namespace (and, within it, of one
 * ExternalBackend) cannot crowd out another's. p-queue offers a global concurrency limit and
 * priorities but neither per-tenant caps nor round-robin between tenants, which is what fairness
 * needs here, hence this class.
 *
 * - At most `concurrency` tasks run at once.
 * - No namespace holds more than `perTenant` of them (default half the pool), so however slow one
 *   namespace's targets are (silent addresses holding a slot for a whole timeout), the other half
 *   of the pool is free for everyone else.
 * - When a slot frees, namespaces take turns (round-robin), and within a namespace its backends
 *   take turns; each backend's own tasks run in the order they were added.
 */

export interface FairPoolOptions {
  readonly concurrency: number;
  /** Most tasks one namespace may run at once; default max(1, ceil(concurrency / 2)). */
  readonly perTenant?: number;
}

/** Who a task belongs to: [namespace, backend]. */
export type Tenant = readonly [string, string];

/** A task the pool starts; it settles its own outcome and never rejects (see `submit`). */
type Task = () => Promise<void>;

/**
 * Keys that take turns: `take` picks, among the keys `ok` accepts, the one served least recently
 * (never served counts as longest ago; ties go to the earliest added), so a newcomer is not queued
 * behind a key that has just been served.
 */
class Ring<V> {
  readonly items = new Map<string, V>();
  private readonly served = new Map<string, number>();
  private turn = 0;

  getOrAdd(key: string, make: () => V): V {
    let v = this.items.get(key);
    if (v === undefined) {
      v = make();
      this.items.set(key, v);
    }
    return v;
  }

  delete(key: string): void {
    this.items.delete(key);
    this.served.delete(key);
  }

  /** Records that `key` was served now, as `take` does for the key it picks. */
  touch(key: string): void {
    this.served.set(key, this.turn++);
  }

  take(ok: (v: V) => boolean): [string, V] | undefined {
    let best: [string, V] | undefined;
    let bestTurn = Infinity;
    for (const [key, v] of this.items) {
      const t = this.served.get(key) ?? -1;
      if (t < bestTurn && ok(v)) {
        best = [key, v];
        bestTurn = t;
      }
    }
    if (best !== undefined) this.served.set(best[0], this.turn++);
    return best;
  }
}

/** A backend: its queued tasks and how many of them run. */
interface Entry {
  running: number;
  readonly tasks: Task[];
}

interface Namespace {
  running: number;
  /** Tasks of its backends that have not started: what `pump` asks of every namespace. */
  queued: number;
  readonly backends: Ring<Entry>;
}

const hasTasks = (e: Entry): boolean => e.tasks.length > 0;
const newNamespace = (): Namespace => ({ running: 0, queued: 0, backends: new Ring() });
const newEntry = (): Entry => ({ running: 0, tasks: [] });

/**
 * How many tasks finish between two sweeps of the entries of tenants with nothing running and
 * nothing queued. An entry is kept that long rather than deleted when its last task ends: at a
 * thousand probes a second most tasks run alone, and building and deleting their tenant's entries
 * (and resizing the maps that hold them) for each was a third of what a probe allocated.
 */
const sweepEvery = 1024;

export class FairPool {
  private readonly concurrency: number;
  private readonly perTenant: number;
  private readonly namespaces = new Ring<Namespace>();
  private running = 0;
  private queued = 0;
  private finished = 0;
  private idle: (() => void)[] = [];

  constructor(o: FairPoolOptions) {
    this.concurrency = Math.max(1, o.concurrency);
    this.perTenant = Math.max(1, o.perTenant ?? Math.ceil(this.concurrency / 2));
  }

  get pending(): number {
    return this.queued;
  }

  get active(): number {
    return this.running;
  }

  /** Namespaces remembered: those with work, and the idle ones the next sweep forgets. */
  get tenants(): number {
    return this.namespaces.items.size;
  }

  /** Queues `task` for `tenant`; resolves or rejects with it once it has run. */
  run<T>(tenant: Tenant, task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // An async wrapper: a task that throws before returning its promise rejects too.
      this.submit(tenant, async () => {
        try {
          resolve(await task());
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
  }

  /**
   * Queues `task` for `tenant` with no promise of its own, for callers that handle its outcome
   * inside it (the prober: one promise fewer per probe). `task` should not reject; if it does, the
   * rejection is left unhandled, for the process's last-resort handler to report.
   */
  submit(tenant: Tenant, task: Task): void {
    const [ns, backend] = tenant;
    const n = this.namespaces.getOrAdd(ns, newNamespace);
    const b = n.backends.getOrAdd(backend, newEntry);
    // Nothing waits, so nobody has an earlier turn: start at once, as pump would.
    if (this.queued === 0 && this.running < this.concurrency && n.running < this.perTenant) {
      this.namespaces.touch(ns);
      n.backends.touch(backend);
      this.start(n, b, task);
      return;
    }
    // It starts later, when another task's end frees a slot: bound here, it runs in the context
    // it was submitted from, not in that other task's (errors are reported with their object).
    b.tasks.push(AsyncResource.bind(task));
    this.queued++;
    n.queued++;
    this.pump();
  }

  /** Drops every task that has not started (their promises never settle). */
  clear(): void {
    for (const n of this.namespaces.items.values()) {
      for (const b of n.backends.items.values()) b.tasks.length = 0;
      n.queued = 0;
    }
    this.queued = 0;
    this.sweep();
    this.settleIdle();
  }

  /** Resolves once nothing runs and nothing waits. */
  onIdle(): Promise<void> {
    if (this.running === 0 && this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private start(n: Namespace, b: Entry, task: Task): void {
    this.running++;
    n.running++;
    b.running++;
    const done = (): void => {
      this.running--;
      n.running--;
      b.running--;
      if (++this.finished % sweepEvery === 0) this.sweep();
      this.pump();
    };
    let settled: Promise<void>;
    try {
      // Promise.resolve hands a promise back as it is, and makes anything else one.
      settled = Promise.resolve(task());
    } catch {
      // submit's contract forbids it; the slot must come back all the same.
      settled = Promise.resolve();
    }
    settled.then(done, (err: unknown) => {
      done();
      // Left unhandled on purpose: the process's last-resort handler reports it with its concern.
      throw err;
    });
  }

  private pump(): void {
    while (this.queued > 0 && this.running < this.concurrency) {
      const picked = this.namespaces.take((n) => n.running < this.perTenant && n.queued > 0);
      if (picked === undefined) break;
      const b = picked[1].backends.take(hasTasks);
      const task = b?.[1].tasks.shift();
      if (b === undefined || task === undefined) break;
      this.queued--;
      picked[1].queued--;
      this.start(picked[1], b[1], task);
    }
    this.settleIdle();
  }

  /** Forgets the tenants that have nothing running and nothing queued. */
  private sweep(): void {
    for (const [key, n] of [...this.namespaces.items]) {
      for (const [name, b] of [...n.backends.items])
        if (b.running === 0 && b.tasks.length === 0) n.backends.delete(name);
      if (n.running === 0 && n.backends.items.size === 0) this.namespaces.delete(key);
    }
  }

  private settleIdle(): void {
    if (this.running !== 0 || this.queued !== 0) return;
    const waiting = this.idle;
    this.idle = [];
    for (const resolve of waiting) resolve();
  }
}
