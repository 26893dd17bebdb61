// Time as the timing-driven parts (work queue delays, request pacing, probe and DNS schedules) see
// it: the real clock in production, a fake one in unit tests, so that what those tests prove is
// the order and spacing the code decides, not how busy the machine running them was.

/** A pending timer, as `setTimeout` returned it; only good for `clearTimeout` of the same clock. */
export type Timer = unknown;

export interface Clock {
  /** Milliseconds since the epoch (Date.now). */
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(timer: Timer): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => {
    clearTimeout(timer as NodeJS.Timeout);
  },
};

/** Resolves after `ms` on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}
