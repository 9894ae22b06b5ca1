// Pure: exponential backoff.

/** Delay before retry number `attempt` (1 = first retry): initial * 2^(attempt-1), capped at max. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = () => 0.5): number {
  if (attempt < 1) return 0;
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 40));
  // ±10 % jitter (random=0.5 → none), never above max.
  const jittered = base * (0.9 + 0.2 * random());
  return Math.max(0, Math.min(maxMs, Math.round(jittered)));
}
