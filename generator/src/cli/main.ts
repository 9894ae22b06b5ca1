#!/usr/bin/env node
/** The `paas-rproxy` CLI: global options, the commands of every part, and exit codes (errors.ts). */
import yargs, { type Argv, type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { GlobalArgs } from '../config.js';
import { EXIT, RproxyError, exitCodeFor } from '../errors.js';
import { command as apply } from './apply.js';
import { command as routes } from './routes.js';
import { command as sync } from './sync.js';
import { command as listen } from './listen.js';
import { command as status } from './status.js';
import { command as vrrpLayout } from './vrrp-layout.js';
import { command as onboard } from './onboard.js';
import { command as offboard } from './offboard.js';
import { command as dns } from './dns.js';
import { command as migrate } from './migrate.js';

const COMMANDS: CommandModule<GlobalArgs, any>[] = [apply, routes, sync, listen, status, vrrpLayout, onboard, offboard, migrate, dns];

export function buildCli(args: string[]): Argv<GlobalArgs> {
  let y = yargs(args)
    .scriptName('paas-rproxy')
    .usage('$0 <command> [options]\n\nHighly available reverse-proxy tier driven by the OpenShift Routing SPI.')
    .option('config', {
      type: 'string', global: true, requiresArg: true,
      describe: 'config file (YAML); default: $PAAS_RPROXY_CONFIG, else /etc/paas-rproxy/config.yml if it exists, else built-in defaults (inventory /etc/paas-rproxy/inventory, state /var/lib/paas-rproxy)',
    })
    .option('inventory', { type: 'string', global: true, requiresArg: true, describe: 'Ansible inventory directory (overrides inventory_dir)' })
    .option('state-dir', { type: 'string', global: true, requiresArg: true, describe: 'state directory (overrides state_dir)' }) as Argv<GlobalArgs>;
  for (const c of COMMANDS) y = y.command(c);
  return y
    .demandCommand(1, 'Name a command (see --help).')
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .epilog('Exit codes: 0 ok, 1 unexpected error, 2 usage or config error, 3 input rejected, 4 playbook run failed, 5 a check found a problem (status: unhealthy; dns --check-aliases).')
    .fail((msg, err) => {
      // Usage errors (msg set) → exit 2; errors from handlers are rethrown for main() to map.
      if (err) throw err;
      throw new RproxyError('ERR_USAGE', `${msg}\nRun "paas-rproxy --help" for usage.`);
    });
}

export async function main(args = hideBin(process.argv)): Promise<void> {
  try {
    await buildCli(args).parseAsync();
  } catch (e) {
    const code = exitCodeFor(e);
    const msg = e instanceof RproxyError ? `paas-rproxy: ${e.message}` : `paas-rproxy: unexpected error: ${(e as Error)?.stack ?? String(e)}`;
    process.stderr.write(msg + '\n');
    process.exitCode = code === EXIT.OK ? EXIT.UNEXPECTED : code;
  }
}

await main();
