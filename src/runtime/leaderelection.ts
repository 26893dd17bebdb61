// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: a lease is expired
// when its record has not changed for leaseDuration *as observed locally* (no trust in clocks across
// machines); the leader renews every retryPeriod and gives up when it has not renewed for
// renewDeadline, which is shorter than leaseDuration, so it stops before anyone else may start.
// client-node has no Lease-based elector, hence this one.
import type { V1Lease } from '@kubernetes/client-node';
import type { Logger } from './log.ts';
import { objectPath, statusOf, type Rest } from './rest.ts';
import { isAborted, sleep } from './signals.ts';

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`no answer within ${String(ms)} ms`));
    }, ms);
  });
  return Promise.race([p, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

export interface LeaseRecord {
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  readonly leaseTransitions: number;
  readonly acquireTime?: Date | undefined;
  readonly renewTime?: Date | undefined;
}

export interface Observation {
  /** The record as last read, and when (local clock) it was first seen with this content. */
  readonly record: LeaseRecord | undefined;
  readonly observedAt: number;
}

export type Decision =
  | { readonly action: 'create' | 'update'; readonly record: LeaseRecord }
  | { readonly action: 'wait'; readonly holder: string };

function sameRecord(a: LeaseRecord | undefined, b: LeaseRecord | undefined): boolean {
  return (
    a?.holderIdentity === b?.holderIdentity &&
    a?.leaseTransitions === b?.leaseTransitions &&
    a?.renewTime?.getTime() === b?.renewTime?.getTime()
  );
}

/** Updates what we know of the lease: the observation time moves only when the record changes. */
export function observe(
  prev: Observation,
  current: LeaseRecord | undefined,
  now: number,
): Observation {
  return sameRecord(prev.record, current) ? prev : { record: current, observedAt: now };
}

/**
 * What to do with the lease now (pure; `observation` must already include `current`). `now` is
 * wall-clock time for the record; `elapsedNow` is the clock observations were taken on (monotonic
 * in production, so a wall-clock step cannot make a held lease look expired).
 */
export function decide(
  current: LeaseRecord | undefined,
  observation: Observation,
  identity: string,
  leaseDurationMs: number,
  now: number,
  elapsedNow: number = now,
): Decision {
  const fresh: LeaseRecord = {
    holderIdentity: identity,
    leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
    leaseTransitions: 0,
    acquireTime: new Date(now),
    renewTime: new Date(now),
  };
  if (current === undefined) return { action: 'create', record: fresh };
  if (current.holderIdentity === identity) {
    return { action: 'update', record: { ...current, renewTime: new Date(now) } };
  }
  const held =
    current.holderIdentity !== '' &&
    observation.observedAt + current.leaseDurationSeconds * 1000 > elapsedNow;
  if (held) return { action: 'wait', holder: current.holderIdentity };
  return {
    action: 'update',
    record: { ...fresh, leaseTransitions: current.leaseTransitions + 1 },
  };
}

export interface LeaderElectionOptions {
  readonly rest: Rest;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly log: Logger;
  /** Told true when this process becomes leader and false when it stops being one. */
  readonly onLeading?: (leading: boolean) => void;
}

/** A MicroTime on the wire; the API server refuses millisecond precision (".745Z"). */
type MicroTime = string;

function fromMicroTime(v: unknown): Date | undefined {
  return typeof v === 'string' && v !== '' ? new Date(v) : undefined;
}

function toMicroTime(d: Date): MicroTime {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** A Lease as the API server sends it: its times are MicroTime strings. */
type WireLease = Omit<V1Lease, 'spec'> & {
  spec?: Omit<NonNullable<V1Lease['spec']>, 'acquireTime' | 'renewTime'> & {
    acquireTime?: MicroTime;
    renewTime?: MicroTime;
  };
};

function toRecord(lease: WireLease): LeaseRecord {
  const s = lease.spec;
  return {
    holderIdentity: s?.holderIdentity ?? '',
    leaseDurationSeconds: s?.leaseDurationSeconds ?? 0,
    leaseTransitions: s?.leaseTransitions ?? 0,
    acquireTime: fromMicroTime(s?.acquireTime),
    renewTime: fromMicroTime(s?.renewTime),
  };
}

export class LeaderElector {
  private readonly o: LeaderElectionOptions;
  private readonly path: string;
  private observation: Observation = { record: undefined, observedAt: 0 };
  private lease: WireLease | undefined;
  /**
   * When the request of the last successful acquire or renewal was sent, on the monotonic clock
   * (a wall-clock step must not stretch how long this replica believes it leads).
   */
  private renewedAt = 0;
  private leading = false;

  constructor(o: LeaderElectionOptions) {
    this.o = o;
    this.path = objectPath('/apis/coordination.k8s.io/v1', 'leases', o.namespace, o.name);
  }

  /**
   * Whether this process may write now: it holds the lease and renewed it less than renewDeadline
   * ago. Time-based, so a renew loop starved by a busy event loop cannot leave a stale "yes": a
   * standby may take over only leaseDuration after it last saw a renewal, which is later.
   */
  isLeading(): boolean {
    return this.leading && performance.now() - this.renewedAt < this.o.renewDeadlineMs;
  }

  /**
   * One attempt to acquire or renew: 'held' when we hold the lease afterwards, 'other' when
   * someone else does, 'conflict' when a concurrent write won the compare-and-swap (retry).
   */
  private async tryAcquireOrRenew(): Promise<'held' | 'other' | 'conflict'> {
    const { namespace, name, identity } = this.o;
    const sentAt = performance.now();
    let current: WireLease | undefined;
    try {
      current = await this.o.rest.request<WireLease>('GET', this.path);
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    const record = current === undefined ? undefined : toRecord(current);
    const now = Date.now();
    const mono = performance.now();
    this.observation = observe(this.observation, record, mono);
    const d = decide(record, this.observation, identity, this.o.leaseDurationMs, now, mono);
    if (d.action === 'wait') return 'other';
    const spec = {
      holderIdentity: d.record.holderIdentity,
      leaseDurationSeconds: d.record.leaseDurationSeconds,
      leaseTransitions: d.record.leaseTransitions,
      ...(d.record.acquireTime ? { acquireTime: toMicroTime(d.record.acquireTime) } : {}),
      ...(d.record.renewTime ? { renewTime: toMicroTime(d.record.renewTime) } : {}),
    };
    try {
      this.lease =
        d.action === 'create'
          ? await this.o.rest.request<WireLease>(
              'POST',
              objectPath('/apis/coordination.k8s.io/v1', 'leases', namespace),
              { body: { metadata: { name, namespace }, spec } },
            )
          : await this.o.rest.request<WireLease>('PUT', this.path, {
              // The resourceVersion makes this a compare-and-swap: a concurrent writer wins.
              body: { ...current, metadata: { ...current?.metadata, name, namespace }, spec },
            });
    } catch (err) {
      const code = statusOf(err);
      if (code === 409 || code === 422) return 'conflict';
      throw err;
    }
    this.observation = { record: toRecord(this.lease), observedAt: mono };
    this.renewedAt = sentAt;
    return 'held';
  }

  /** Retries every retryPeriod until this process leads; false if `signal` aborted first. */
  async acquire(signal: AbortSignal): Promise<boolean> {
    const { log, namespace, name, identity } = this.o;
    log.info({ lease: `${namespace}/${name}`, identity }, 'attempting to acquire the leader lease');
    let lastHolder = '';
    while (!signal.aborted) {
      try {
        if ((await this.tryAcquireOrRenew()) === 'held') {
          log.info({ lease: `${namespace}/${name}`, identity }, 'acquired the leader lease');
          this.leading = true;
          this.o.onLeading?.(true);
          return true;
        }
        const holder = this.observation.record?.holderIdentity ?? '';
        if (holder !== lastHolder) {
          log.info({ lease: `${namespace}/${name}`, holder }, 'another replica leads; standing by');
          lastHolder = holder;
        }
      } catch (err) {
        log.warn({ err: String(err) }, 'could not read or write the leader lease');
      }
      await sleep(this.o.retryPeriodMs * (1 + Math.random() * 0.2), signal);
    }
    return false;
  }

  /**
   * Renews every retryPeriod while leading; call it as soon as acquire() returns true, so the lease
   * is renewed while caches sync. Resolves 'lost' when no renewal succeeded for renewDeadline or
   * another holder appeared, 'stopped' when `signal` aborts. A conflict (someone wrote the Lease
   * between our read and write) is retried until the deadline, as client-go does.
   */
  async hold(signal: AbortSignal): Promise<'lost' | 'stopped'> {
    const lost = (why: string): 'lost' => {
      this.leading = false;
      this.o.log.error({ lease: `${this.o.namespace}/${this.o.name}` }, why);
      this.o.onLeading?.(false);
      return 'lost';
    };
    while (!signal.aborted) {
      await sleep(this.o.retryPeriodMs, signal);
      if (isAborted(signal)) break;
      try {
        // A request that hangs (a partition) must not carry us past the deadline.
        const left = Math.max(1, this.o.renewDeadlineMs - (performance.now() - this.renewedAt));
        const r = await withTimeout(this.tryAcquireOrRenew(), left);
        if (r === 'held') continue;
        if (r === 'other')
          return lost(
            `another replica holds the lease now (${this.observation.record?.holderIdentity ?? ''})`,
          );
        this.o.log.warn('the leader lease changed while renewing; retrying');
      } catch (err) {
        this.o.log.warn({ err: String(err) }, 'could not renew the leader lease');
      }
      if (performance.now() - this.renewedAt >= this.o.renewDeadlineMs)
        return lost('could not renew the leader lease within the renew deadline');
    }
    return 'stopped';
  }

  /**
   * Gives the lease up so a standby takes over at once instead of waiting for it to expire. The
   * write is a compare-and-swap on the version this replica last wrote, so a lease someone else
   * has taken since is never given away (that write fails with 409); a renewal that is merely
   * late still releases, which only brings the handover sooner.
   */
  async release(): Promise<void> {
    const lease = this.lease;
    if (lease === undefined || !this.leading) return;
    this.leading = false;
    const { namespace, name } = this.o;
    try {
      await this.o.rest.request('PUT', this.path, {
        body: {
          ...lease,
          spec: {
            ...lease.spec,
            holderIdentity: '',
            leaseDurationSeconds: 1,
            renewTime: toMicroTime(new Date()),
          },
        },
      });
      this.o.log.info({ lease: `${namespace}/${name}` }, 'released the leader lease');
    } catch (err) {
      this.o.log.warn({ err: String(err) }, 'could not release the leader lease');
    }
    this.leading = false;
    this.o.onLeading?.(false);
  }
}
