// Pure coalescing policy (runner/README.md, "Coalescing"): group commit, with an optional quiet period.
// - quiet_ms = 0 (the default): a change arriving while no run is in progress starts a run at once. Changes
//   arriving during a run are a burst: they are batched, and the next run starts once the stream has paused for
//   burst_quiet_ms, but never later than max_wait_ms after the end of the run they arrived during (so a burst of
//   a few seconds costs a few runs however fast each run is). burst_quiet_ms = 0: the next run starts the moment
//   the current one ends.
// - quiet_ms > 0: as before, a run starts quiet_ms after the last change, but never later than max_wait_ms after
//   the first change not yet served (a steady stream cannot postpone it forever).
// A run in progress is never interrupted nor overlapped: whatever is due meanwhile starts when it ends.
// The timer-driven edge (runner.ts) asks `dueAt` after every change and at the end of every run.

export interface CoalescerState {
  firstAt: number | null; // first trigger not yet served
  lastAt: number | null; // most recent trigger
  burstAt: number | null; // end of the run during which the triggers not yet served began: a burst is on
}

export const idle = (): CoalescerState => ({ firstAt: null, lastAt: null, burstAt: null });

export function trigger(s: CoalescerState, now: number): CoalescerState {
  return { firstAt: s.firstAt ?? now, lastAt: now, burstAt: s.burstAt };
}

/** A run ended: triggers already waiting arrived during it, so they are a burst (unless one was already on). */
export function ended(s: CoalescerState, now: number): CoalescerState {
  return s.firstAt === null || s.burstAt !== null ? s : { ...s, burstAt: now };
}

/** When the next run should start, or null when nothing is waiting or a run is in progress (ask again at its end). */
export function dueAt(s: CoalescerState, quietMs: number, maxWaitMs: number, running = false, burstQuietMs = 0): number | null {
  if (s.firstAt === null || s.lastAt === null || running) return null;
  if (quietMs <= 0) {
    // group commit: due since the first change not yet served; in a burst, once it pauses (bounded by max_wait_ms)
    if (s.burstAt === null || burstQuietMs <= 0) return s.firstAt;
    return Math.min(s.lastAt + burstQuietMs, s.burstAt + Math.max(maxWaitMs, burstQuietMs));
  }
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
export function simulate(changes: readonly number[], quietMs: number, maxWaitMs: number, runMs: (n: number) => number, burstQuietMs = 0): Array<[number, number, number]> {
  const runs: Array<[number, number, number]> = [];
  let s = idle();
  let served = 0;
  let now = -Infinity;
  let runEnd: number | null = null;
  let i = 0;
  const sorted = [...changes].sort((a, b) => a - b);
  for (;;) {
    const next = i < sorted.length ? (sorted[i] as number) : Infinity;
    const due: number | null = runEnd === null ? dueAt(s, quietMs, maxWaitMs, false, burstQuietMs) : null;
    const start: number = due === null ? Infinity : Math.max(due, now);
    const end = runEnd ?? Infinity;
    if (next === Infinity && start === Infinity && end === Infinity) return runs;
    if (end < next && end <= start) { now = end; runEnd = null; s = ended(s, now); continue; } // a run ends
    if (next <= start) { now = next; s = trigger(s, next); i++; continue; } // a change arrives first (also during a run)
    const n = i - served;
    served = i;
    s = take(s);
    now = start;
    const finish = start + runMs(n);
    runEnd = finish;
    runs.push([start, finish, n]);
  }
}
