// Structured logs: one JSON object per line ({time, level, event, ...fields}).
import type { Writable } from 'node:stream';

export type Logger = (event: string, fields?: Record<string, unknown>) => void;

const ERROR_EVENTS = new Set(['runner_error', 'apply_error', 'listener_error', 'metrics_error']);
const WARN_EVENTS = new Set(['broker_disconnected', 'retry_scheduled', 'message_rejected', 'run_output', 'message_read_error', 'rejects_rotate_error']);

/** Lines buffered at most before a write (and at most one event-loop turn). */
export const LOG_BUFFER_LINES = 1000;

/**
 * Lines of one event-loop turn go out in one write: a bulk load logs a line per message, and one write(2) per line
 * on the stdout pipe cost the listener a second of CPU per 30,000 messages (bench:state, STOMP mode). Buffered lines
 * are written at the end of the turn, when LOG_BUFFER_LINES are waiting, and at process exit (stdout to a pipe or a
 * file is synchronous on Linux, so an exit loses none). Warnings and errors go out at once, with what waits before
 * them: a process killed hard (SIGKILL, out of memory) still leaves the lines that explain it.
 */
const flushesAtExit = new WeakMap<Writable, Set<() => void>>();

export function jsonLogger(out: Writable = process.stdout): Logger {
  let lines: string[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (lines.length === 0) return;
    const text = lines.join('');
    lines = [];
    out.write(text);
  };
  // one exit hook per output, however many loggers write to it
  const hooked = flushesAtExit.get(out);
  if (hooked) hooked.add(flush);
  else {
    const set = new Set([flush]);
    flushesAtExit.set(out, set);
    process.on('exit', () => { for (const f of set) f(); });
  }
  return (event, fields = {}) => {
    let level = ERROR_EVENTS.has(event) ? 'error' : WARN_EVENTS.has(event) ? 'warn' : 'info';
    if (event === 'run' && fields.result !== 'ok') level = 'error';
    lines.push(JSON.stringify({ time: new Date().toISOString(), level, event, ...fields }) + '\n');
    if (lines.length >= LOG_BUFFER_LINES || level !== 'info') flush();
    else if (!scheduled) { scheduled = true; setImmediate(flush); }
  };
}
