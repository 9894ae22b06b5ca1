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
