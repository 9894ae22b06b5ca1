import test from 'ava';
import { mkdtemp, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic, writeFilesAtomic, writeIfChanged } from '../../../generator/src/io/atomic.js';

const dir = () => mkdtemp(join(tmpdir(), 'rproxy-atomic-'));

test('writeFileAtomic: replaces by rename (new inode), exact mode whatever the umask, no temp file left', async (t) => {
  const d = await dir();
  const f = join(d, 'x.key');
  await writeFile(f, 'old');
  const ino = (await stat(f)).ino;
  const umask = process.umask(0o077);
  try {
    await writeFileAtomic(f, 'new', { mode: 0o600 });
    await writeFileAtomic(join(d, 'y.yml'), ['a', 'b'.repeat(2 << 20), 'c'], { mode: 0o644 });
  } finally {
    process.umask(umask);
  }
  t.is(await readFile(f, 'utf8'), 'new');
  t.not((await stat(f)).ino, ino);
  t.is((await stat(f)).mode & 0o777, 0o600);
  t.is((await stat(join(d, 'y.yml'))).mode & 0o777, 0o644);
  t.is(await readFile(join(d, 'y.yml'), 'utf8'), 'a' + 'b'.repeat(2 << 20) + 'c', 'chunks are written in order, never joined');
  t.deepEqual((await readdir(d)).sort(), ['x.key', 'y.yml']);
});

test('writeFileAtomic: a target name of 255 bytes (a TLS file of a 251-character alias) is written: the temp name stays shorter', async (t) => {
  const d = await dir();
  const name = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(55)}.org.key`;
  t.is(name.length, 255);
  await writeFileAtomic(join(d, name), 'k', { mode: 0o600 });
  t.is(await readFile(join(d, name), 'utf8'), 'k');
  t.deepEqual(await readdir(d), [name]);
});

test('writeFileAtomic: a failed rename leaves the target as it was and removes the temp file', async (t) => {
  const d = await dir();
  const target = join(d, 'is-a-dir');
  await mkdir(target);
  await writeFile(join(target, 'keep'), 'k');
  await t.throwsAsync(writeFileAtomic(target, 'data'));
  t.deepEqual(await readdir(d), ['is-a-dir']);
  t.deepEqual(await readdir(target), ['keep']);
});

test('writeIfChanged: no write (same inode and mtime) when the bytes are equal', async (t) => {
  const d = await dir();
  const f = join(d, 'v.yml');
  t.true(await writeIfChanged(f, 'same'));
  const s1 = await stat(f);
  await new Promise((r) => setTimeout(r, 15));
  t.false(await writeIfChanged(f, 'same'));
  const s2 = await stat(f);
  t.deepEqual([s2.ino, s2.mtimeMs], [s1.ino, s1.mtimeMs]);
  t.true(await writeIfChanged(f, 'other'));
});

test('writeFilesAtomic: many files (several groups) written with their bytes and mode, no temp file left', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rproxy-atomic-'));
  await writeFile(join(dir, 'f7'), 'old');
  const files = Array.from({ length: 300 }, (_, i) => ({ path: join(dir, `f${i}`), data: `content ${i}\n` }));
  await writeFilesAtomic(files, { mode: 0o640 });
  const names = await readdir(dir);
  t.is(names.length, 300);
  t.false(names.some((n) => n.endsWith('.tmp')));
  t.is(await readFile(join(dir, 'f7'), 'utf8'), 'content 7\n');
  t.is(await readFile(join(dir, 'f299'), 'utf8'), 'content 299\n');
  t.is((await stat(join(dir, 'f42'))).mode & 0o777, 0o640);
});

test('writeFilesAtomic: a failed rename in a group removes every temp file; earlier groups stay written', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rproxy-atomic-'));
  await mkdir(join(dir, 'f200', 'blocker'), { recursive: true }); // a non-empty directory cannot be renamed over
  const files = Array.from({ length: 256 }, (_, i) => ({ path: join(dir, `f${i}`), data: `content ${i}\n` }));
  await t.throwsAsync(writeFilesAtomic(files));
  const names = await readdir(dir);
  t.false(names.some((n) => n.endsWith('.tmp')), names.filter((n) => n.endsWith('.tmp')).join(' '));
  t.is(await readFile(join(dir, 'f5'), 'utf8'), 'content 5\n', 'the first group was complete');
  t.true((await stat(join(dir, 'f200'))).isDirectory());
});
