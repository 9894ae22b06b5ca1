// Pure coalescing policy (runner/README.md, "Coalescing"): group commit, with an optional quiet period.
// - quiet_ms = 0 (the default): a change arriving while no run is in progress starts a run at once; changes
//   arriving during a run are batched and served together by the next run, which starts the moment the current
//   one ends. A burst therefore costs one run for its first change plus one per run-duration of the burst.
// - quiet_ms > 0: as before, a run starts quiet_ms after the last change, but never later than max_wait_ms after
//   the first change not yet served (a steady stream cannot postpone it forever).
// A run in progress is never interrupted nor overlapped: whatever is due meanwhile starts when it ends.
// The timer-driven edge (runner.ts) asks `dueAt` after every change and at the end of every run.

export interface CoalescerState {
  firstAt: number | null; // first trigger not yet served
  lastAt: number | null; // most recent trigger
}

export const idle = (): CoalescerState => ({ firstAt: null, lastAt: null });

export function trigger(s: CoalescerState, now: number): CoalescerState {
  return { firstAt: s.firstAt ?? now, lastAt: now };
}

/** When the next run should start, or null when nothing is waiting or a run is in progress (ask again at its end). */
export function dueAt(s: CoalescerState, quietMs: number, maxWaitMs: number, running = false): number | null {
  if (s.firstAt === null || s.lastAt === null || running) return null;
  if (quietMs <= 0) return s.firstAt; // group commit: due since the first change not yet served
  return Math.min(s.lastAt + quietMs, s.firstAt + Math.max(maxWaitMs, quietMs));
}

/** Taking the batch: everything triggered up to now is served by the run that starts now. */
export function take(_s: CoalescerState): CoalescerState {
  return idle();
}

/**
 * The runs a policy makes of a sequence of change times, when each run takes `runMs` (pure model of runner.ts's
 * loop, for tests and the README's figures): [start, end, changes served] per run.
 */
export function simulate(changes: readonly number[], quietMs: number, maxWaitMs: number, runMs: (n: number) => number): Array<[number, number, number]> {
  const runs: Array<[number, number, number]> = [];
  let s = idle();
  let served = 0;
  let busyUntil = -Infinity;
  let i = 0;
  const sorted = [...changes].sort((a, b) => a - b);
  for (;;) {
    const due = dueAt(s, quietMs, maxWaitMs, false);
    const next = i < sorted.length ? (sorted[i] as number) : Infinity;
    const start = due === null ? Infinity : Math.max(due, busyUntil);
    if (next === Infinity && start === Infinity) return runs;
    if (next <= start) { s = trigger(s, next); i++; continue; } // a change arrives first (also during a run)
    const n = i - served;
    served = i;
    s = take(s);
    busyUntil = start + runMs(n);
    runs.push([start, busyUntil, n]);
  }
}
