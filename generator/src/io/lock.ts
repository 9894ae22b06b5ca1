/**
 * Cross-process lock: an O_EXCL lock file holding "pid host time". A lock whose pid is dead on this host is
 * stale and taken over. Callers in one process are also queued in memory, so they never wait on their own pid.
 */
import { open, readFile, unlink, mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import { RproxyError } from '../errors.js';
import { pidAlive } from './pid.js';

export interface LockOptions {
  /** how long to wait for another holder (default 30 s) */
  timeoutMs?: number;
  /** poll interval while waiting (default 25 ms, grows to 250 ms) */
  pollMs?: number;
}

const inProcess = new Map<string, Promise<unknown>>();

/** Returns the holder's description when the lock is held by a live process, or null after removing a stale one. */
async function inspect(path: string): Promise<string | null> {
  const content = await readFile(path, 'utf8').catch(() => null);
  if (content === null) return null; // vanished meanwhile: try again
  const [pidText, host] = content.split(' ');
  const pid = Number(pidText);
  // An empty file is a holder that crashed between create and write, or one writing right now: stale only if old.
  const emptyAndOld = content === '' && Date.now() - ((await stat(path).catch(() => null))?.mtimeMs ?? Date.now()) > 5000;
  const stale = emptyAndOld || (host === hostname() && Number.isInteger(pid) && pid > 0 && !pidAlive(pid));
  if (stale) {
    await removeStaleLock(path, content);
    return null;
  }
  return content.trim() || 'a process that is starting';
}

/**
 * Removes the lock file at `path` if it still holds `judged` (the content found stale). Breakers are serialized
 * by a second O_EXCL file: without it, two waiters that judged the same stale lock could both unlink — the
 * second one removing the fresh lock the first had just created, and both would hold the lock.
 */
export async function removeStaleLock(path: string, judged: string): Promise<void> {
  const breaker = `${path}.break`;
  try {
    await (await open(breaker, 'wx', 0o644)).close();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // another waiter is breaking it; a breaker that died midway leaves a file older than a few seconds
    const st = await stat(breaker).catch(() => null);
    if (st && Date.now() - st.mtimeMs > 5000) await unlink(breaker).catch(() => undefined);
    return;
  }
  try {
    const again = await readFile(path, 'utf8').catch(() => null);
    if (again === judged) await unlink(path).catch(() => undefined);
  } finally {
    await unlink(breaker).catch(() => undefined);
  }
}

async function acquire(path: string, opts: LockOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let wait = opts.pollMs ?? 25;
  await mkdir(dirname(path), { recursive: true });
  for (;;) {
    try {
      const h = await open(path, 'wx', 0o644);
      try {
        await h.writeFile(`${process.pid} ${hostname()} ${new Date().toISOString()}\n`);
        await h.sync();
      } finally {
        await h.close();
      }
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = await inspect(path);
    if (holder === null) continue;
    if (Date.now() >= deadline) {
      throw new RproxyError('ERR_STATE_LOCKED', `the state is locked by ${holder} (lock file ${path}); waited ${timeoutMs} ms. If no paas-rproxy process is running, remove the file.`);
    }
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 250);
  }
}

/** Runs fn while holding the lock at `path`; the lock is released whatever fn does. */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const prev = inProcess.get(path) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const chained = prev.then(() => mine);
  inProcess.set(path, chained);
  await prev.catch(() => undefined);
  try {
    await acquire(path, opts);
    try {
      return await fn();
    } finally {
      await unlink(path).catch(() => undefined);
    }
  } finally {
    release();
    if (inProcess.get(path) === chained) inProcess.delete(path);
  }
}
