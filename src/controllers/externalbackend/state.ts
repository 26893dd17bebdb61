// What the controller keeps per backend between reconciles, in one place: a backend that goes is
// forgotten by dropping its one entry (and its share of its namespace's probe-target count).
import { splitKey } from '../../runtime/keys.ts';

/** The outrigger_backend_ready_status series a backend shows, to remove when it changes. */
export interface ReadySeries {
  readonly namespace: string;
  readonly name: string;
  readonly status: string;
  readonly reason: string;
}

export interface BackendState {
  /** The probe targets the scheduler runs for the backend. */
  readonly targets: ReadonlySet<string>;
  /** Addresses are left unchecked by the namespace's probe-target limit. */
  readonly limited: boolean;
  /** When its status was last written (ms, the controller's clock). */
  readonly statusWrittenAt?: number;
  readonly readySeries?: ReadySeries;
}

const empty: BackendState = { targets: new Set(), limited: false };

export class BackendStates {
  private readonly byKey = new Map<string, BackendState>();
  /** How many probe targets each namespace has: what its limit counts. */
  private readonly perNamespace = new Map<string, number>();
  /** The keys whose state says `limited`, so that freed room need not look at every backend. */
  private readonly limitedKeys = new Set<string>();

  get(key: string): BackendState {
    return this.byKey.get(key) ?? empty;
  }

  update(key: string, change: Partial<BackendState>): void {
    const next = { ...this.get(key), ...change };
    if (change.targets !== undefined) this.count(key, this.get(key).targets, change.targets);
    this.byKey.set(key, next);
    if (next.limited) this.limitedKeys.add(key);
    else this.limitedKeys.delete(key);
  }

  /** Probe targets the namespace's other backends hold. */
  neighbourTargets(key: string): number {
    const [namespace] = splitKey(key);
    return (this.perNamespace.get(namespace) ?? 0) - this.get(key).targets.size;
  }

  /** Backends with addresses left unchecked by their namespace's limit. */
  limited(): ReadonlySet<string> {
    return this.limitedKeys;
  }

  /** Drops everything kept for the backend; what it was, for the caller to undo outside. */
  forget(key: string): BackendState {
    const s = this.get(key);
    this.count(key, s.targets, new Set());
    this.byKey.delete(key);
    this.limitedKeys.delete(key);
    return s;
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Every backend's probe targets (the quorum's view of what this replica checks). */
  *targets(): IterableIterator<readonly [string, ReadonlySet<string>]> {
    for (const [key, s] of this.byKey) if (s.targets.size > 0) yield [key, s.targets];
  }

  private count(key: string, before: ReadonlySet<string>, after: ReadonlySet<string>): void {
    const [namespace] = splitKey(key);
    const n = (this.perNamespace.get(namespace) ?? 0) - before.size + after.size;
    if (n > 0) this.perNamespace.set(namespace, n);
    else this.perNamespace.delete(namespace);
  }
}
