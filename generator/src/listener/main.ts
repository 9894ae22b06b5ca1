#!/usr/bin/env node
/** Stand-alone entry of the listener: `node dist/listener/main.js [--config FILE] [--inventory DIR]` = `paas-rproxy listen`. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { command } from '../cli/listen.js';
import { exitCodeFor, RproxyError } from '../errors.js';

try {
  await yargs(['listen', ...hideBin(process.argv)])
    .scriptName('paas-rproxy-listener')
    .option('config', { type: 'string', global: true, requiresArg: true, describe: 'config file (default $PAAS_RPROXY_CONFIG)' })
    .option('inventory', { type: 'string', global: true, requiresArg: true, describe: 'inventory directory' })
    .command(command as never)
    .strict()
    .fail((msg, err) => { if (err) throw err; throw new RproxyError('ERR_USAGE', msg); })
    .parseAsync();
} catch (e) {
  process.stderr.write(`paas-rproxy-listener: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = exitCodeFor(e);
}
