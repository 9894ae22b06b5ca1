/**
 * The rproxy_listener task that gives the listener back what a command run as root left in its state directory
 * runs as root in a directory the listener's user owns: it must never follow a symlink there (the user could
 * point one at /etc/shadow and own it after the next site.yml). The role's real task, run by ansible-playbook.
 */
import { needs, ANSIBLE } from '../helpers/tools.js';
import { spawnSync } from 'node:child_process';
import { chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { REPO } from '../../fixtures/helpers.js';

const test = needs(ANSIBLE);

const TASK = 'Give the listener the state a command run as root may have written (apply, migrate, sync)';

test('the state directory is given back to the listener without following a symlink out of it', (t) => {
  if (process.getuid?.() !== 0) { t.pass('needs root (chown)'); return; }
  const tasks = yaml.load(readFileSync(join(REPO, 'roles/rproxy_listener/tasks/main.yml'), 'utf8')) as Array<Record<string, unknown>>;
  const task = tasks.find((x) => x.name === TASK);
  t.truthy(task, 'the task exists');
  const dir = mkdtempSync(join(tmpdir(), 'rproxy-owner-'));
  chmodSync(dir, 0o755);
  const state = join(dir, 'state');
  mkdirSync(join(state, 'routes'), { recursive: true });
  writeFileSync(join(state, 'routes', 'by-root.json'), '{}\n'); // what `paas-rproxy apply` as root leaves
  const victim = join(dir, 'shadow');
  writeFileSync(victim, 'root:secret\n');
  symlinkSync(victim, join(state, 'evil')); // a symlink the state's owner planted (root-owned here: selected by any owner test)
  symlinkSync(dir, join(state, 'evil-dir'));
  chownSync(state, 65534, 65534);
  writeFileSync(join(dir, 'play.yml'), yaml.dump([{ hosts: 'localhost', gather_facts: false, vars: {
    rproxy_listener_state_dir: state, rproxy_listener_user: 'nobody', rproxy_listener_group: 'nogroup',
  }, tasks: [task] }]));
  const r = spawnSync('ansible-playbook', ['-i', 'localhost,', '-c', 'local', join(dir, 'play.yml')], {
    encoding: 'utf8', env: { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_STDOUT_CALLBACK: 'default', ANSIBLE_LOCALHOST_WARNING: '0' },
  });
  t.is(r.status, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /changed=1/);
  t.is(statSync(join(state, 'routes', 'by-root.json')).uid, 65534, 'root\'s file given to the listener');
  t.is(lstatSync(join(state, 'evil')).uid, 65534, 'the symlink itself changed owner');
  t.is(statSync(victim).uid, 0, 'the symlink\'s target outside the state directory is untouched');
  t.is(statSync(dir).uid, 0, 'a symlinked directory is not followed');
});
