/** `paas-rproxy apply [FILE|-]`: applies a YAML stream of SPI messages to the state (replay, recovery, scripting). */
import { readFile } from 'node:fs/promises';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { configFromArgv, type GlobalArgs } from '../config.js';
import { EXIT, RproxyError } from '../errors.js';
import { StateStore, type ApplyResult } from '../vars/store.js';
import { formatSyncResult, syncNow } from './sync.js';

export interface ApplyArgs extends GlobalArgs {
  file: string;
  json?: boolean;
  sync?: boolean;
}

async function readInput(file: string): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new RproxyError('ERR_INPUT', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export function formatApplyResult(r: ApplyResult): string {
  const lines = [`applied ${r.applied}, unchanged ${r.unchanged}, rejected ${r.rejected.length}`];
  lines.push(`apps changed: ${r.changedApps.length ? r.changedApps.join(' ') : '(none)'}`);
  return lines.join('\n') + '\n';
}

export const command: CommandModule<GlobalArgs, ApplyArgs> = {
  command: 'apply [file]',
  describe: 'Apply a YAML stream of Routing SPI messages (a file, or - for stdin) to the routing state',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('file', { type: 'string', default: '-', describe: 'YAML stream of SPI messages ("-" = stdin)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
      .option('sync', { type: 'boolean', default: false, describe: 'then run the targeted playbook so the proxies serve the new state' })
      .example('$0 apply events.yml', 'apply a recorded stream')
      .example('$0 apply --sync events.yml', 'apply, then put the changes live on every proxy')
      .example('cat events.yml | $0 apply -', 'apply from stdin')
      .epilog('Exit codes: 0 all applied or unchanged; 2 usage/config error; 3 at least one message rejected (see <state_dir>/rejects.jsonl); 4 the --sync playbook run failed (host and task printed).') as Argv<ApplyArgs>,
  handler: async (argv: ArgumentsCamelCase<ApplyArgs>) => {
    const config = await configFromArgv(argv);
    const store = await StateStore.open(config);
    // No local reference to the input: a large replay's text can be collected once it is parsed.
    const result = await store.applyText(await readInput(argv.file), { source: argv.file === '-' ? 'stdin' : argv.file });
    if (argv.json) {
      const { results: _r, ...summary } = result;
      process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
    } else {
      process.stdout.write(formatApplyResult(result));
    }
    for (const r of result.rejected) process.stderr.write(`rejected document #${r.index + 1}: ${r.reason}\n`);
    if (result.rejected.length > 0) process.exitCode = EXIT.REJECTED;
    // The accepted part of a stream is synced even when some documents were rejected: they changed nothing.
    if (argv.sync) process.stdout.write(formatSyncResult(await syncNow(config, { by: 'apply --sync' })));
  },
};
