// Structured logs: one JSON object per line ({time, level, event, ...fields}).
import type { Writable } from 'node:stream';

export type Logger = (event: string, fields?: Record<string, unknown>) => void;

const ERROR_EVENTS = new Set(['runner_error', 'apply_error', 'listener_error', 'metrics_error']);
const WARN_EVENTS = new Set(['broker_disconnected', 'retry_scheduled', 'message_rejected', 'run_output', 'message_read_error']);

export function jsonLogger(out: Writable = process.stdout): Logger {
  return (event, fields = {}) => {
    let level = ERROR_EVENTS.has(event) ? 'error' : WARN_EVENTS.has(event) ? 'warn' : 'info';
    if (event === 'run' && fields.result !== 'ok') level = 'error';
    out.write(JSON.stringify({ time: new Date().toISOString(), level, event, ...fields }) + '\n');
  };
}
