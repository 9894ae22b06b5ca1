// Pure: a playbook run's results as data, read from the JSON lines of ansible/callback_plugins/rproxy_results.py
// (RPROXY_RESULTS_FILE): one `task` line per host and task result, one `recap` line at the end of the run.
// The default callback's human output still goes to the logs; nothing is parsed out of it.

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
  message: string; // the callback's `error`: the module's msg (with stderr), a loop's first failed item's
}

/** A host's slowest task of the run: where its time went (for a targeted run, its one task: the action plugin, the
 * connection and the module on the proxy; the run's duration minus this is the controller's own). */
export interface HostSlowest {
  task: string;
  ms: number;
}

export interface ParsedRun {
  recap: Map<string, HostRecap>;
  failures: HostFailure[];
  slowest: Map<string, HostSlowest>;
}

const MAX_MESSAGE = 2000;

const count = (v: unknown): number => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * The callback's lines in order. A line that is not a JSON object (a run killed mid-write) is skipped; a run
 * that stopped before its end has no recap line, so its hosts have no recap (hostOutcomes: 'missing').
 * Ignored failures (ignore_errors) are not failures; rescued ones are listed, and the recap says they were rescued.
 */
export function readResults(jsonLines: string): ParsedRun {
  const recap = new Map<string, HostRecap>();
  const failures: HostFailure[] = [];
  const slowest = new Map<string, HostSlowest>();
  for (const line of jsonLines.split('\n')) {
    if (!line.startsWith('{')) continue;
    let o: unknown;
    try { o = JSON.parse(line); } catch { continue; }
    if (typeof o !== 'object' || o === null) continue;
    const e = o as Record<string, unknown>;
    if (e.event === 'task' && count(e.duration_ms) > (slowest.get(str(e.host))?.ms ?? -1)) {
      slowest.set(str(e.host), { task: str(e.task), ms: count(e.duration_ms) });
    }
    if (e.event === 'task' && (e.status === 'failed' || e.status === 'unreachable')) {
      failures.push({
        host: str(e.host), task: str(e.task), kind: e.status,
        message: (str(e.error) || str(e.msg)).slice(0, MAX_MESSAGE),
      });
    } else if (e.event === 'recap' && typeof e.hosts === 'object' && e.hosts !== null) {
      for (const [host, s] of Object.entries(e.hosts as Record<string, Record<string, unknown>>)) {
        if (typeof s !== 'object' || s === null) continue;
        recap.set(host, {
          ok: count(s.ok), changed: count(s.changed), unreachable: count(s.unreachable), failed: count(s.failures),
          skipped: count(s.skipped), rescued: count(s.rescued), ignored: count(s.ignored),
        });
      }
    }
  }
  return { recap, failures, slowest };
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
