// The status file (<state_dir>/status.json) the listener and `sync` write and `paas-rproxy status` reads.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { atomicWrite } from '../runner/applied.js';
import type { RunRecord } from '../runner/runner.js';
import type { OpRecord } from '../onboard/records.js';

export interface StatusFile {
  schema: 1;
  updatedAt: string;
  listener: null | {
    pid: number;
    startedAt: string;
    connected: boolean;
    broker: string | null;
    destination: string;
    lastMessageAt: string | null;
    messages: number;
  };
  pendingEvents: number;
  pendingApps: Record<string, string[]>; // per host, from the last plan
  backoff: Record<string, { attempt: number; nextAt: string }>;
  lastSuccessByHost: Record<string, string>;
  /** written by onboard/offboard (generator/src/onboard/records.ts) */
  onboarding?: { current: OpRecord[]; last: OpRecord[] };
  runs: RunSummary[]; // newest last, at most 20
}

export interface RunSummary {
  /** runner/record.ts's runId(); a number in files written by earlier versions */
  id: string | number; kind: string; trigger: string; startedAt: string; durationMs: number; result: string;
  hosts: string[]; apps: number | null; command: string; error?: string; by: string;
}

export function statusPath(stateDir: string): string { return path.join(stateDir, 'status.json'); }

export function emptyStatus(): StatusFile {
  return { schema: 1, updatedAt: new Date().toISOString(), listener: null, pendingEvents: 0, pendingApps: {}, backoff: {}, lastSuccessByHost: {}, runs: [] };
}

export async function readStatus(stateDir: string): Promise<StatusFile | null> {
  try { return JSON.parse(await fs.readFile(statusPath(stateDir), 'utf8')) as StatusFile; } catch { return null; }
}

export function summarize(r: RunRecord, by: string): RunSummary {
  const s: RunSummary = { id: r.id, kind: r.kind, trigger: r.trigger, startedAt: r.startedAt, durationMs: r.durationMs, result: r.result, hosts: r.hosts, apps: r.apps ? r.apps.length : null, command: r.command, by };
  if (r.error) s.error = r.error;
  return s;
}

/** Read-modify-write (best effort across processes; writers: the listener, `sync`). */
export async function updateStatus(stateDir: string, fn: (s: StatusFile) => void): Promise<void> {
  const s = (await readStatus(stateDir)) ?? emptyStatus();
  fn(s);
  s.runs = s.runs.slice(-20);
  s.updatedAt = new Date().toISOString();
  await fs.mkdir(stateDir, { recursive: true });
  await atomicWrite(statusPath(stateDir), JSON.stringify(s, null, 1) + '\n');
}

export function recordRun(s: StatusFile, r: RunRecord, by: string): void {
  s.runs.push(summarize(r, by));
  for (const h of r.perHost) if (h.outcome === 'ok' && r.result !== 'aborted' && r.kind !== 'vrrp') s.lastSuccessByHost[h.host] = new Date(Date.parse(r.startedAt) + r.durationMs).toISOString();
}

/** The last `n` lines of rejects.jsonl (core writes it), parsed. */
export async function recentRejections(stateDir: string, n = 10): Promise<Record<string, unknown>[]> {
  let text: string;
  try {
    const fh = await fs.open(path.join(stateDir, 'rejects.jsonl'), 'r');
    try {
      const st = await fh.stat();
      const len = Math.min(st.size, 256 * 1024);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, st.size - len);
      text = buf.toString('utf8');
    } finally { await fh.close(); }
  } catch { return []; }
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n').slice(-(n + 1))) {
    if (!line.trim()) continue;
    try { out.push(JSON.parse(line) as Record<string, unknown>); } catch { /* partial first line */ }
  }
  return out.slice(-n);
}
