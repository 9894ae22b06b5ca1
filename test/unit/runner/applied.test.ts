// Per-host applied digests (runner/applied.ts): base + journal on disk, AppliedCache in memory between passes.
// What is pinned: a few changed apps are one journal line (the base is not rewritten); the disk always reads as a
// state the host really had, or one with fewer apps recorded (a torn line, a crash between the journal's removal
// and the new base); the cache follows another process's writes; a failed write leaves the cache as the disk.
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, statSync, mkdirSync, appendFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AppliedCache, JOURNAL_MAX_BYTES, appliedJournal, readApplied, removeApplied, writeApplied } from '../../../generator/src/runner/applied.js';
import { appliedFile } from '../../../generator/src/io/statedir.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'applied-test-'));
const d = (n: number | string) => String(n).padStart(64, '0');
const many = (n: number, v = 'a'): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`app${i}-ns`, d(`${v}${i}`)]));
const plain = (m: ReadonlyMap<string, string> | null) => (m === null ? null : Object.fromEntries([...m].sort()));

test('a one-app record is one journal line: the base is not rewritten, and base + journal read as the new state', async (t) => {
  const dir = tmp();
  await writeApplied(dir, 'rp1', many(1000));
  const baseBefore = statSync(appliedFile(dir, 'rp1'), { bigint: true });
  const cache = new AppliedCache(dir);
  t.is((await cache.get('rp1'))?.size, 1000);
  await cache.record('rp1', new Map([['app7-ns', d('b7')], ['app8-ns', null], ['new-ns', d('n')]]));
  const baseAfter = statSync(appliedFile(dir, 'rp1'), { bigint: true });
  t.is(baseAfter.ino, baseBefore.ino);
  t.is(baseAfter.mtimeNs, baseBefore.mtimeNs, 'the base is untouched');
  t.deepEqual(readFileSync(appliedJournal(dir, 'rp1'), 'utf8'), `{"app7-ns":"${d('b7')}","app8-ns":null,"new-ns":"${d('n')}"}\n`);
  const want: Record<string, string> = { ...many(1000), 'app7-ns': d('b7'), 'new-ns': d('n') };
  delete want['app8-ns'];
  t.deepEqual(await readApplied(dir, 'rp1'), Object.fromEntries(Object.entries(want).sort()));
  t.deepEqual(plain(await cache.get('rp1')), Object.fromEntries(Object.entries(want).sort()), 'the cache is what the disk says');
  t.deepEqual(plain(await new AppliedCache(dir).get('rp1')), Object.fromEntries(Object.entries(want).sort()), 'and a fresh reader agrees');
});

test('the journal is folded into a new base once it outgrows its cap, and a change as large as the cap goes straight to the base', async (t) => {
  const dir = tmp();
  await writeApplied(dir, 'rp1', many(10));
  const cache = new AppliedCache(dir);
  const lineBytes = JSON.stringify({ 'app1-ns': d('x') }).length + 1;
  const n = Math.floor(JOURNAL_MAX_BYTES / lineBytes);
  for (let i = 0; i < n; i++) await cache.record('rp1', new Map([['app1-ns', d(`x${i % 10}`)]]));
  t.true(existsSync(appliedJournal(dir, 'rp1')));
  await cache.record('rp1', new Map([['app1-ns', d('last')]]));
  t.false(existsSync(appliedJournal(dir, 'rp1')), 'compacted: no journal');
  t.is(JSON.parse(readFileSync(appliedFile(dir, 'rp1'), 'utf8'))['app1-ns'], d('last'));
  const big = new Map(Object.entries(many(5000, 'z')));
  await cache.record('rp1', big);
  t.false(existsSync(appliedJournal(dir, 'rp1')), 'a 5,000-app change rewrites the base instead of a 400 KB line');
  t.is((await readApplied(dir, 'rp1'))?.['app4999-ns'], d('z4999'));
  t.is(Object.keys((await readApplied(dir, 'rp1'))!).length, 5000);
});

test('a line torn by a crash counts as not applied (its apps run again), and the next record compacts', async (t) => {
  const dir = tmp();
  await writeApplied(dir, 'rp1', many(3));
  await new AppliedCache(dir).record('rp1', new Map([['app0-ns', d('b0')]]));
  appendFileSync(appliedJournal(dir, 'rp1'), `{"app1-ns":"${d('b1')}`); // the crash: half a line, no newline
  t.deepEqual(await readApplied(dir, 'rp1'), { ...many(3), 'app0-ns': d('b0') }, 'the torn line is ignored, the lines before it kept');
  const cache = new AppliedCache(dir);
  await cache.record('rp1', new Map([['app2-ns', d('b2')]]));
  t.false(existsSync(appliedJournal(dir, 'rp1')), 'compacted: nothing is appended after a torn line');
  t.deepEqual(await readApplied(dir, 'rp1'), { 'app0-ns': d('b0'), 'app1-ns': d('a1'), 'app2-ns': d('b2') });
});

test('a crash after the journal was removed and before the new base leaves an older state the host had: fewer apps recorded, never more', async (t) => {
  const dir = tmp();
  await writeApplied(dir, 'rp1', many(2));
  await new AppliedCache(dir).record('rp1', new Map([['app0-ns', d('b0')]]));
  rmSync(appliedJournal(dir, 'rp1')); // writeBase's first step, then the crash
  t.deepEqual(await readApplied(dir, 'rp1'), many(2), 'the older base: app0 is pending again');
  // a journal without a base (a base removed by offboarding, a journal left by a crash) is nothing recorded
  const dir2 = tmp();
  mkdirSync(path.dirname(appliedJournal(dir2, 'rp1')), { recursive: true });
  writeFileSync(appliedJournal(dir2, 'rp1'), `{"app0-ns":"${d(1)}"}\n`);
  t.is(await readApplied(dir2, 'rp1'), null);
  t.is(await new AppliedCache(dir2).get('rp1'), null);
});

test('the cache follows writes by other processes (sync, onboarding, offboarding) and forgets a host whose write failed', async (t) => {
  const dir = tmp();
  await writeApplied(dir, 'rp1', many(3));
  const cache = new AppliedCache(dir);
  t.is((await cache.get('rp1'))?.size, 3);
  const other = new AppliedCache(dir); // another process
  await other.record('rp1', new Map([['app0-ns', d('o')]]));
  t.is((await cache.get('rp1'))?.get('app0-ns'), d('o'), 'a journal line of another process');
  await writeApplied(dir, 'rp1', { 'solo-ns': d(1) }); // onboarding's snapshot
  t.deepEqual(plain(await cache.get('rp1')), { 'solo-ns': d(1) });
  await removeApplied(dir, 'rp1');
  t.is(await cache.get('rp1'), null, 'offboarded');
  await cache.replace('rp1', new Map([['a-ns', d(1)]]));
  t.deepEqual(await readApplied(dir, 'rp1'), { 'a-ns': d(1) });
  // the journal's name taken by a directory: the append fails; the cache must not believe it
  mkdirSync(appliedJournal(dir, 'rp1'));
  await t.throwsAsync(cache.record('rp1', new Map([['a-ns', d(2)]])));
  rmSync(appliedJournal(dir, 'rp1'), { recursive: true });
  t.deepEqual(plain(await cache.get('rp1')), { 'a-ns': d(1) }, 'what the disk says, not the failed change');
});

test('the journal is never appended through a symlink planted at its name', async (t) => {
  const { symlinkSync, lstatSync } = await import('node:fs');
  const dir = tmp();
  await writeApplied(dir, 'rp1', many(1));
  const victim = path.join(dir, 'victim');
  writeFileSync(victim, '{}\n'); // reads as a journal line: the append itself must refuse
  symlinkSync(victim, appliedJournal(dir, 'rp1'));
  await t.throwsAsync(new AppliedCache(dir).record('rp1', new Map([['app0-ns', d('b')]])), { code: 'ELOOP' });
  t.is(readFileSync(victim, 'utf8'), '{}\n');
  writeFileSync(victim, 'precious\n'); // does not read as a journal: a torn journal, compacted, the link removed
  await new AppliedCache(dir).record('rp1', new Map([['app0-ns', d('b')]]));
  t.is(readFileSync(victim, 'utf8'), 'precious\n');
  t.false(existsSync(appliedJournal(dir, 'rp1')) && lstatSync(appliedJournal(dir, 'rp1')).isSymbolicLink());
  t.deepEqual(await readApplied(dir, 'rp1'), { 'app0-ns': d('b') });
});

test('writeApplied keeps the old format (sorted JSON object, one key a line) that older readers parse', async (t) => {
  const dir = tmp();
  await writeApplied(dir, 'rp1', { 'b-x': '2', 'a-x': '1' });
  t.is(readFileSync(appliedFile(dir, 'rp1'), 'utf8'), '{\n "a-x": "1",\n "b-x": "2"\n}\n');
  await writeApplied(dir, 'rp2', {});
  t.is(readFileSync(appliedFile(dir, 'rp2'), 'utf8'), '{}\n');
});
