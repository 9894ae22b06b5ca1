/** `paas-rproxy sync`: runs the targeted playbook for what changed since the last successful run. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { configFromArgv, type Config, type GlobalArgs } from '../config.js';
import { RproxyError } from '../errors.js';
import { syncPass, type Log, type SyncResult } from '../runner/runner.js';
import { runnerPorts, runnerSettings } from '../runner/ports.js';
import { recordRun } from '../runner/record.js';
import { updateStatus } from '../status/file.js';
import { jsonLogger } from '../listener/log.js';

export interface SyncNowOptions {
  /** structured log sink; default: none */
  log?: Log;
  /** full run for every proxy (all apps, stale files removed) instead of what changed */
  full?: boolean;
  signal?: AbortSignal;
  /** who ran it, for the status file ("sync", "apply --sync") */
  by?: string;
}

/**
 * Runs the targeted playbook for what each proxy lacks since its last successful run (routing tag, proxies
 * only, one run at a time across processes) and records the per-host applied digests. Resolves with the
 * result when every proxy is up to date; throws RproxyError ERR_PLAYBOOK_FAILED (exit 4) naming the failing
 * host(s) and task(s) otherwise. For `paas-rproxy sync` and `paas-rproxy apply --sync`.
 */
export async function syncNow(config: Config, opts: SyncNowOptions = {}): Promise<SyncResult> {
  const res = await syncRecorded(config, opts);
  if (!res.ok) throw syncError(res);
  return res;
}

/** One sync pass recorded in the status file; the result also when a proxy failed (`sync --json` prints it). */
export async function syncRecorded(config: Config, opts: SyncNowOptions = {}): Promise<SyncResult> {
  const log: Log = opts.log ?? (() => undefined);
  const by = opts.by ?? 'sync';
  const res = await syncPass(runnerSettings(config), runnerPorts(config), log, {
    trigger: by, full: opts.full ?? false, ...(opts.signal ? { signal: opts.signal } : {}),
  });
  try {
    await updateStatus(config.state_dir, (s) => {
      for (const r of res.runs) recordRun(s, r, by);
      s.pendingApps = res.lagging;
    });
  } catch { /* the status file is informative only */ }
  return res;
}

/** ERR_PLAYBOOK_FAILED (exit 4) naming the failing host(s) and task(s) of a pass that left proxies behind. */
export function syncError(res: SyncResult): RproxyError {
  const errors = res.runs.filter((r) => r.error).map((r) => r.error as string);
  return new RproxyError('ERR_PLAYBOOK_FAILED', errors.length ? errors.join('\n') : `proxies still lacking apps: ${Object.keys(res.lagging).join(', ')}`);
}

export function formatSyncResult(res: SyncResult): string {
  if (res.runs.length === 0) return 'nothing to do: every proxy has the current routes\n';
  const lines: string[] = [];
  for (const r of res.runs) {
    lines.push(`run ${r.kind} on ${r.hosts.join(',')}: ${r.result} in ${(r.durationMs / 1000).toFixed(2)} s (${r.apps ? `${r.apps.length} app(s)` : 'all apps'})`);
    lines.push(`  command: ${r.command}`);
    for (const h of r.perHost) lines.push(`  ${h.host}: ${h.outcome}${h.task ? ` in task "${h.task}"` : ''}${h.message ? `: ${h.message}` : ''}`);
  }
  return lines.join('\n') + '\n';
}

export interface SyncArgs extends GlobalArgs { full?: boolean; json?: boolean; verbose?: boolean }

export const command: CommandModule<GlobalArgs, SyncArgs> = {
  command: 'sync',
  describe: 'Run the routing playbook (tag nginx_rproxy_routes, proxies only) for what each proxy lacks since its last successful run',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('full', { type: 'boolean', default: false, describe: 'apply every app on every proxy and remove stale files (repairs drift)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
      .option('verbose', { type: 'boolean', alias: 'v', default: false, describe: 'structured JSON log lines on stderr' })
      .example('$0 sync', 'bring every proxy up to date with the routing state')
      .epilog('Exit codes: 0 every proxy up to date; 2 usage/config error; 4 playbook run failed (the failing host and task are printed; with --json the result is printed as well).') as Argv<SyncArgs>,
  handler: async (argv: ArgumentsCamelCase<SyncArgs>) => {
    const config = await configFromArgv(argv);
    const log = argv.verbose ? jsonLogger(process.stderr) : (event: string, f: Record<string, unknown>) => {
      if (event === 'run_start') process.stderr.write(`running: ${String(f.command)}\n`);
    };
    const res = await syncRecorded(config, { log, full: argv.full ?? false, by: 'sync' });
    const error = res.ok ? null : syncError(res);
    // the JSON goes out also when a proxy failed: scripts read which one and why, the exit code says it failed
    process.stdout.write(argv.json
      ? JSON.stringify({ ok: res.ok, runs: res.runs, lagging: res.lagging, error: error?.message ?? null }, null, 2) + '\n'
      : formatSyncResult(res));
    if (error) throw error;
  },
};
