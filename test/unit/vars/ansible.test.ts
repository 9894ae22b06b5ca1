/**
 * Ansible reads the vars files as written and never templates an event string: real ansible against a temp
 * inventory. Validation already rejects "{{", so this test writes hostile strings straight through the emitter.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderVars } from '../../../generator/src/vars/emit.js';
import { StateStore } from '../../../generator/src/vars/store.js';
import { varsFilePath } from '../../../generator/src/vars/paths.js';
import type { AppState } from '../../../generator/src/state/types.js';
import { samplesDocs, tmpConfig } from '../../fixtures/helpers.js';

const run = promisify(execFile);

async function ansibleVar(inventory: string, variable: string): Promise<unknown> {
  await writeFile(join(inventory, 'hosts.yml'), 'all:\n  children:\n    proxies:\n      hosts:\n        localhost:\n          ansible_connection: local\n');
  const { stdout } = await run('ansible', ['localhost', '-i', inventory, '-m', 'ansible.builtin.debug', '-a', `var=${variable}`, '-o'], {
    env: { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCALHOST_WARNING: '0', ANSIBLE_INVENTORY_UNPARSED_WARNING: '0', ANSIBLE_STDOUT_CALLBACK: 'default' },
    maxBuffer: 64 << 20,
  });
  // "-o" prints: localhost | SUCCESS => {json}
  const json = stdout.slice(stdout.indexOf('{'));
  return (JSON.parse(json) as Record<string, unknown>)[variable];
}

test('Ansible loads the generated vars (samples) to exactly the data we wrote, without warnings about TLS files', async (t) => {
  const cfg = await tmpConfig();
  const store = await StateStore.open(cfg);
  await store.applyText(samplesDocs().slice(0, 11).join(''));
  await writeFile(join(cfg.inventory_dir, 'hosts.yml'), '');
  const { stderr } = await run('ansible-inventory', ['-i', cfg.inventory_dir, '--list'], { env: { ...process.env, ANSIBLE_NOCOLOR: '1' } });
  t.false(/rproxy_tls|Unable to parse/.test(stderr), stderr);
  const apps = await ansibleVar(cfg.inventory_dir, 'nginx_rproxy_apps') as Record<string, any>;
  const app = apps['shop-acme'];
  t.is(app.fqdn, 'shop-acme.apps.example.com');
  t.deepEqual(app.aliases, ['www.example.com']);
  t.deepEqual(app.endpoints.map((e: any) => [e.address, e.port, e.protocols, e.mappings]), [
    ['198.51.100.31', 35531, ['http', 'ws'], [{ frontend: '', backend: '' }, { frontend: '/health', backend: '' }]],
    ['198.51.100.32', 35536, ['http', 'ws'], [{ frontend: '', backend: '' }, { frontend: '/health', backend: '' }]],
  ]);
  t.deepEqual(app.tls[0].key_file, '.rproxy_tls/shop-acme/www.example.com.key');
  t.deepEqual(app.route, {
    upstream: 'shop-acme', backends: ['198.51.100.31:35531', '198.51.100.32:35536'],
    server_names: ['shop-acme.apps.example.com', 'www.example.com'], websocket: true,
    locations: [{ frontend: '/health', backend: '' }], dedicated_server: true,
  });
  t.true(existsSync(join(cfg.inventory_dir, '.rproxy_tls/shop-acme/www.example.com.crt')));
});

test('!unsafe: event strings holding Jinja are never templated by Ansible (no lookup runs, no arithmetic)', async (t) => {
  const cfg = await tmpConfig();
  const marker = join(cfg.dir, 'TEMPLATED');
  const evil = [`{{ lookup('pipe', 'touch ${marker}') }}`, '{{ 7 * 7 }}', "{% if true %}yes{% endif %}", '{# c #}', "it's \"quoted\" \\ back", 'tab\there'];
  const app: AppState = {
    id: 'evil-acme', app_name: evil[0]!, namespace: evil[1]!, scalable: false, ha: false, aliases: [evil[2]!, evil[3]!],
    endpoints: [{ address: evil[1]!, port: 80, gear_id: evil[0]!, port_name: evil[4]!, protocols: [evil[5]!], types: [evil[1]!], mappings: [{ frontend: evil[0]!, backend: evil[2]! }] }],
    tls: [],
  };
  await mkdir(join(cfg.inventory_dir, 'group_vars/proxies'), { recursive: true });
  await writeFile(varsFilePath(cfg), renderVars([app], cfg.cloud_domain));
  const apps = await ansibleVar(cfg.inventory_dir, 'nginx_rproxy_apps') as Record<string, any>;
  const got = apps['evil-acme'];
  t.is(got.app_name, evil[0]);
  t.is(got.namespace, '{{ 7 * 7 }}');
  t.deepEqual(got.aliases, [evil[2], evil[3]]);
  t.is(got.endpoints[0].gear_id, evil[0]);
  t.is(got.endpoints[0].port_name, evil[4]);
  t.deepEqual(got.endpoints[0].protocols, [evil[5]]);
  t.deepEqual(got.endpoints[0].mappings, [{ frontend: evil[0], backend: evil[2] }]);
  t.is(got.route.locations[0].frontend, evil[0]);
  t.false(JSON.stringify(got).includes('49'), 'no arithmetic happened');
  t.false(existsSync(marker), 'the lookup never ran');
  // The same through a task that templates the value again (what a role does with it).
  const msg = await ansibleVar(cfg.inventory_dir, "nginx_rproxy_apps['evil-acme'].namespace");
  t.is(msg, '{{ 7 * 7 }}');
  t.false(existsSync(marker));
});
