/**
 * Crash-safe file writes: temp file in the same directory, fsync, rename over the target, fsync the directory.
 * A reader (Ansible, another process) sees the old file or the new one, never a torn one.
 */
import { open, rename, unlink, mkdir, readFile, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

export interface WriteOptions {
  mode?: number;
  /** skip the directory fsync (the caller fsyncs once after a batch) */
  noDirSync?: boolean;
}

/** `data` may be a list of string chunks: they are written in ~1 MiB batches, never joined into one string. */
export async function writeFileAtomic(path: string, data: string | Buffer | readonly string[], opts: WriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  // the temp name never outgrows NAME_MAX (255 bytes), whatever the target's name (a TLS file named after a long alias)
  const tmp = join(dir, `.${basename(path).slice(0, 200)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const h = await open(tmp, 'wx', opts.mode ?? 0o644);
  try {
    if (typeof data === 'string' || Buffer.isBuffer(data)) await h.writeFile(data);
    else await writeChunks(h, data);
    if (opts.mode !== undefined) await h.chmod(opts.mode); // umask must not widen or narrow it
    await h.sync();
  } catch (e) {
    await h.close();
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await h.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  if (!opts.noDirSync) await fsyncDir(dir);
}

async function writeChunks(h: FileHandle, chunks: readonly string[]): Promise<void> {
  let batch: string[] = [];
  let size = 0;
  for (const c of chunks) {
    batch.push(c);
    size += c.length;
    if (size >= 1 << 20) {
      await h.write(batch.join(''));
      batch = [];
      size = 0;
    }
  }
  if (batch.length > 0) await h.write(batch.join(''));
}

/** Writes only when the content differs; returns whether it wrote. */
export async function writeIfChanged(path: string, data: string, opts: WriteOptions = {}): Promise<boolean> {
  const old = await readFile(path, 'utf8').catch(() => null);
  if (old === data) return false;
  await writeFileAtomic(path, data, opts);
  return true;
}

export async function ensureDir(dir: string, mode = 0o755): Promise<void> {
  await mkdir(dir, { recursive: true, mode });
}

export async function removePath(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}
