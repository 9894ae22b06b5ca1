// keepalived_vrrp's "is keepalived running?" (roles/keepalived_vrrp/tasks/running.yml) under real ansible-playbook:
// only a root process of keepalived_vrrp_daemon named by the pid file counts. A stale pid file whose pid now
// belongs to another program called keepalived (another user's copy of sleep) must not make the role skip the start.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, realpath, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO } from '../../fixtures/helpers.js';
import { needs, ANSIBLE, ROOT } from '../helpers/tools.js';

const test = needs(ANSIBLE);
const run = promisify(execFile);
const TASKS = join(REPO, 'roles/keepalived_vrrp/tasks/running.yml');

async function running(dir: string, pidFile: string, daemon: string): Promise<boolean> {
  const play = join(dir, 'play.yml');
  await writeFile(play, `- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_tasks: ${TASKS}
      vars: {keepalived_vrrp_pid_file: ${pidFile}, keepalived_vrrp_daemon: ${daemon}}
    - ansible.builtin.debug: {msg: "RUNNING={{ keepalived_vrrp_running | bool }}"}
`);
  const env = { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCALHOST_WARNING: '0', ANSIBLE_STDOUT_CALLBACK: 'default', ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3' };
  const { stdout } = await run('ansible-playbook', ['-i', 'localhost,', '-c', 'local', play], { env });
  const m = /RUNNING=(True|False)/.exec(stdout);
  if (!m) throw new Error(`no RUNNING= line in:\n${stdout}`);
  return m[1] === 'True';
}

async function started(argv: string[], opts: { uid?: number; gid?: number } = {}): Promise<ChildProcess> {
  const c = spawn(argv[0] as string, argv.slice(1), { stdio: 'ignore', ...opts });
  await new Promise<void>((res, rej) => { c.once('spawn', () => res()); c.once('error', rej); });
  return c;
}

async function setup(): Promise<{ dir: string; pidFile: string; sleep: string }> {
  const dir = await mkdtemp(join(os.tmpdir(), 'kv-running-'));
  await chmod(dir, 0o755); // nobody runs a program from here
  return { dir, pidFile: join(dir, 'keepalived.pid'), sleep: await realpath('/bin/sleep') };
}

test('no pid file, or a pid file naming no process: not running', async (t) => {
  const { dir, pidFile } = await setup();
  t.false(await running(dir, pidFile, '/usr/sbin/keepalived'));
  await writeFile(pidFile, '999999999\n');
  t.false(await running(dir, pidFile, '/usr/sbin/keepalived'));
});

test('a live process of another program named keepalived (a stale pid reused) is not keepalived', async (t) => {
  const { dir, pidFile, sleep } = await setup();
  const fake = join(dir, 'keepalived');
  await copyFile(sleep, fake);
  await chmod(fake, 0o755);
  const c = await started([fake, '600']);
  try {
    await writeFile(pidFile, `${c.pid}\n`);
    t.false(await running(dir, pidFile, '/usr/sbin/keepalived'));
  } finally { c.kill('SIGKILL'); }
});

needs(ANSIBLE, ROOT)('a root process of keepalived_vrrp_daemon is running; the same program run by another user is not', async (t) => {
  const { dir, pidFile, sleep } = await setup();
  const mine = await started([sleep, '600']);
  const nobody = await started([sleep, '600'], { uid: 65534, gid: 65534 });
  try {
    await writeFile(pidFile, `${mine.pid}\n`);
    t.true(await running(dir, pidFile, sleep));
    await writeFile(pidFile, `${nobody.pid}\n`);
    t.false(await running(dir, pidFile, sleep));
  } finally { mine.kill('SIGKILL'); nobody.kill('SIGKILL'); }
});
