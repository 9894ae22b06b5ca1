/** `paas-rproxy listen`: the listener daemon (STOMP intake → routing state → coalesced targeted playbook runs). */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { configFromArgv, type GlobalArgs } from '../config.js';
import { runListener, stopGraceOption } from '../listener/daemon.js';

export interface ListenArgs extends GlobalArgs { 'stop-grace'?: number }

export const command: CommandModule<GlobalArgs, ListenArgs> = {
  command: 'listen',
  describe: 'Consume Routing SPI events from ActiveMQ (STOMP), keep the routing state and run targeted playbooks; JSON logs on stdout',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('stop-grace', stopGraceOption)
      .example('PAAS_RPROXY_CONFIG=/etc/paas-rproxy/config.yml $0 listen', 'run the listener (credentials from the config file or PAAS_RPROXY_STOMP_LOGIN/PASSCODE)')
      .epilog('Credentials come from the config file or the environment, never from the command line. Runs until SIGTERM/SIGINT.') as Argv<ListenArgs>,
  handler: async (argv: ArgumentsCamelCase<ListenArgs>) => {
    await runListener(await configFromArgv(argv), { stopGraceS: argv['stop-grace'] });
  },
};
