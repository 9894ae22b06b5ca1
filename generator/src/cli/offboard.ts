/** `paas-rproxy offboard HOST`: move its VIPs to the others first, then stop its services, then remove it from the inventory. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { configFromArgv, type GlobalArgs } from '../config.js';
import { offboard } from '../onboard/offboard.js';

export interface OffboardArgs extends GlobalArgs { host: string; force?: boolean; json?: boolean }

export const command: CommandModule<GlobalArgs, OffboardArgs> = {
  command: 'offboard <host>',
  describe: 'Remove a proxy: the others take over its VIPs first, then its keepalived and nginx stop, then it leaves the inventory',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('host', { type: 'string', demandOption: true, describe: 'inventory host name' })
      .option('force', { type: 'boolean', default: false, describe: 'continue when the host cannot be reached (gone for good)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON (progress goes to stderr)' })
      .example('$0 offboard rp3', 'shrink the front tier')
      .epilog('Exit codes: 0 offboarded; 2 usage error or a host cannot be reached (nothing changed); 4 a playbook run or stopping keepalived failed; 6 the VIPs did not move as planned.') as Argv<OffboardArgs>,
  handler: async (argv: ArgumentsCamelCase<OffboardArgs>) => {
    const config = await configFromArgv(argv);
    const out = argv.json ? process.stderr : process.stdout;
    const res = await offboard(config, { host: argv.host, force: argv.force ?? false, progress: (l) => out.write(l + '\n') });
    if (argv.json) process.stdout.write(JSON.stringify(res, null, 2) + '\n');
    else process.stdout.write(`${res.host} offboarded in ${(res.durationMs / 1000).toFixed(1)} s: ${res.steps.map((s) => `${s.step} ${(s.ms / 1000).toFixed(1)}s`).join(', ')}\n`);
  },
};
