/** `paas-rproxy offboard HOST`: move its VIPs away, stop its services, remove it from the inventory. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../config.js';
import { RproxyError } from '../errors.js';

export interface OffboardArgs extends GlobalArgs { host: string }

export const command: CommandModule<GlobalArgs, OffboardArgs> = {
  command: 'offboard <host>',
  describe: 'Remove a proxy host: move its VIPs to the others first, then stop its nginx/keepalived and remove it from the inventory',
  builder: (y: Argv<GlobalArgs>) =>
    y.positional('host', { type: 'string', demandOption: true, describe: 'inventory host name' }) as Argv<OffboardArgs>,
  handler: async (_argv: ArgumentsCamelCase<OffboardArgs>) => {
    throw new RproxyError('ERR_INTERNAL', 'offboard: not implemented yet');
  },
};
