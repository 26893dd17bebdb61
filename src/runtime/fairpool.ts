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

interface Task {
  readonly run: () => Promise<void>;
}

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

export class FairPool {
  private readonly concurrency: number;
  private readonly perTenant: number;
  private readonly namespaces = new Ring<Namespace>();
  private running = 0;
  private queued = 0;
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

  /** Queues `task` for `tenant`; resolves or rejects with it once it has run. */
  run<T>(tenant: Tenant, task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const [ns, backend] = tenant;
      const n = this.namespaces.getOrAdd(ns, () => ({
        running: 0,
        queued: 0,
        backends: new Ring(),
      }));
      const b = n.backends.getOrAdd(backend, () => ({ running: 0, tasks: [] }));
      b.tasks.push({
        run: async () => {
          this.running++;
          n.running++;
          b.running++;
          try {
            resolve(await task());
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          } finally {
            this.running--;
            n.running--;
            b.running--;
            // An entry is kept while it has work so that its turn is remembered.
            if (b.running === 0 && b.tasks.length === 0) n.backends.delete(backend);
            if (n.running === 0 && n.backends.items.size === 0) this.namespaces.delete(ns);
            this.pump();
          }
        },
      });
      this.queued++;
      n.queued++;
      this.pump();
    });
  }

  /** Drops every task that has not started (their promises never settle). */
  clear(): void {
    for (const [key, n] of [...this.namespaces.items]) {
      for (const [name, b] of [...n.backends.items]) {
        b.tasks.length = 0;
        if (b.running === 0) n.backends.delete(name);
      }
      n.queued = 0;
      if (n.running === 0) this.namespaces.delete(key);
    }
    this.queued = 0;
    this.settleIdle();
  }

  /** Resolves once nothing runs and nothing waits. */
  onIdle(): Promise<void> {
    if (this.running === 0 && this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private pump(): void {
    while (this.running < this.concurrency) {
      const picked = this.namespaces.take((n) => n.running < this.perTenant && n.queued > 0);
      if (picked === undefined) break;
      const b = picked[1].backends.take(hasTasks);
      const task = b?.[1].tasks.shift();
      if (task === undefined) break;
      this.queued--;
      picked[1].queued--;
      // run() settles its own promise and never rejects.
      task.run().catch(() => undefined);
    }
    this.settleIdle();
  }

  private settleIdle(): void {
    if (this.running !== 0 || this.queued !== 0) return;
    const waiting = this.idle;
    this.idle = [];
    for (const resolve of waiting) resolve();
  }
}
