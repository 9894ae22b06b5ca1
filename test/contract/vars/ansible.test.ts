/**
 * Ansible reads the app files (routes/apps/<id>.json) as written and never templates an event string: real ansible
 * against a temp inventory. The nginx_rproxy_routes action plugin decodes each app file from the state directory
 * with Ansible's AnsibleJSONDecoder (its load_state is run with Ansible's Templar below); here the same bytes are
 * also handed to Ansible's own vars loading (which uses that decoder for .json files), so templating by any task or
 * role that gets hold of a value is covered too. Validation already rejects "{{", so this test writes hostile
 * strings straight through the emitter; a control run without the __ansible_unsafe marker shows the same check
 * catches templating.
 */
import { needs, ANSIBLE } from '../helpers/tools.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderAppFile } from '../../../generator/src/vars/emit.js';
import { StateStore } from '../../../generator/src/vars/store.js';
import { appFilePath, routesDir } from '../../../generator/src/vars/paths.js';
import type { AppState } from '../../../generator/src/state/types.js';
import { samplesDocs, tmpConfig } from '../../fixtures/helpers.js';

const test = needs(ANSIBLE);

const run = promisify(execFile);

const ANSIBLE_ENV = { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCALHOST_WARNING: '0', ANSIBLE_INVENTORY_UNPARSED_WARNING: '0', ANSIBLE_STDOUT_CALLBACK: 'default' };
const writeHosts = (inventory: string) =>
  writeFile(join(inventory, 'hosts.yml'), 'all:\n  children:\n    proxies:\n      hosts:\n        localhost:\n          ansible_connection: local\n');

/** The app files' bytes as one vars document: {"nginx_rproxy_routes_schema": 3, "nginx_rproxy_apps": {id: <file>}}. */
const asVars = (apps: Record<string, string>): string =>
  `{"nginx_rproxy_routes_schema": 3, "nginx_rproxy_apps": {${Object.entries(apps).map(([id, text]) => `${JSON.stringify(id)}: ${text}`).join(', ')}}}`;

/** A throw-away inventory whose group_vars hold the apps' files (never the layout of a real installation). */
async function harness(cfg: { dir: string }, apps: Record<string, string>): Promise<string> {
  const inv = join(cfg.dir, 'harness-inventory');
  await mkdir(join(inv, 'group_vars/proxies'), { recursive: true });
  await writeFile(join(inv, 'group_vars/proxies/rproxy_routes.json'), asVars(apps));
  return inv;
}

async function ansibleVar(inventory: string, variable: string): Promise<unknown> {
  await writeHosts(inventory);
  const { stdout } = await run('ansible', ['localhost', '-i', inventory, '-m', 'ansible.builtin.debug', '-a', `var=${variable}`, '-o'], {
    env: ANSIBLE_ENV, maxBuffer: 64 << 20,
  });
  // "-o" prints: localhost | SUCCESS => {json}
  const json = stdout.slice(stdout.indexOf('{'));
  return (JSON.parse(json) as Record<string, unknown>)[variable];
}

async function ansibleMsg(inventory: string, msg: string): Promise<unknown> {
  await writeHosts(inventory);
  const { stdout } = await run('ansible', ['localhost', '-i', inventory, '-m', 'ansible.builtin.debug', '-a', `msg=${JSON.stringify(msg)}`, '-o'], { env: ANSIBLE_ENV });
  return (JSON.parse(stdout.slice(stdout.indexOf('{'))) as Record<string, unknown>).msg;
}

test('Ansible loads the generated vars (samples) to exactly the data we wrote, without warnings about TLS files', async (t) => {
  const cfg = await tmpConfig();
  const store = await StateStore.open(cfg);
  await store.applyText(samplesDocs().slice(0, 11).join(''));
  t.false(existsSync(cfg.inventory_dir), 'nothing is written into the inventory');
  const inv = await harness(cfg, { 'shop-acme': await readFile(appFilePath(cfg, 'shop-acme'), 'utf8') });
  await writeHosts(inv);
  const { stdout, stderr } = await run('ansible-inventory', ['-i', inv, '--host', 'localhost'], { env: ANSIBLE_ENV });
  t.false(/rproxy_tls|rproxy_routes|Unable to parse|WARNING/.test(stderr), stderr);
  const hostVars = JSON.parse(stdout) as Record<string, any>;
  t.is(hostVars.nginx_rproxy_routes_schema, 3);
  t.deepEqual(Object.keys(hostVars.nginx_rproxy_apps), ['shop-acme']);
  const apps = await ansibleVar(inv, 'nginx_rproxy_apps') as Record<string, any>;
  const app = apps['shop-acme'];
  t.is(app.fqdn, 'shop-acme.apps.example.com');
  t.deepEqual(app.aliases, ['www.example.com']);
  t.deepEqual(app.endpoints.map((e: any) => [e.address, e.port, e.protocols, e.mappings]), [
    ['198.51.100.31', 35531, ['http', 'ws'], [{ frontend: '', backend: '' }, { frontend: '/health', backend: '' }]],
    ['198.51.100.32', 35536, ['http', 'ws'], [{ frontend: '', backend: '' }, { frontend: '/health', backend: '' }]],
  ]);
  t.deepEqual(app.tls[0].key_file, 'tls/shop-acme/www.example.com.key');
  t.deepEqual(app.route, {
    upstream: 'ws.shop-acme', map_value: 'ws.shop-acme', backends: ['198.51.100.31:35531', '198.51.100.32:35536'],
    server_names: ['shop-acme.apps.example.com', 'www.example.com'], websocket: true,
    locations: [{ path: '/health', backend: '/', rewrite_regex: '^/health/*(.*)$', rewrite_to: '/$1' }],
    root_location: true, dedicated_server: true,
  });
  t.true(existsSync(join(routesDir(cfg), 'tls/shop-acme/www.example.com.crt')));
});

/** An app whose every event string is hostile Jinja (validation would reject it; written straight through the emitter). */
function evilApp(marker: string) {
  const evil = [`{{ lookup('pipe', 'touch ${marker}') }}`, '{{ 7 * 7 }}', "{% if true %}yes{% endif %}", '{# c #}', "it's \"quoted\" \\ back", 'tab\there'] as const;
  const app: AppState = {
    id: 'evil-acme', app_name: evil[0], namespace: evil[1], scalable: false, ha: false, aliases: [evil[2], evil[3]],
    endpoints: [{ address: evil[1], port: 80, gear_id: evil[0], port_name: evil[4], protocols: [evil[5]], types: [evil[1]], mappings: [{ frontend: evil[0], backend: evil[2] }] }],
    tls: [],
  };
  return { evil, app };
}

/** The JSON with every {"__ansible_unsafe": "s"} replaced by "s": what the file would be without the marker. */
const stripUnsafe = (json: string): string => json.replace(/\{"__ansible_unsafe": ("(?:[^"\\]|\\.)*")\}/g, '$1');

test('__ansible_unsafe: event strings holding Jinja are never templated by Ansible (no lookup runs, no arithmetic)', async (t) => {
  const cfg = await tmpConfig();
  const marker = join(cfg.dir, 'TEMPLATED');
  const { evil, app } = evilApp(marker);
  const json = renderAppFile(app, cfg.cloud_domain);
  t.true(json.includes('"namespace": {"__ansible_unsafe": "{{ 7 * 7 }}"}'));
  const inv = await harness(cfg, { 'evil-acme': json });
  const apps = await ansibleVar(inv, 'nginx_rproxy_apps') as Record<string, any>;
  const got = apps['evil-acme'];
  t.is(got.app_name, evil[0]);
  t.is(got.namespace, '{{ 7 * 7 }}');
  t.deepEqual(got.aliases, [evil[2], evil[3]]);
  t.is(got.endpoints[0].gear_id, evil[0]);
  t.is(got.endpoints[0].port_name, evil[4]);
  t.deepEqual(got.endpoints[0].protocols, [evil[5]]);
  t.deepEqual(got.endpoints[0].mappings, [{ frontend: evil[0], backend: evil[2] }]);
  t.is(got.route.locations[0].path, evil[0]);
  t.false(JSON.stringify(got).includes('49'), 'no arithmetic happened');
  t.false(existsSync(marker), 'the lookup never ran');
  // The same through expressions that template the value again (what a role or a task does with it).
  t.is(await ansibleVar(inv, "nginx_rproxy_apps['evil-acme'].namespace"), '{{ 7 * 7 }}');
  t.is(await ansibleMsg(inv, "{{ nginx_rproxy_apps['evil-acme'].namespace }}"), '{{ 7 * 7 }}');
  t.is(await ansibleMsg(inv, "{{ nginx_rproxy_apps['evil-acme'].app_name }}"), evil[0]);
  t.false(existsSync(marker));
});

test('control: without the __ansible_unsafe marker the same file IS templated (so the test above can fail)', async (t) => {
  const cfg = await tmpConfig();
  const marker = join(cfg.dir, 'TEMPLATED');
  const { app } = evilApp(marker);
  const plain = stripUnsafe(renderAppFile(app, cfg.cloud_domain));
  t.false(plain.includes('"__ansible_unsafe":'));
  t.true(plain.includes('"namespace": "{{ 7 * 7 }}"'));
  const inv = await harness(cfg, { 'evil-acme': plain });
  t.false(existsSync(marker));
  t.is(await ansibleMsg(inv, "{{ nginx_rproxy_apps['evil-acme'].namespace }}"), '49');
  t.true(existsSync(marker), 'the lookup ran (Ansible templates the whole variable when it is used)');
});

/**
 * The action plugin's own load_state (targeted and full) on a state directory holding the hostile app, then
 * Ansible's Templar on what it returned: the values are AnsibleUnsafeText and stay literal; the same file
 * without the marker is templated (the control).
 */
const PLUGIN = join(import.meta.dirname, '../../../roles/nginx_rproxy/action_plugins/nginx_rproxy_routes.py');
const TEMPLATE_SCRIPT = `
import importlib.util, json, sys
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
spec = importlib.util.spec_from_file_location('plugin', sys.argv[1])
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
out = {}
for mode, sync in (('targeted', ['evil-acme']), ('full', None)):
    apps, _ = plugin.load_state(sys.argv[2], sync)
    templar = Templar(loader=DataLoader(), variables={'apps': apps})
    out[mode] = {'type': type(apps['evil-acme']['namespace']).__name__,
                 'namespace': templar.template("{{ apps['evil-acme'].namespace }}"),
                 'app_name': templar.template("{{ apps['evil-acme'].app_name }}")}
print(json.dumps(out))
`;

for (const marked of [true, false]) {
  test(`action plugin load_state + Templar: ${marked ? 'event strings stay literal (unsafe)' : 'control: without the marker they are templated'}`, async (t) => {
    const cfg = await tmpConfig();
    const marker = join(cfg.dir, 'TEMPLATED');
    const { evil, app } = evilApp(marker);
    const text = marked ? renderAppFile(app, cfg.cloud_domain) : stripUnsafe(renderAppFile(app, cfg.cloud_domain));
    await mkdir(join(routesDir(cfg), 'apps'), { recursive: true });
    await writeFile(appFilePath(cfg, 'evil-acme'), text);
    await writeFile(join(routesDir(cfg), 'index.json'), JSON.stringify({ nginx_rproxy_routes_schema: 3, app_digests: { 'evil-acme': 'a'.repeat(64) } }));
    const { stdout } = await run('/usr/bin/python3', ['-c', TEMPLATE_SCRIPT, PLUGIN, cfg.state_dir], { env: ANSIBLE_ENV });
    const got = JSON.parse(stdout) as Record<string, { type: string; namespace: string; app_name: string }>;
    for (const mode of ['targeted', 'full']) {
      if (marked) {
        t.is(got[mode]!.type, 'AnsibleUnsafeText', mode);
        t.is(got[mode]!.namespace, '{{ 7 * 7 }}', mode);
        t.is(got[mode]!.app_name, evil[0], mode);
      } else {
        t.is(got[mode]!.namespace, '49', mode);
      }
    }
    t.is(existsSync(marker), !marked, marked ? 'the lookup never ran' : 'the lookup ran');
  });
}
