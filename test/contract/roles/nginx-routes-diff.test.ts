// The nginx_rproxy_routes module (with its action plugin) under real ansible-playbook: --check --diff shows every file
// it would change and touches nothing, --diff shows what it changed, key material never appears, a second run
// changes nothing. No nginx needed: only data files and TLS files change and nginx is "started" with `true`.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { StateStore } from '../../../generator/src/vars/store.js';
import { block, psych, REPO, tls, tmpConfig } from '../../fixtures/helpers.js';
import { needs, ANSIBLE } from '../helpers/tools.js';

const test = needs(ANSIBLE);
const run = promisify(execFile);
const ROLE = join(REPO, 'roles/nginx_rproxy');

test('--check --diff shows the changes and touches nothing; --diff applies them; keys never shown; second run unchanged', async (t) => {
  const cfg = await tmpConfig('tls_require_valid: false\n');
  const store = await StateStore.open(cfg);
  const ev = (f: Record<string, string>) => psych({ namespace: 'acme', ...f });
  await store.applyText(ev({ action: ':add_alias', app_name: 'shop', alias: 'a.example.org' })
    + ev({ action: ':add_ssl', app_name: 'shop', alias: 'a.example.org', ssl: block(tls('a.crt')), private_key: block(tls('a.key')), pass_phrase: "''" }));
  const conf = join(cfg.dir, 'rproxy');
  await mkdir(conf);
  const play = join(cfg.dir, 'play.yml');
  await symlink(join(ROLE, 'templates'), join(cfg.dir, 'templates')); // the plugin finds the role's templates next to the play
  await writeFile(play, `- hosts: localhost
  gather_facts: false
  tasks:
    - nginx_rproxy_routes:
        state_dir: ${cfg.state_dir}
        conf_dir: ${conf}
        test_command: ["true"]
        start_command: ["true"]
        pid_file: ${join(cfg.dir, 'nginx.pid')}
        apply_socket: ${join(cfg.dir, 'run', 'apply.sock')}
        settings: {https_port: 443, listen_ipv6: false, http2: false}
`);
  const env = {
    ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCALHOST_WARNING: '0', ANSIBLE_STDOUT_CALLBACK: 'default',
    ANSIBLE_ACTION_PLUGINS: join(ROLE, 'action_plugins'), ANSIBLE_LIBRARY: join(ROLE, 'library'), ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
  };
  const playbook = async (...args: string[]) => (await run('ansible-playbook', ['-i', 'localhost,', '-c', 'local', play, ...args], { env })).stdout;

  const check = await playbook('--check', '--diff');
  t.regex(check, /changed=1/);
  t.regex(check, new RegExp(`\\+\\+\\+ after: ${conf}/apps/shop-acme\\.json`));
  t.regex(check, /\+\{"backends":\[\],"id":"shop-acme"/);
  t.regex(check, new RegExp(`\\+\\+\\+ after: ${conf}/tls-servers/shop-acme\\.conf[\\s\\S]*\\+\\s+server_name a\\.example\\.org;`));
  t.regex(check, /key material not shown/);
  t.notRegex(check, /PRIVATE KEY/);
  t.deepEqual(readdirSync(conf), [], 'check mode wrote nothing');

  const applied = await playbook('--diff');
  t.regex(applied, /changed=1/);
  t.regex(applied, /\+\{"backends":\[\],"id":"shop-acme"/);
  t.notRegex(applied, /PRIVATE KEY/);
  t.true(existsSync(join(conf, 'apps/shop-acme.json')));
  t.true(existsSync(join(conf, 'tls/shop-acme/a.example.org.key')));

  const again = await playbook('--diff');
  t.regex(again, /changed=0/);
  t.notRegex(again, /\+\+\+ after/);
});
