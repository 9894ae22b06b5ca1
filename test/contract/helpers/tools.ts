// The contract tier (test/contract): tests of the project against the real tools it drives (nginx, Ansible).
// A file declares what it needs: `const test = needs(NGINX, ANSIBLE)`. When a tool is missing its tests are
// skipped with the reason in their titles; with CI=true a missing tool is a failure instead (a CI machine must
// have them: test/lab/deps.sh installs them).
import avaTest, { type Implementation, type TestFn } from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface Tool { name: string; found: boolean; install: string }

const runs = (cmd: string, ...args: string[]): boolean => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

export const NGINX: Tool = {
  name: 'nginx', found: ['/usr/sbin/nginx', '/usr/bin/nginx'].some((p) => existsSync(p)), install: 'apt-get install nginx',
};
export const ANSIBLE: Tool = {
  name: 'ansible', found: runs('ansible-playbook', '--version') && runs('/usr/bin/python3', '-c', 'import ansible'), install: 'apt-get install ansible-core',
};
/** Root: tests that start a process as another user (a missing privilege skips like a missing tool). */
export const ROOT: Tool = { name: 'root', found: process.getuid?.() === 0, install: 'run the tests as root' };
export const PYTHON3: Tool = { name: 'python3', found: runs('/usr/bin/python3', '--version'), install: 'apt-get install python3' };

/** ava's `test` when every tool is there; otherwise one that skips (or, with CI=true, fails once) with the reason. */
export function needs(...tools: Tool[]): TestFn {
  const missing = tools.filter((x) => !x.found);
  if (missing.length === 0) return avaTest;
  const why = `needs ${missing.map((x) => `${x.name} (${x.install}, or bash test/lab/deps.sh)`).join(', ')}`;
  if (process.env.CI === 'true') {
    avaTest(`contract tier: ${why}; CI=true, so a missing tool fails instead of skipping`, (t) => { t.fail(why); });
  } else {
    console.warn(`contract tier: skipped, ${why}`);
  }
  const label = `[skipped: ${missing.map((x) => x.name).join(', ')} not installed]`;
  const skip = (title: string, impl: Implementation<[]>): void => { avaTest.skip(`${title} ${label}`, impl); };
  const serialSkip = (title: string, impl: Implementation<[]>): void => { avaTest.serial.skip(`${title} ${label}`, impl); };
  const noHook = (): void => undefined;
  return Object.assign(skip, {
    serial: Object.assign(serialSkip, { skip: serialSkip, before: noHook, after: noHook, beforeEach: noHook, afterEach: noHook }),
    skip, before: noHook, after: noHook, beforeEach: noHook, afterEach: noHook,
  }) as unknown as TestFn;
}
