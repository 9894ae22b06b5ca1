/**
 * Every secret a role takes (passwords, passcodes, the TSIG secret) may be an inline `!vault` value, as the roles'
 * own messages recommend (`ansible-vault encrypt_string`): each role's argument spec, validated by real ansible-playbook
 * the way a role's entry validates it (from the play's variables), accepts the vaulted value, and the value
 * decrypts to the secret. ansible-core 2.14 refuses a vaulted value for an option marked `no_log` ("Unknown parameter
 * type"), so no role's argument spec marks any (validation returns no values, so the mark would hide nothing).
 */
import { needs, ANSIBLE } from '../helpers/tools.js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { REPO } from '../../fixtures/helpers.js';

const test = needs(ANSIBLE);

const SECRETS: Record<string, string[]> = {
  activemq_routinginfo: ['activemq_routinginfo_password', 'activemq_routinginfo_listener_password', 'activemq_routinginfo_tls_keystore_password'],
  keepalived_vrrp: ['keepalived_vrrp_auth_pass'],
  rproxy_dns: ['rproxy_dns_tsig_key_secret'],
  rproxy_listener: ['rproxy_listener_stomp_passcode'],
};
const SECRET = 'Zm9vYmFyLXNlY3JldA==';

type Options = Record<string, Record<string, unknown>>;

function mainOptions(role: string): Options {
  const spec = yaml.load(readFileSync(join(REPO, 'ansible/roles', role, 'meta/argument_specs.yml'), 'utf8')) as { argument_specs: { main: { options: Options } } };
  return spec.argument_specs.main.options;
}

function run(cmd: string, args: string[], input?: string) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8', input,
    env: { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_STDOUT_CALLBACK: 'default', ANSIBLE_LOCALHOST_WARNING: '0', ANSIBLE_INVENTORY_UNPARSED_WARNING: '0' },
  });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

for (const [role, names] of Object.entries(SECRETS)) {
  test(`${role}: ${names.join(', ')} accept an inline !vault value`, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'rproxy-vault-'));
    const pass = join(dir, 'vault-pass');
    writeFileSync(pass, 'lab-vault-password\n', { mode: 0o600 });
    const options = mainOptions(role);
    const spec: Options = {};
    let vars = '';
    for (const name of names) {
      t.truthy(options[name], `${name} is in ${role}'s argument spec`);
      spec[name] = options[name]!;
      const enc = run('ansible-vault', ['encrypt_string', '--vault-password-file', pass, '--stdin-name', name], SECRET);
      t.is(enc.code, 0, enc.out);
      vars += `${enc.out.slice(enc.out.indexOf(`${name}: !vault`))}\n`;
    }
    writeFileSync(join(dir, 'secrets.yml'), vars);
    // the validation a role's entry point runs: the spec's options, their values taken from the play's variables
    const checks = names.map((n) => `    - ansible.builtin.assert: {that: ["${n} | length == ${SECRET.length}", "${n} == '${SECRET}'"], quiet: true}\n`).join('');
    writeFileSync(join(dir, 'play.yml'), `- hosts: localhost\n  gather_facts: false\n  vars_files: [secrets.yml]\n  tasks:\n`
      + `    - ansible.builtin.validate_argument_spec:\n        argument_spec: ${JSON.stringify(spec)}\n${checks}`);
    const r = run('ansible-playbook', ['-i', 'localhost,', '-c', 'local', '--vault-password-file', pass, join(dir, 'play.yml')]);
    t.notRegex(r.out, /Unknown parameter type/);
    t.is(r.code, 0, r.out);
  });
}

test('no option of any role is marked no_log (it makes a vaulted value fail validation)', (t) => {
  const roles = readdirSync(join(REPO, 'ansible/roles')).filter((r) => existsSync(join(REPO, 'ansible/roles', r, 'meta/argument_specs.yml')));
  t.true(roles.length >= 5);
  for (const role of roles) {
    const marked = Object.entries(mainOptions(role)).filter(([, o]) => 'no_log' in o).map(([n]) => n);
    t.deepEqual(marked, [], role);
  }
});
