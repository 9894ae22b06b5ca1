/** `paas-rproxy migrate [--check]`: moves the routing state of an older installation out of the inventory. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { configFromArgv, type GlobalArgs } from '../config.js';
import { withLock } from '../io/lock.js';
import { indexFilePath, lockPath } from '../vars/paths.js';
import { migrateState, pendingMigration } from '../vars/migrate.js';

export interface MigrateArgs extends GlobalArgs { check?: boolean; json?: boolean; 'cloud-domain'?: string; 'proxies-group'?: string }

export const command: CommandModule<GlobalArgs, MigrateArgs> = {
  command: 'migrate',
  describe: 'Move the routing state of an older layout (paas-rproxy 0.1: <inventory>/group_vars/<proxies>/rproxy_routes.*, <inventory>/.rproxy_tls/; schema 2: <state_dir>/routes/rproxy_routes.json) into <state_dir>/routes/index.json + apps/',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('check', { type: 'boolean', default: false, describe: 'only say what would move (Ansible check mode)' })
      .option('json', { type: 'boolean', default: false, describe: 'print {changed, from, apps, removed} as JSON' })
      .option('cloud-domain', { type: 'string', requiresArg: true, describe: 'overrides cloud_domain (site.yml passes rproxy_cloud_domain)' })
      .option('proxies-group', { type: 'string', requiresArg: true, describe: 'overrides proxies_group' })
      .epilog('Every command that reads the state migrates it too (the listener at its start); site.yml runs this first. '
        + 'Exit codes: 0 done (or nothing to move); 2 usage/config error; 1 the old state cannot be read (the message names the file).') as Argv<MigrateArgs>,
  handler: async (argv: ArgumentsCamelCase<MigrateArgs>) => {
    const config = await configFromArgv(argv);
    if (argv['cloud-domain']) config.cloud_domain = argv['cloud-domain'];
    if (argv['proxies-group']) config.proxies_group = argv['proxies-group'];
    const out = argv.check
      ? { changed: (await pendingMigration(config)).length > 0, from: null, apps: null, removed: await pendingMigration(config) }
      : await withLock(lockPath(config), async () => {
        const r = await migrateState(config);
        return { changed: r.removed.length > 0, from: r.from, apps: r.apps, removed: r.removed };
      });
    if (argv.json) { process.stdout.write(JSON.stringify({ ...out, state: indexFilePath(config) }) + '\n'); return; }
    if (!out.changed) process.stdout.write(`nothing to migrate: the routing state is ${indexFilePath(config)}\n`);
    else if (argv.check) process.stdout.write(`would move into ${indexFilePath(config)} and remove: ${out.removed.join(' ')}\n`);
    else process.stdout.write(`moved ${out.apps} app(s) from ${out.from ?? '(already moved)'} into ${indexFilePath(config)}; removed ${out.removed.join(' ')}\n`);
  },
};
