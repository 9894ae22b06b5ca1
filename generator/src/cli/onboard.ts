/** `paas-rproxy onboard HOST --address IP`: preflight, provision alone, verify, add to the inventory, re-spread the VIPs. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { configFromArgv, type GlobalArgs } from '../config.js';
import { onboard } from '../onboard/onboard.js';

export interface OnboardArgs extends GlobalArgs {
  host: string;
  address: string;
  passwordFile?: string;
  minFreeMib?: number;
  verifyMax?: number;
  json?: boolean;
}

export const command: CommandModule<GlobalArgs, OnboardArgs> = {
  command: 'onboard <host>',
  describe: 'Add a proxy: preflight over SSH, provision it alone, verify it serves the routes, add it to the inventory, re-spread the VIPs',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('host', { type: 'string', demandOption: true, describe: 'inventory host name of the new proxy' })
      .option('address', { type: 'string', demandOption: true, requiresArg: true, describe: 'its IP address (becomes ansible_host)' })
      .option('password-file', { type: 'string', requiresArg: true, describe: 'one-time password (first line) to install the controller\'s SSH key on the host' })
      .option('min-free-mib', { type: 'number', default: 512, describe: 'preflight: free space needed on / and /var' })
      .option('verify-max', { type: 'number', default: 500, describe: 'verify at most this many apps (spread over all)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON (progress goes to stderr)' })
      .example('$0 onboard rp3 --address 198.51.100.13', 'grow the front tier by rp3')
      .epilog('Nothing is changed before the preflight passes. The host is added to the inventory only once it serves the current routes; the VIPs are re-spread last.\nExit codes: 0 onboarded; 2 preflight or usage error (nothing changed); 4 a playbook run or the verification failed; 6 onboarded, but the VIPs did not settle as planned.') as Argv<OnboardArgs>,
  handler: async (argv: ArgumentsCamelCase<OnboardArgs>) => {
    const config = await configFromArgv(argv);
    const out = argv.json ? process.stderr : process.stdout;
    const res = await onboard(config, {
      host: argv.host, address: argv.address,
      ...(argv.passwordFile ? { passwordFile: argv.passwordFile } : {}),
      ...(argv.minFreeMib !== undefined ? { minFreeMiB: argv.minFreeMib } : {}),
      ...(argv.verifyMax !== undefined ? { verifyMax: argv.verifyMax } : {}),
      progress: (l) => out.write(l + '\n'),
    });
    if (argv.json) process.stdout.write(JSON.stringify(res, null, 2) + '\n');
    else process.stdout.write(`${res.host} onboarded in ${(res.durationMs / 1000).toFixed(1)} s: ${res.steps.map((s) => `${s.step} ${(s.ms / 1000).toFixed(1)}s`).join(', ')}\n`);
  },
};
