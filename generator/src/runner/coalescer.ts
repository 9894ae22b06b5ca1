// Pure coalescing policy: fire after a quiet period, but never later than a bounded maximum wait
// after the first trigger of the burst. The timer-driven edge (runner.ts) asks `dueAt` after every change.

export interface CoalescerState {
  firstAt: number | null; // first trigger not yet served
  lastAt: number | null; // most recent trigger
}

export const idle = (): CoalescerState => ({ firstAt: null, lastAt: null });

export function trigger(s: CoalescerState, now: number): CoalescerState {
  return { firstAt: s.firstAt ?? now, lastAt: now };
}

/** When the batch should run, or null when nothing is waiting. */
export function dueAt(s: CoalescerState, quietMs: number, maxWaitMs: number): number | null {
  if (s.firstAt === null || s.lastAt === null) return null;
  return Math.min(s.lastAt + quietMs, s.firstAt + Math.max(maxWaitMs, quietMs));
}

/** Taking the batch: everything triggered up to now is served by the run that starts now. */
export function take(_s: CoalescerState): CoalescerState {
  return idle();
}
