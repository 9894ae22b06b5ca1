// The status file (<state_dir>/status.json) the listener and `sync` write and `paas-rproxy status` reads. It sits
// below the runner: the runner turns its run records into RunSummary entries (runner/record.ts).
import { promises as fs } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.js';
import { rejectsFile, statusFile } from '../io/statedir.js';

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
  runs: RunSummary[]; // newest last, at most 20
}

export interface RunSummary {
  /** runner/record.ts's runId(); a number in files written by earlier versions */
  id: string | number; kind: string; trigger: string; startedAt: string; durationMs: number; result: string;
  hosts: string[]; apps: number | null; command: string; error?: string; by: string;
  /** per host: its outcome and slowest task with that task's duration (absent in files written by earlier versions) */
  perHost?: HostSummary[];
}

export interface HostSummary { host: string; outcome: string; slowest_task?: string; slowest_ms?: number }

/** A run as `paas-rproxy status` prints it: one line, then one line of its hosts' slowest tasks when known. */
export function formatRun(r: RunSummary): string[] {
  const out = [`${r.startedAt} ${r.kind} by ${r.by} on ${r.hosts.join(',')}: ${r.result} in ${(r.durationMs / 1000).toFixed(2)} s, ${r.apps === null ? 'all apps' : `${r.apps} app(s)`}`];
  if (r.error) out.push(`  ${r.error}`);
  const hosts = (r.perHost ?? []).map((h) => `${h.host} ${h.outcome}${h.slowest_task !== undefined && h.slowest_ms !== undefined ? `, slowest task "${h.slowest_task}" ${h.slowest_ms} ms` : ''}`);
  if (hosts.length) out.push(`  ${hosts.join('; ')}`);
  return out;
}

export function emptyStatus(): StatusFile {
  return { schema: 1, updatedAt: new Date().toISOString(), listener: null, pendingEvents: 0, pendingApps: {}, backoff: {}, lastSuccessByHost: {}, runs: [] };
}

export async function readStatus(stateDir: string): Promise<StatusFile | null> {
  try { return JSON.parse(await fs.readFile(statusFile(stateDir), 'utf8')) as StatusFile; } catch { return null; }
}

/** Read-modify-write (best effort across processes; writers: the listener, `sync`, onboarding's runs). */
export async function updateStatus(stateDir: string, fn: (s: StatusFile) => void): Promise<void> {
  const s = (await readStatus(stateDir)) ?? emptyStatus();
  // earlier versions kept a copy of onboarding.json here; onboard/records.ts is read instead
  delete (s as Partial<Record<'onboarding', unknown>>).onboarding;
  fn(s);
  s.runs = s.runs.slice(-20);
  s.updatedAt = new Date().toISOString();
  await fs.mkdir(stateDir, { recursive: true });
  await writeFileAtomic(statusFile(stateDir), JSON.stringify(s, null, 1) + '\n', { mode: 0o644 });
}

/** The last `n` lines of rejects.jsonl (vars/rejects.ts writes it), parsed. */
export async function recentRejections(stateDir: string, n = 10): Promise<Record<string, unknown>[]> {
  let text: string;
  try {
    const fh = await fs.open(rejectsFile(stateDir), 'r');
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
