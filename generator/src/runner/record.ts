// The record of one playbook run (status.json, `run` log lines), built from the spawn result: one builder for the
// runner and for onboarding/offboarding, so every run is recorded alike; and its summary in the status file.
import type { PlaybookCommand } from './command.js';
import { failureMessage, type SpawnResult } from './spawn.js';
import type { HostOutcome } from './recap.js';
import type { RunSummary, StatusFile } from '../status/file.js';

export interface HostRunResult {
  host: string;
  outcome: HostOutcome;
  task?: string;
  message?: string;
  /** the host's slowest task and its duration (readResults) */
  slowest_task?: string;
  slowest_ms?: number;
}

export interface RunRecord {
  /** unique across processes (runId()) */
  id: string;
  kind: PlaybookCommand['kind'];
  trigger: string;
  command: string;
  argv: readonly string[];
  hosts: string[];
  apps: string[] | null;
  startedAt: string;
  durationMs: number;
  exitCode: number | null;
  result: 'ok' | 'failed' | 'aborted';
  perHost: HostRunResult[];
  error?: string;
}

// The listener, `sync` and `onboard` record runs into one status.json: a per-process counter alone repeats across
// them. Pid and start time name the process (a pid is not reused within a millisecond), the counter the run.
const PROCESS_TAG = `${process.pid}.${Date.now().toString(36)}`;
let runCounter = 0;

/** "<pid>.<process start, ms base 36>.<n>": readable, sortable within a process, unique across processes. */
export function runId(): string {
  return `${PROCESS_TAG}.${++runCounter}`;
}

export function toRecord(r: SpawnResult, trigger: string): RunRecord {
  const perHost: HostRunResult[] = [...r.outcomes.entries()].map(([host, outcome]) => {
    const f = r.parsed.failures.find((x) => x.host === host);
    const s = r.parsed.slowest.get(host);
    const timing = s ? { slowest_task: s.task, slowest_ms: s.ms } : {};
    return outcome === 'ok' ? { host, outcome, ...timing } : { host, outcome, task: f?.task ?? '', message: f?.message ?? '', ...timing };
  });
  const ok = !r.aborted && perHost.every((h) => h.outcome === 'ok') && r.exitCode === 0;
  const rec: RunRecord = {
    id: runId(), kind: r.command.kind, trigger, command: r.command.display, argv: r.command.argv,
    hosts: [...r.command.hosts], apps: r.command.apps ? [...r.command.apps] : null, startedAt: r.startedAt,
    durationMs: r.durationMs, exitCode: r.exitCode, result: r.aborted ? 'aborted' : ok ? 'ok' : 'failed', perHost,
  };
  if (!ok) rec.error = failureMessage(r);
  return rec;
}

export function summarize(r: RunRecord, by: string): RunSummary {
  const s: RunSummary = { id: r.id, kind: r.kind, trigger: r.trigger, startedAt: r.startedAt, durationMs: r.durationMs, result: r.result, hosts: r.hosts, apps: r.apps ? r.apps.length : null, command: r.command, by };
  if (r.error) s.error = r.error;
  s.perHost = r.perHost.map((h) => ({
    host: h.host, outcome: h.outcome,
    ...(h.slowest_task !== undefined && h.slowest_ms !== undefined ? { slowest_task: h.slowest_task, slowest_ms: h.slowest_ms } : {}),
  }));
  return s;
}

/** Appends the run (the file keeps the last 20) and, for a routes run, each host's last success. */
export function recordRun(s: StatusFile, r: RunRecord, by: string): void {
  s.runs.push(summarize(r, by));
  for (const h of r.perHost) if (h.outcome === 'ok' && r.result !== 'aborted' && r.kind !== 'vrrp') s.lastSuccessByHost[h.host] = new Date(Date.parse(r.startedAt) + r.durationMs).toISOString();
}
