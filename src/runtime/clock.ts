// Time as the timing-driven parts (work queue delays, request pacing, probe and DNS schedules) see
// it: the real clock in production, a fake one in unit tests, so that what those tests prove is
// the order and spacing the code decides, not how busy the machine running them was.

declare const timerBrand: unique symbol;

/** A pending timer, as `setTimeout` returned it; only good for `clearTimeout` of the same clock. */
export interface Timer {
  readonly [timerBrand]: true;
}

export interface Clock {
  /** Milliseconds since the epoch (Date.now). */
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(timer: Timer): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms) as unknown as Timer,
  clearTimeout: (timer) => {
    clearTimeout(timer as unknown as NodeJS.Timeout);
  },
};

/** Resolves after `ms` on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}
