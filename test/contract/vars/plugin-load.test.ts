/**
 * The nginx_rproxy_routes action plugin's load_state on the controller (schema 3, vars/README.md): a targeted run
 * reads index.json and the selected apps' files only (every open() is recorded); an id the index does not name is
 * a deleted app, even when a stray file exists; a full run reads every app. Real Python with Ansible's decoder.
 */
import { needs, ANSIBLE } from '../helpers/tools.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StateStore } from '../../../generator/src/vars/store.js';
import { renderVars } from '../../../generator/src/vars/emit.js';
import { appFilePath, indexFilePath, routesDir, singleFilePath } from '../../../generator/src/vars/paths.js';
import { block, psych, tls, tmpConfig } from '../../fixtures/helpers.js';
import { readFile } from 'node:fs/promises';

const test = needs(ANSIBLE);

const run = promisify(execFile);
const ACTION_DIR = join(import.meta.dirname, '../../../roles/nginx_rproxy/action_plugins');
const SCRIPT = `
import builtins, importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location('plugin', os.path.join(sys.argv[1], 'nginx_rproxy_routes.py'))
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
opened = []
def recording_open(path, *a, **k):
    opened.append(os.path.relpath(path, sys.argv[2]))
    return builtins.open(path, *a, **k)
plugin.open = recording_open
sync = json.loads(sys.argv[3])
try:
    apps, routes_dir = plugin.load_state(sys.argv[2], sync)
    print(json.dumps({'apps': sorted(apps), 'opened': opened, 'fqdn': {k: v.get('fqdn') for k, v in apps.items()}}))
except plugin.RouteError as e:
    print(json.dumps({'error': str(e), 'opened': opened}))
`;

interface Loaded { apps?: string[]; opened: string[]; error?: string; fqdn?: Record<string, string> }
async function load(stateDir: string, sync: unknown): Promise<Loaded> {
  const { stdout } = await run('/usr/bin/python3', ['-c', SCRIPT, ACTION_DIR, stateDir, JSON.stringify(sync)]);
  return JSON.parse(stdout) as Loaded;
}

const alias = (app: string, a: string) => psych({ action: ':add_alias', app_name: app, namespace: 'acme', alias: a });

async function threeApps() {
  const cfg = await tmpConfig();
  const store = await StateStore.open(cfg);
  await store.applyText(alias('one', 'one.example.com') + alias('two', 'two.example.com') + alias('three', 'three.example.com'));
  return { cfg, store };
}

test('a targeted load reads index.json and the selected app files only', async (t) => {
  const { cfg } = await threeApps();
  const r = await load(cfg.state_dir, ['two-acme']);
  t.deepEqual(r.apps, ['two-acme']);
  t.deepEqual(r.opened, ['routes/index.json', 'routes/apps/two-acme.json']);
  t.is(r.fqdn!['two-acme'], 'two-acme.apps.example.com');
  const s = await load(cfg.state_dir, 'one-acme, three-acme');
  t.deepEqual(s.apps, ['one-acme', 'three-acme']);
  t.deepEqual(s.opened, ['routes/index.json', 'routes/apps/one-acme.json', 'routes/apps/three-acme.json']);
});

test('a full load reads every app the index names', async (t) => {
  const { cfg } = await threeApps();
  const r = await load(cfg.state_dir, null);
  t.deepEqual(r.apps, ['one-acme', 'three-acme', 'two-acme']);
  t.is(r.opened.length, 4);
});

test('an app the index does not name is deleted for the plugin, even with a stray file; bad ids read nothing', async (t) => {
  const { cfg } = await threeApps();
  await writeFile(appFilePath(cfg, 'gone-acme'), '{"stray": true}\n'); // an interrupted write's leftover
  const r = await load(cfg.state_dir, ['gone-acme', '../../x', 'two-acme']);
  t.deepEqual(r.apps, ['two-acme']);
  t.deepEqual(r.opened, ['routes/index.json', 'routes/apps/two-acme.json']);
  t.deepEqual((await load(cfg.state_dir, null)).apps, ['one-acme', 'three-acme', 'two-acme']);
});

test('errors name the file: a missing app file the index names, a wrong schema, invalid JSON', async (t) => {
  const { cfg } = await threeApps();
  await rm(appFilePath(cfg, 'two-acme'));
  t.regex((await load(cfg.state_dir, ['two-acme'])).error ?? '', /index\.json names app two-acme but .*apps\/two-acme\.json cannot be read/);
  t.deepEqual((await load(cfg.state_dir, ['one-acme'])).apps, ['one-acme'], 'the other apps still load');
  await writeFile(appFilePath(cfg, 'two-acme'), '{"half');
  t.regex((await load(cfg.state_dir, ['two-acme'])).error ?? '', /apps\/two-acme\.json is not valid JSON/);
  await writeFile(indexFilePath(cfg), '{"nginx_rproxy_routes_schema": 2, "app_digests": {}}');
  t.regex((await load(cfg.state_dir, null)).error ?? '', /index\.json is not schema 3/);
});

test('no index: the single file of schema 2 (not migrated yet) is read, and nothing at all is no apps', async (t) => {
  const { cfg, store } = await threeApps();
  const single = renderVars(store.state.apps.values(), cfg.cloud_domain);
  await rm(routesDir(cfg), { recursive: true });
  t.deepEqual((await load(cfg.state_dir, ['one-acme'])).apps, []);
  await mkdir(routesDir(cfg), { recursive: true });
  await writeFile(singleFilePath(cfg), single);
  t.deepEqual((await load(cfg.state_dir, ['one-acme'])).apps, ['one-acme', 'three-acme', 'two-acme'], 'all of it (run() selects)');
});

test('the plugin still refuses to run while the state is in the inventory (ansible-playbook, no host touched)', async (t) => {
  const cfg = await tmpConfig();
  const inv = join(cfg.dir, 'inv');
  await mkdir(join(inv, 'group_vars/proxies'), { recursive: true });
  await writeFile(join(inv, 'hosts.yml'), 'all:\n  children:\n    proxies:\n      hosts:\n        localhost:\n          ansible_connection: local\n');
  await writeFile(join(inv, 'group_vars/proxies/rproxy_routes.json'), '{"nginx_rproxy_apps": {"shop-acme": {}}}');
  const play = join(cfg.dir, 'play.yml');
  await writeFile(play, `- hosts: proxies\n  gather_facts: false\n  tasks:\n    - nginx_rproxy_routes:\n        state_dir: ${cfg.state_dir}\n        sync_apps: [shop-acme]\n`);
  const e = await t.throwsAsync(run('ansible-playbook', ['-i', inv, play], {
    env: { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_ACTION_PLUGINS: ACTION_DIR, ANSIBLE_LIBRARY: join(ACTION_DIR, '../library'), ANSIBLE_LOCALHOST_WARNING: '0' },
  })) as { stdout?: string };
  t.regex(e.stdout ?? '', /the routing state is still in the inventory .*`paas-rproxy migrate --inventory/s);
});

// The runs do not take the state lock: the listener may commit a new index (an app deleted: its file unlinked)
// between a run's read of the index and its read of that app's file. Any SPI publisher can delete an app, so a
// full run (10,000 opens, seconds) failed on every deletion that landed in that window.
const RACE = `
import builtins, importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location('plugin', os.path.join(sys.argv[1], 'nginx_rproxy_routes.py'))
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
routes = os.path.join(sys.argv[2], 'routes')
victim, keep = sys.argv[3], sys.argv[4] == 'keep'
def listener_writes_first(path, *a, **k):
    if path.endswith(os.sep + victim + '.json') and os.path.exists(path):
        # what vars/write.ts does for a deleted app: the index without it (atomic), then its file unlinked
        with builtins.open(os.path.join(routes, 'index.json')) as f:
            index = json.load(f)
        if not keep:
            del index['app_digests'][victim]
        with builtins.open(os.path.join(routes, 'index.json.tmp'), 'w') as f:
            json.dump(index, f)
        os.rename(os.path.join(routes, 'index.json.tmp'), os.path.join(routes, 'index.json'))
        os.unlink(path)
    return builtins.open(path, *a, **k)
plugin.open = listener_writes_first
try:
    apps, _ = plugin.load_state(sys.argv[2], json.loads(sys.argv[5]))
    print(json.dumps({'apps': sorted(apps)}))
except plugin.RouteError as e:
    print(json.dumps({'error': str(e)}))
`;

test('an app deleted (index committed, file unlinked) while a run loads the state is left out, not a failed run', async (t) => {
  for (const sync of [null, ['one-acme', 'two-acme']]) {
    const { cfg } = await threeApps();
    const { stdout } = await run('/usr/bin/python3', ['-c', RACE, ACTION_DIR, cfg.state_dir, 'two-acme', 'delete', JSON.stringify(sync)]);
    t.deepEqual(JSON.parse(stdout), { apps: sync ? ['one-acme'] : ['one-acme', 'three-acme'] }, `sync ${JSON.stringify(sync)}`);
  }
  // control: a file missing while the index still names it is still an error
  const { cfg } = await threeApps();
  const { stdout } = await run('/usr/bin/python3', ['-c', RACE, ACTION_DIR, cfg.state_dir, 'two-acme', 'keep', 'null']);
  t.regex(JSON.parse(stdout).error ?? '', /names app two-acme but .*two-acme\.json cannot be read/);
});

// The same race for TLS material: the run read an app file naming certificate files, then the listener removed them
// (remove_ssl, delete_application). The app is read again: without TLS now, or gone.
const TLS_RACE = `
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location('plugin', os.path.join(sys.argv[1], 'nginx_rproxy_routes.py'))
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
old = json.loads(sys.argv[4], cls=plugin.AnsibleJSONDecoder)
try:
    app, crt, key = plugin.checked_app_tls(sys.argv[2], os.path.join(sys.argv[2], 'routes'), sys.argv[3], old)
    print(json.dumps({'tls': None if app is None else app.get('tls'), 'files': sorted(crt) + sorted(key)}))
except plugin.RouteError as e:
    print(json.dumps({'error': str(e)}))
`;

test('TLS files removed by the listener while a run reads them: the app is read again (without them, or gone), not a failed run', async (t) => {
  const ssl = (a: string) => psych({ action: ':add_ssl', app_name: a, namespace: 'acme', alias: 'a.example.org', ssl: block(tls('a.crt')), private_key: block(tls('a.key')), pass_phrase: "''" });
  const check = async (cfgDir: string, old: string) => JSON.parse((await run('/usr/bin/python3', ['-c', TLS_RACE, ACTION_DIR, cfgDir, 'one-acme', old])).stdout);
  for (const [later, want] of [
    [psych({ action: ':remove_ssl', app_name: 'one', namespace: 'acme', alias: 'a.example.org' }), { tls: [], files: [] }],
    [psych({ action: ':delete_application', app_name: 'one', namespace: 'acme' }), { tls: null, files: [] }],
  ] as const) {
    const cfg = await tmpConfig('tls_require_valid: false\n');
    const store = await StateStore.open(cfg);
    await store.applyText(alias('one', 'a.example.org') + ssl('one'));
    const old = await readFile(appFilePath(cfg, 'one-acme'), 'utf8');
    const first = await check(cfg.state_dir, old);
    t.deepEqual(first.files, ['tls/one-acme/a.example.org.crt', 'tls/one-acme/a.example.org.key'], 'control: read while present');
    t.is((await store.applyText(later)).rejected.length, 0);
    t.deepEqual(await check(cfg.state_dir, old), want);
  }
  // control: the app still names a file that is gone: an error naming it
  const cfg = await tmpConfig('tls_require_valid: false\n');
  const store = await StateStore.open(cfg);
  await store.applyText(alias('one', 'a.example.org') + ssl('one'));
  const old = await readFile(appFilePath(cfg, 'one-acme'), 'utf8');
  const f = JSON.parse(old).tls[0].cert_file as string | { __ansible_unsafe: string };
  const crt = typeof f === 'string' ? f : f.__ansible_unsafe;
  await rm(join(routesDir(cfg), crt));
  t.regex((await check(cfg.state_dir, old)).error ?? '', /app one-acme: cannot read cert_file for alias a\.example\.org/);
});
