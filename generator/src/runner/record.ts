// A run's entry in the status file (status/file.ts): the runner's RunRecord, summarized.
import type { RunSummary, StatusFile } from '../status/file.js';
import type { RunRecord } from './runner.js';

export function summarize(r: RunRecord, by: string): RunSummary {
  const s: RunSummary = { id: r.id, kind: r.kind, trigger: r.trigger, startedAt: r.startedAt, durationMs: r.durationMs, result: r.result, hosts: r.hosts, apps: r.apps ? r.apps.length : null, command: r.command, by };
  if (r.error) s.error = r.error;
  return s;
}

/** Appends the run (the file keeps the last 20) and, for a routes run, each host's last success. */
export function recordRun(s: StatusFile, r: RunRecord, by: string): void {
  s.runs.push(summarize(r, by));
  for (const h of r.perHost) if (h.outcome === 'ok' && r.result !== 'aborted' && r.kind !== 'vrrp') s.lastSuccessByHost[h.host] = new Date(Date.parse(r.startedAt) + r.durationMs).toISOString();
}
