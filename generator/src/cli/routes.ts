/** `paas-rproxy routes [--json]`: the routing table, from the vars files. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { configFromArgv, type GlobalArgs } from '../config.js';
import { loadState } from '../vars/store.js';
import { formatTable, routingTable } from '../routes.js';

export interface RoutesArgs extends GlobalArgs {
  json?: boolean;
}

export const command: CommandModule<GlobalArgs, RoutesArgs> = {
  command: 'routes',
  describe: 'Print the routing table (apps, host names, backends, websocket, TLS aliases)',
  builder: (y: Argv<GlobalArgs>) =>
    y.option('json', {
      type: 'boolean', default: false,
      describe: 'print a JSON array sorted by fqdn of {app, namespace, fqdn, aliases, backends, websocket, tls}',
    }) as Argv<RoutesArgs>,
  handler: async (argv: ArgumentsCamelCase<RoutesArgs>) => {
    const config = await configFromArgv(argv);
    const rows = routingTable(await loadState(config), config.cloud_domain);
    process.stdout.write(argv.json ? JSON.stringify(rows, null, 2) + '\n' : formatTable(rows));
  },
};
