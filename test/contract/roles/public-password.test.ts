/**
 * Outside a lab, a play refuses OpenShift's public default STOMP password (and an empty one) with a message that
 * says what to set: the real roles, run by ansible-playbook on localhost (each fails at its first task, before
 * touching anything).
 */
import { needs, ANSIBLE } from '../helpers/tools.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../../fixtures/helpers.js';

const test = needs(ANSIBLE);

function play(role: string, vars: Record<string, unknown>): { code: number; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'rproxy-pw-'));
  writeFileSync(join(dir, 'play.yml'), `- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: ${role}\n`);
  const r = spawnSync('ansible-playbook', ['-i', 'localhost,', '-c', 'local', join(dir, 'play.yml'), '-e', JSON.stringify(vars)], {
    encoding: 'utf8', env: { ...process.env, ANSIBLE_ROLES_PATH: join(REPO, 'roles'), ANSIBLE_NOCOLOR: '1', ANSIBLE_STDOUT_CALLBACK: 'default', ANSIBLE_LOCALHOST_WARNING: '0' },
  });
  return { code: r.status ?? -1, out: r.stdout + r.stderr };
}

const NOWHERE = { activemq_routinginfo_config_file: '/nonexistent/activemq.xml' };

test('activemq_routinginfo: the public default password fails the play with a message', (t) => {
  const r = play('activemq_routinginfo', { ...NOWHERE, activemq_routinginfo_listener_password: 's3cret-l' });
  t.not(r.code, 0);
  t.regex(r.out, /OpenShift's public default \(routinginfopasswd\)/);
  t.regex(r.out, /ansible-vault encrypt_string/);
  t.notRegex(r.out, /does not exist/, 'stopped before the first real task');
});

test('activemq_routinginfo: an empty listener password fails too; a lab may allow the public one', (t) => {
  t.regex(play('activemq_routinginfo', { ...NOWHERE, activemq_routinginfo_password: 'x9' }).out, /public default|empty/);
  // allowed (a lab): the check passes and the role goes on to its next task (which fails on the missing file)
  const lab = play('activemq_routinginfo', { ...NOWHERE, activemq_routinginfo_allow_public_password: true, activemq_routinginfo_listener_password: 'l' });
  t.regex(lab.out, /\/nonexistent\/activemq\.xml does not exist/);
});

test('rproxy_listener: the public default or an empty passcode fails the play with a message', (t) => {
  for (const pass of ['routinginfopasswd', '']) {
    const r = play('rproxy_listener', { rproxy_listener_stomp_passcode: pass, rproxy_listener_install_dir: '/nonexistent' });
    t.not(r.code, 0);
    t.regex(r.out, /empty or OpenShift's public default/);
  }
});
