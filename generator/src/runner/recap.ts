// Pure: parses ansible-playbook's default-callback output (PLAY RECAP + failing tasks).

export interface HostRecap {
  ok: number;
  changed: number;
  unreachable: number;
  failed: number;
  skipped: number;
  rescued: number;
  ignored: number;
}

export interface HostFailure {
  host: string;
  task: string; // "role : task name" as ansible prints it, or "" when unknown
  kind: 'failed' | 'unreachable';
  message: string; // the module's msg (or the raw text after "=>")
}

export interface ParsedRun {
  recap: Map<string, HostRecap>;
  failures: HostFailure[];
}

const ANSI = /\x1b\[[0-9;]*m/g;

export function parsePlaybookOutput(output: string): ParsedRun {
  const lines = output.replace(ANSI, '').split(/\r?\n/);
  const recap = new Map<string, HostRecap>();
  const failures: HostFailure[] = [];
  let task = '';
  let inRecap = false;
  for (const line of lines) {
    const t = /^(?:TASK|RUNNING HANDLER) \[(.*)\] \**\s*$/.exec(line);
    if (t) { task = t[1] ?? ''; inRecap = false; continue; }
    if (/^PLAY RECAP \**\s*$/.test(line)) { inRecap = true; continue; }
    if (/^PLAY \[/.test(line)) { inRecap = false; task = ''; continue; }
    if (inRecap) {
      const m = /^(\S+)\s*:\s*(.*)$/.exec(line);
      if (m && m[1] && m[2] && /\bok=\d+/.test(m[2])) {
        const counts: Record<string, number> = {};
        for (const kv of m[2].matchAll(/(\w+)=(\d+)/g)) counts[kv[1] as string] = Number(kv[2]);
        recap.set(m[1], {
          ok: counts.ok ?? 0, changed: counts.changed ?? 0, unreachable: counts.unreachable ?? 0,
          failed: counts.failed ?? 0, skipped: counts.skipped ?? 0, rescued: counts.rescued ?? 0, ignored: counts.ignored ?? 0,
        });
      }
      continue;
    }
    const f = /^(?:fatal|failed): \[([^\]]+)\](?: \(item=.*?\))?:? (?:(FAILED|UNREACHABLE)! )?=> (.*)$/.exec(line);
    if (f && f[1]) {
      const host = f[1].split(' -> ')[0] ?? f[1];
      failures.push({ host, task, kind: f[2] === 'UNREACHABLE' ? 'unreachable' : 'failed', message: extractMsg(f[3] ?? '') });
    }
  }
  return { recap, failures };
}

function extractMsg(rest: string): string {
  try {
    const j = JSON.parse(rest) as Record<string, unknown>;
    const parts: string[] = [];
    if (typeof j.msg === 'string') parts.push(j.msg);
    if (typeof j.stderr === 'string' && j.stderr && !parts.includes(j.stderr)) parts.push(j.stderr);
    if (parts.length) return parts.join(': ').slice(0, 2000);
  } catch { /* not JSON (multi-line result) */ }
  return rest.slice(0, 2000);
}

export type HostOutcome = 'ok' | 'failed' | 'unreachable' | 'missing';

/** The outcome of each expected host: a host absent from the recap (run aborted) is 'missing'. */
export function hostOutcomes(parsed: ParsedRun, hosts: readonly string[]): Map<string, HostOutcome> {
  const out = new Map<string, HostOutcome>();
  for (const h of hosts) {
    const r = parsed.recap.get(h);
    if (!r) out.set(h, 'missing');
    else if (r.unreachable > 0) out.set(h, 'unreachable');
    else if (r.failed > 0) out.set(h, 'failed');
    else out.set(h, 'ok');
  }
  return out;
}
