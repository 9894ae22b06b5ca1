#!/usr/bin/env node
/** Stand-alone entry of the listener: `node dist/listener/main.js [--config FILE] [--inventory DIR] [--stop-grace S]` = `paas-rproxy listen`. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { configFromArgv } from '../config.js';
import { exitCodeFor, RproxyError } from '../errors.js';
import { runListener, stopGraceOption } from './daemon.js';

try {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('paas-rproxy-listener')
    .option('config', { type: 'string', requiresArg: true, describe: 'config file (default $PAAS_RPROXY_CONFIG)' })
    .option('inventory', { type: 'string', requiresArg: true, describe: 'inventory directory' })
    .option('stop-grace', stopGraceOption)
    .strict()
    .fail((msg, err) => { if (err) throw err; throw new RproxyError('ERR_USAGE', msg); })
    .parseAsync();
  await runListener(await configFromArgv(argv), { stopGraceS: argv['stop-grace'] });
} catch (e) {
  process.stderr.write(`paas-rproxy-listener: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = exitCodeFor(e);
}
