/** `paas-rproxy sync`: runs the targeted playbook for what changed since the last successful run. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { configFromArgv, type GlobalArgs } from '../config.js';
import { syncRecorded, syncError, formatSyncResult } from '../runner/core.js';
import { jsonLogger } from '../listener/log.js';

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
