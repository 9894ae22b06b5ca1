/**
 * The one step runner of onboarding and offboarding: numbered progress lines, every step recorded through the
 * operation tracker (onboarding.json), the operation finished as ok or failed. A step is a small function of the
 * operation's context: it returns what to record, or throws. Pure of I/O itself: the tracker and the progress
 * sink are passed in (unit tests give fakes).
 */
import type { OpTracker, StepRecord } from './records.js';

export type Progress = (line: string) => void;

/** What a step reports. `ok: false` records the step as failed; `error`, when set, is thrown after recording. */
export interface StepResult { detail: string; ok?: boolean; error?: Error }

export interface Step<C> {
  name: string;
  /** the progress line's text, computed when the step starts (it may name what earlier steps found) */
  what: (c: C) => string;
  run: (c: C) => Promise<StepResult>;
}

/** A failed step: recorded with `detail`, then the operation fails with `error`. */
export const failed = (detail: string, error: Error): StepResult => ({ detail, ok: false, error });

export type Tracker = Pick<OpTracker, 'begin' | 'start' | 'end' | 'finish' | 'elapsedMs'> & { readonly rec: { steps: StepRecord[] } };

export function stepLine(op: string, host: string, n: number, total: number, what: string): string {
  return `[${op} ${host} ${n}/${total}] ${what}`;
}

/**
 * Runs `steps` in order. A step that throws (a check that refuses before anything is recorded for the step) or
 * returns an `error` fails the operation: the tracker records it with the first line of the message, and the
 * error is rethrown. Resolves with the recorded steps when every step passed.
 */
export async function runSteps<C>(op: string, host: string, steps: ReadonlyArray<Step<C>>, c: C, tr: Tracker, progress: Progress): Promise<StepRecord[]> {
  await tr.begin();
  try {
    for (const [i, s] of steps.entries()) {
      progress(stepLine(op, host, i + 1, steps.length, s.what(c)));
      await tr.start(s.name);
      const r = await s.run(c);
      const ok = r.ok ?? true;
      const rec = await tr.end(ok, r.detail);
      progress(`    ${ok ? 'ok' : 'FAILED'} (${(rec.ms / 1000).toFixed(1)} s) ${r.detail}`);
      if (r.error) throw r.error;
    }
  } catch (e) {
    await tr.finish(false, (e as Error).message.split('\n')[0]);
    throw e;
  }
  await tr.finish(true);
  return tr.rec.steps;
}
