// The rejects log is appended by the listener and by the CLI, which root runs too, inside a state directory the
// listener's user owns: a symlink planted at its name must not make root append attacker-chosen text elsewhere.
import test from 'ava';
import { mkdtemp, readFile, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../../../generator/src/config.js';
import { appendRejects, rejectRecord } from '../../../generator/src/vars/rejects.js';

const record = () => rejectRecord({ code: 'ERR_SPI_INVALID', reason: 'test', logged: '/var/lib/paas-rproxy/evil.so' });

test('appendRejects appends a line, and refuses a symlink at the log\'s name', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rproxy-rejects-'));
  const config = { ...defaultConfig(), state_dir: join(dir, 'state') };
  await appendRejects(config, [record()]);
  t.regex(await readFile(join(dir, 'state', 'rejects.jsonl'), 'utf8'), /evil\.so/);

  const other = { ...defaultConfig(), state_dir: join(dir, 'other') };
  await appendRejects(other, [record()]);
  const victim = join(dir, 'ld.so.preload');
  await writeFile(victim, '');
  await unlink(join(dir, 'other', 'rejects.jsonl'));
  await symlink(victim, join(dir, 'other', 'rejects.jsonl'));
  const e = await t.throwsAsync(appendRejects(other, [record()]));
  t.is((e as NodeJS.ErrnoException).code, 'ELOOP');
  t.is(await readFile(victim, 'utf8'), '', 'nothing written through the symlink');
});

test('the rejects log is capped: past its size it becomes rejects.jsonl.1 (replacing the older one) and a new log starts', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rproxy-rejects-'));
  const config = { ...defaultConfig(), state_dir: join(dir, 'state') };
  const cap = 1000;
  const lineBytes = JSON.stringify(record()).length + 1;
  for (let i = 0; i < 60; i++) await appendRejects(config, [record()], cap);
  const current = await readFile(join(dir, 'state', 'rejects.jsonl'), 'utf8');
  const rotated = await readFile(join(dir, 'state', 'rejects.jsonl.1'), 'utf8');
  t.true(current.length < cap + lineBytes, `current ${current.length}`);
  t.true(rotated.length >= cap && rotated.length < cap + lineBytes, `rotated ${rotated.length}`);
  t.true(current.length + rotated.length < 2 * (cap + lineBytes), 'never more than twice the cap on disk');
  t.regex(current, /evil\.so/, 'the newest records are in the current log');
});

test('a rotation that fails is logged through the store\'s logger, once and actionable, until one succeeds again', async (t) => {
  const { mkdir, rm, stat } = await import('node:fs/promises');
  const { StateStore } = await import('../../../generator/src/vars/store.js');
  const dir = await mkdtemp(join(tmpdir(), 'rproxy-rejects-'));
  const config = { ...defaultConfig(), state_dir: join(dir, 'state'), inventory_dir: join(dir, 'inv') };
  const lines: { event: string; fields: Record<string, unknown> }[] = [];
  const store = await StateStore.open(config, { log: (event, fields) => lines.push({ event, fields }), rejectsMaxBytes: 200 });
  const bad = '---\n:action: :no_such_action\n:app_name: a\n:namespace: b\n';
  t.is((await store.applyText(bad)).rejected.length, 1);
  // the rotated name taken by a directory: rename fails
  await mkdir(join(dir, 'state', 'rejects.jsonl.1', 'x'), { recursive: true });
  for (let i = 0; i < 5; i++) t.is((await store.applyText(bad)).rejected.length, 1, 'the batch is not failed by it');
  t.is(lines.length, 1, 'said once');
  t.is(lines[0]!.event, 'rejects_rotate_error');
  t.regex(String(lines[0]!.fields.message), /rejects\.jsonl is past its cap of 200 bytes and was not rotated to .*rejects\.jsonl\.1 .*keeps growing.*regular file/);
  t.true((await stat(join(dir, 'state', 'rejects.jsonl'))).size > 200, 'past the cap: the gap the log line reports');
  await rm(join(dir, 'state', 'rejects.jsonl.1'), { recursive: true });
  await store.applyText(bad);
  t.true((await stat(join(dir, 'state', 'rejects.jsonl.1'))).isFile(), 'rotated once the cause is gone');
  await rm(join(dir, 'state', 'rejects.jsonl.1'));
  await mkdir(join(dir, 'state', 'rejects.jsonl.1', 'x'), { recursive: true });
  for (let i = 0; i < 5; i++) await store.applyText(bad);
  t.is(lines.length, 2, 'a new failure after a success is said again');
});
