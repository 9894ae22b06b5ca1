/** `paas-rproxy listen`: the listener daemon (STOMP intake → routing state → coalesced targeted playbook runs). */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { configFromArgv, type GlobalArgs } from '../config.js';
import { Listener } from '../listener/listener.js';
import { jsonLogger } from '../listener/log.js';

export interface ListenArgs extends GlobalArgs { 'stop-grace'?: number }

export const command: CommandModule<GlobalArgs, ListenArgs> = {
  command: 'listen',
  describe: 'Consume Routing SPI events from ActiveMQ (STOMP), keep the routing state and run targeted playbooks; JSON logs on stdout',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('stop-grace', { type: 'number', default: 15, describe: 'seconds SIGTERM waits for a running playbook before abandoning it (the next start catches up)' })
      .example('PAAS_RPROXY_CONFIG=/etc/paas-rproxy/config.yml $0 listen', 'run the listener (credentials from the config file or PAAS_RPROXY_STOMP_LOGIN/PASSCODE)')
      .epilog('Credentials come from the config file or the environment, never from the command line. Runs until SIGTERM/SIGINT.') as Argv<ListenArgs>,
  handler: async (argv: ArgumentsCamelCase<ListenArgs>) => {
    const config = await configFromArgv(argv);
    const log = jsonLogger(process.stdout);
    const listener = new Listener(config, { log, stopGraceMs: (argv['stop-grace'] ?? 15) * 1000 });
    let stopping: Promise<void> | null = null;
    let firstSignalAt = 0;
    const done = new Promise<void>((resolve) => {
      const onSignal = (sig: NodeJS.Signals) => {
        if (stopping) {
          // a second signal (not the same one delivered twice to the process group) forces the exit
          if (Date.now() - firstSignalAt > 1000) { log('listener_forced_exit', { signal: sig }); process.exit(1); }
          return;
        }
        firstSignalAt = Date.now();
        log('signal', { signal: sig });
        stopping = listener.stop().then(resolve, (e: unknown) => { log('listener_error', { error: String(e) }); resolve(); });
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
    process.on('uncaughtException', (e) => { log('listener_error', { error: e.stack ?? String(e), uncaught: true }); });
    process.on('unhandledRejection', (e) => { log('listener_error', { error: String(e), unhandled_rejection: true }); });
    await listener.start();
    await done;
  },
};
