import { AsyncResource } from 'node:async_hooks';
import type { Clock, Timer } from './clock.ts';

interface Pending {
  readonly id: number;
  readonly at: number;
  readonly fn: () => void;
}

/**
 * Lets everything already queued run: promise callbacks, and the callbacks they queue in turn, and
 * I/O callbacks that are ready. It waits for no time to pass (setImmediate is the event loop's
 * next turn, not a timer), so what it lets happen does not depend on the machine's speed.
 */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * A clock that moves only when told. Timers fire in due order (ties in the order they were set),
 * each at its own time, with everything it set off settled before the next: `advance(100)` runs a
 * 30 ms timer that sets another 30 ms one, and that one too.
 */
export class FakeClock implements Clock {
  private time: number;
  private nextId = 1;
  private pending: Pending[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    // As Node's timers do, the callback runs in the async context it was set in.
    const t = { id: this.nextId++, at: this.time + Math.max(0, ms), fn: AsyncResource.bind(fn) };
    this.pending.push(t);
    return t as unknown as Timer;
  }

  clearTimeout(timer: Timer): void {
    this.pending = this.pending.filter((t) => (t as unknown) !== timer);
  }

  /** How many timers are set and have not fired. */
  get timers(): number {
    return this.pending.length;
  }

  /** Moves time on by `ms`, firing every timer due by then; settles before and after each. */
  async advance(ms: number): Promise<void> {
    const until = this.time + ms;
    await settle();
    for (;;) {
      const next = this.pending.reduce<Pending | undefined>(
        (a, t) => (a === undefined || t.at < a.at || (t.at === a.at && t.id < a.id) ? t : a),
        undefined,
      );
      if (next === undefined || next.at > until) break;
      this.pending = this.pending.filter((t) => t !== next);
      this.time = Math.max(this.time, next.at);
      next.fn();
      await settle();
    }
    this.time = until;
  }
}
