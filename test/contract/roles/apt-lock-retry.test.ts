// The package installs of nginx_rproxy and keepalived_vrrp under real ansible-playbook, when dpkg's lock is held by
// another apt-get: the onboarding provisions a new proxy with two runs at once (nginx, and keepalived_vrrp_prepare
// beside it), and on a host where both packages are missing both call apt-get install together. apt-get does not
// wait for the lock (apt 2.6: "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process N",
// exit 100 at once; Ansible 2.14's apt lock_timeout covers only python-apt's cache) so one run failed.
// The role's own tasks are run (dpkg-query, then the install task) with only the apt module replaced by a command
// that answers like apt-get under a held lock for its first attempts: the install must wait, not fail; any other
// apt error must still fail at once.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { REPO } from '../../fixtures/helpers.js';
import { needs, ANSIBLE } from '../helpers/tools.js';

const test = needs(ANSIBLE);
const run = promisify(execFile);

type Task = Record<string, unknown>;

async function roleTasks(role: string, prefix: string, aptStub: string): Promise<Task[]> {
  const tasks = YAML.parse(await readFile(join(REPO, `roles/${role}/tasks/main.yml`), 'utf8')) as Task[];
  const dpkg = tasks.find((t) => t.register === `${prefix}_dpkg`);
  const install = tasks.find((t) => 'ansible.builtin.apt' in t);
  if (!dpkg || !install) throw new Error(`${role}: no dpkg-query or apt task`);
  const stubbed: Task = { ...install, 'ansible.builtin.shell': aptStub };
  delete stubbed['ansible.builtin.apt'];
  if ('delay' in stubbed) stubbed.delay = 0; // the wait itself is not what is tested
  return [dpkg, stubbed];
}

/** Runs the role's dpkg-query and install tasks; the apt stub fails `failures` times with `stderr`. */
async function install(role: string, prefix: string, failures: number, stderr: string): Promise<{ ok: boolean; attempts: number; out: string }> {
  const dir = await mkdtemp(join(os.tmpdir(), 'apt-lock-'));
  const counter = join(dir, 'attempts');
  await writeFile(counter, '0');
  const stub = `n=$(($(cat ${counter}) + 1)); echo $n > ${counter}; `
    + `if [ $n -le ${failures} ]; then echo '${stderr}' >&2; exit 100; fi; echo installed`;
  const play = [{
    hosts: 'localhost', gather_facts: false,
    vars: { [`${prefix}_install`]: true, [`${prefix}_packages`]: ['rproxy-test-package-never-installed'], [`${prefix}_apt_update_cache`]: false },
    tasks: await roleTasks(role, prefix, stub),
  }];
  const file = join(dir, 'play.yml');
  await writeFile(file, YAML.stringify(play));
  const env = { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCALHOST_WARNING: '0', ANSIBLE_STDOUT_CALLBACK: 'default', ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3' };
  let ok = true;
  let out = '';
  try {
    out = (await run('nice', ['-n', '19', 'ansible-playbook', '-i', 'localhost,', '-c', 'local', file], { env })).stdout;
  } catch (e) {
    ok = false;
    out = String((e as { stdout?: string }).stdout ?? e);
  }
  return { ok, attempts: Number((await readFile(counter, 'utf8')).trim()), out };
}

const LOCKED = 'E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)';

for (const [role, prefix] of [['nginx_rproxy', 'nginx_rproxy'], ['keepalived_vrrp', 'keepalived_vrrp']] as const) {
  test(`${role}: a package install that finds dpkg locked by another apt-get waits for it`, async (t) => {
    const r = await install(role, prefix, 2, LOCKED);
    t.true(r.ok, r.out);
    t.is(r.attempts, 3);
  });

  test(`${role}: any other apt error fails at once`, async (t) => {
    const r = await install(role, prefix, 5, 'E: Unable to locate package rproxy-test-package-never-installed');
    t.false(r.ok, r.out);
    t.is(r.attempts, 1);
  });
}
