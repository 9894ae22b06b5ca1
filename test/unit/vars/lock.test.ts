import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile, readFile, rm, utimes } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeStaleLock, withLock } from '../../../generator/src/io/lock.js';
import { isRproxyError } from '../../../generator/src/errors.js';

const lockFile = async () => join(await mkdtemp(join(tmpdir(), 'rproxy-lock-')), 'state.lock');

test('withLock: holds a pid file while running, removes it after, even when fn throws', async (t) => {
  const p = await lockFile();
  await withLock(p, async () => {
    t.regex(await readFile(p, 'utf8'), new RegExp(`^${process.pid} ${hostname()} `));
  });
  t.false(existsSync(p));
  await t.throwsAsync(withLock(p, async () => { throw new Error('boom'); }), { message: 'boom' });
  t.false(existsSync(p));
});

test('withLock: callers in one process run one at a time, in order', async (t) => {
  const p = await lockFile();
  const log: string[] = [];
  await Promise.all([1, 2, 3].map((i) => withLock(p, async () => {
    log.push(`in${i}`);
    await new Promise((r) => setTimeout(r, 10));
    log.push(`out${i}`);
  })));
  t.deepEqual(log, ['in1', 'out1', 'in2', 'out2', 'in3', 'out3']);
});

test('withLock: a lock left by a dead process is stale and taken over', async (t) => {
  const p = await lockFile();
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  await writeFile(p, `${dead} ${hostname()} 2020-01-01T00:00:00Z\n`);
  t.is(await withLock(p, async () => 'ran', { timeoutMs: 2000 }), 'ran');
  // an empty lock file older than 5 s (holder died between create and write) is stale too
  await writeFile(p, '');
  await utimes(p, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  t.is(await withLock(p, async () => 'ran', { timeoutMs: 2000 }), 'ran');
});

test('withLock: a live holder makes others wait, then fail with ERR_STATE_LOCKED naming it', async (t) => {
  const p = await lockFile();
  const child = spawn('sleep', ['30']);
  t.teardown(() => child.kill());
  await writeFile(p, `${child.pid} ${hostname()} 2026-01-01T00:00:00Z\n`);
  const t0 = Date.now();
  const e = await t.throwsAsync(withLock(p, async () => 'never', { timeoutMs: 300 }));
  t.true(isRproxyError(e, 'ERR_STATE_LOCKED'));
  t.regex(e!.message, new RegExp(`locked by ${child.pid} `));
  t.true(Date.now() - t0 >= 300);
  t.true(existsSync(p), 'a live holder\'s lock is never removed');
});

test('breaking a stale lock removes only the content judged stale, one breaker at a time', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lock-break-'));
  const path = join(dir, 'state.lock');
  await writeFile(path, 'fresh-holder');
  await removeStaleLock(path, 'stale-holder');
  t.is(await readFile(path, 'utf8'), 'fresh-holder', 'a lock replaced since it was judged stale is kept');
  await writeFile(`${path}.break`, '');
  await writeFile(path, 'stale-holder');
  await removeStaleLock(path, 'stale-holder');
  t.is(await readFile(path, 'utf8'), 'stale-holder', 'another waiter is breaking it: this one leaves it alone');
  await rm(`${path}.break`);
  await removeStaleLock(path, 'stale-holder');
  await t.throwsAsync(readFile(path, 'utf8'), { code: 'ENOENT' });
  await t.throwsAsync(readFile(`${path}.break`, 'utf8'), { code: 'ENOENT' }, 'the breaker file is gone again');
});
