/**
 * Least privilege of the listener's systemd unit: the role's real template, rendered by Ansible with the role's
 * defaults, rated by `systemd-analyze security --offline=true` (systemd 252, Debian package systemd, installed
 * by test/lab/deps.sh): the exposure must stay at or below 4.0 (the bound; 9.6 = a bare unit).
 */
import { needs, ANSIBLE } from '../helpers/tools.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../../fixtures/helpers.js';

const test = needs(ANSIBLE);

const run = promisify(execFile);
const ROLE = join(REPO, 'roles/rproxy_listener');

async function renderUnit(extraVars: Record<string, unknown> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rproxy-unit-'));
  const out = join(dir, 'paas-rproxy-listener.service');
  await writeFile(join(dir, 'play.yml'), [
    '- hosts: localhost', '  gather_facts: false', '  vars_files:', `    - ${join(ROLE, 'defaults/main.yml')}`, '  tasks:',
    '    - ansible.builtin.template:', `        src: ${join(ROLE, 'templates/listener.service.j2')}`, `        dest: ${out}`, '        mode: "0644"', ''].join('\n'));
  await run('ansible-playbook', ['-i', 'localhost,', '-c', 'local', join(dir, 'play.yml'), '-e', JSON.stringify(extraVars)], {
    env: { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCALHOST_WARNING: '0', ANSIBLE_STDOUT_CALLBACK: 'default' },
  });
  return out;
}

async function exposure(unit: string): Promise<{ score: number; report: string }> {
  // exit code: non-zero only when the score exceeds --threshold (default 100): read the score from the report
  const { stdout } = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', unit]);
  const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?) /.exec(stdout);
  if (!m) throw new Error(`no exposure level in:\n${stdout}`);
  return { score: Number(m[1]), report: stdout };
}

test('the listener unit is hardened: systemd-analyze security rates its exposure <= 4.0, as a dedicated user', async (t) => {
  const unit = await renderUnit();
  const text = await readFile(unit, 'utf8');
  t.regex(text, /^User=paas-rproxy$/m);
  t.regex(text, /^ProtectSystem=strict$/m);
  t.regex(text, /^ReadWritePaths=\/var\/lib\/paas-rproxy$/m);
  t.regex(text, /^CapabilityBoundingSet=$/m);
  const { score, report } = await exposure(unit);
  t.log(`exposure ${score} (systemd-analyze security --offline=true)`);
  t.true(score <= 4.0, report);
});

test('control: the same check rates a bare unit as unsafe (the test above can fail)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rproxy-unit-'));
  const bare = join(dir, 'bare.service');
  await writeFile(bare, '[Service]\nExecStart=/usr/bin/node /opt/paas-rproxy/dist/cli/main.js listen\n');
  const { score } = await exposure(bare);
  t.true(score > 9, String(score));
});

test('rproxy_listener_environment values are quoted in the unit: spaces kept, no directive injected by a newline, % not expanded', async (t) => {
  const unit = await renderUnit({ rproxy_listener_environment: {
    ANSIBLE_SSH_ARGS: '-o A=1 -o B=2', INJECT: 'x\nExecStartPre=+/bin/sh -c id', RATE: '50%h', QUOTE: 'say "hi" \\o/',
  } });
  const text = await readFile(unit, 'utf8');
  t.regex(text, /^Environment="ANSIBLE_SSH_ARGS=-o A=1 -o B=2"$/m);
  t.regex(text, /^Environment="INJECT=x\\nExecStartPre=\+\/bin\/sh -c id"$/m);
  t.notRegex(text, /^ExecStartPre=/m);
  t.regex(text, /^Environment="RATE=50%%h"$/m);
  t.regex(text, /^Environment="QUOTE=say \\"hi\\" \\\\o\/"$/m);
});
