// Runs the onboard/offboard command modules like main.ts will once they are registered there:
//   node --import tsx test/unit/onboard/_cli.ts onboard rp3 --address 198.51.100.13 --config .lab/config.yml
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { RproxyError, exitCodeFor } from '../../../generator/src/errors.js';
import { command as onboard } from '../../../generator/src/cli/onboard.js';
import { command as offboard } from '../../../generator/src/cli/offboard.js';

try {
  await yargs(hideBin(process.argv))
    .scriptName('paas-rproxy')
    .option('config', { type: 'string', global: true })
    .option('inventory', { type: 'string', global: true })
    .command(onboard as never)
    .command(offboard as never)
    .demandCommand(1)
    .strict()
    .fail((msg, err) => { if (err) throw err; throw new RproxyError('ERR_USAGE', msg); })
    .parseAsync();
} catch (e) {
  process.stderr.write(`paas-rproxy: ${e instanceof RproxyError ? e.message : (e as Error).stack}\n`);
  process.exitCode = exitCodeFor(e) || 1;
}
