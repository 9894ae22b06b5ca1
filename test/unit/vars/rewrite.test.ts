// An app file whose derived parts were rendered by an older generator (or for another cloud domain) is
// rewritten from the same state when a store opens it; a current file is left alone, byte for byte.
import test from 'ava';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { StateStore } from '../../../generator/src/vars/store.js';
import { appFilePath } from '../../../generator/src/vars/paths.js';
import { canonState, samplesDocs, tmpConfig } from '../../fixtures/helpers.js';

test('opening a store rewrites stale derived fields, keeps the state, and leaves a current file untouched', async (t) => {
  const cfg = await tmpConfig();
  const first = await StateStore.open(cfg);
  await first.applyText(samplesDocs().slice(0, 11).join(''));
  const file = appFilePath(cfg, 'shop-acme');
  const current = await readFile(file, 'utf8');

  const before = await stat(file, { bigint: true });
  await StateStore.open(cfg);
  const after = await stat(file, { bigint: true });
  t.is(after.ino, before.ino, 'a current file is not rewritten');
  t.is(after.mtimeNs, before.mtimeNs);

  // what an older generator wrote: the same state with another derived route block
  const stale = current.replace('"map_value": {"__ansible_unsafe": "ws.shop-acme"}', '"map_value": {"__ansible_unsafe": "shop-acme"}');
  t.not(stale, current, 'the fixture really changes the derived part');
  await writeFile(file, stale);
  const reopened = await StateStore.open(cfg);
  t.is(await readFile(file, 'utf8'), current, 'rewritten to what this generator renders');
  t.deepEqual(canonState(reopened.state), canonState(first.state), 'the state itself is unchanged');
});
