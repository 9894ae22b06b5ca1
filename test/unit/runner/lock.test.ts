// The playbook lock's files never follow a symlink planted in the state directory.
import test from 'ava';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PlaybookLock } from '../../../generator/src/runner/lock.js';
import { writeApplied } from '../../../generator/src/runner/applied.js';

test('setChild refuses a lock file replaced by a symlink; the target is untouched', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rproxy-lock-'));
  const file = path.join(dir, 'playbook.lock');
  const target = path.join(dir, 'victim');
  await writeFile(target, 'keep');
  const lock = await PlaybookLock.acquire(file, 'test', { timeoutMs: 1000 });
  await rm(file);
  await symlink(target, file);
  await t.throwsAsync(lock.setChild(1234), { code: 'ELOOP' });
  t.is(await readFile(target, 'utf8'), 'keep');
  await rm(dir, { recursive: true, force: true });
});

test('writeApplied replaces a planted symlink instead of writing through it', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rproxy-applied-'));
  const target = path.join(dir, 'victim');
  await writeFile(target, 'keep');
  await writeApplied(dir, 'rp1', {});
  const file = path.join(dir, 'applied', 'rp1.json');
  await rm(file);
  await symlink(target, file);
  await writeApplied(dir, 'rp1', { 'a-b': 'd1' });
  t.is(await readFile(target, 'utf8'), 'keep');
  t.deepEqual(JSON.parse(await readFile(file, 'utf8')), { 'a-b': 'd1' });
  await rm(dir, { recursive: true, force: true });
});
