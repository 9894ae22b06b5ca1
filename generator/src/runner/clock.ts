// Time as a port: the timer-driven edges (the runner's coalescing and retries, the listener's batcher) take a
// Clock, so their tests drive time by hand (test/fixtures/clock.ts) instead of sleeping on the real one.

/** An opaque timer handle (a NodeJS.Timeout in production). */
export type TimerHandle = object;

export interface Clock {
  now(): number; // ms since the epoch, as Date.now()
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(t: TimerHandle): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(t: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (t) => clearInterval(t as NodeJS.Timeout),
};
