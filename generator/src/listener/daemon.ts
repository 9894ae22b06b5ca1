// The listener as a process: JSON logs on stdout, SIGTERM/SIGINT stop it gracefully (a second signal forces the
// exit), uncaught errors are logged instead of killing it. Entered by `paas-rproxy listen` (cli/listen.ts) and by
// the stand-alone entry listener/main.ts.
import type { Config } from '../config.js';
import { Listener } from './listener.js';
import { jsonLogger } from './log.js';

/** The `--stop-grace` option of both entries. */
export const stopGraceOption = {
  type: 'number', default: 15, describe: 'seconds SIGTERM waits for a running playbook before abandoning it (the next start catches up)',
} as const;

/** Runs the listener until SIGTERM/SIGINT. */
export async function runListener(config: Config, opts: { stopGraceS?: number | undefined } = {}): Promise<void> {
  const log = jsonLogger(process.stdout);
  const listener = new Listener(config, { log, stopGraceMs: (opts.stopGraceS ?? stopGraceOption.default) * 1000 });
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
}
