/** `paas-rproxy onboard HOST --address IP`: preflight, add to the inventory, provision alone, verify, re-spread VIPs. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../config.js';
import { RproxyError } from '../errors.js';

export interface OnboardArgs extends GlobalArgs { host: string; address: string; passwordFile?: string }

export const command: CommandModule<GlobalArgs, OnboardArgs> = {
  command: 'onboard <host>',
  describe: 'Add a proxy host: preflight over SSH, add it to the inventory, provision it alone, verify it, then re-spread the VIPs',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('host', { type: 'string', demandOption: true, describe: 'inventory host name' })
      .option('address', { type: 'string', demandOption: true, requiresArg: true, describe: 'the host\'s IP address (ansible_host)' }) as Argv<OnboardArgs>,
  handler: async (_argv: ArgumentsCamelCase<OnboardArgs>) => {
    throw new RproxyError('ERR_INTERNAL', 'onboard: not implemented yet');
  },
};
