// The message-id log compacts through the one atomic writer: after compaction it holds the newest ids only, no
// temp file is left behind, and a reopened log still knows them.
import test from 'ava';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SeenIds } from '../../../generator/src/listener/seen.js';

test('compaction keeps the newest 20,000 ids, atomically', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'seen-compact-'));
  const s = await SeenIds.open(dir);
  const ids = Array.from({ length: 40_001 }, (_, i) => `ID:${i}`);
  await s.add(ids);
  const lines = readFileSync(path.join(dir, 'applied-messages.log'), 'utf8').split('\n').filter(Boolean);
  t.is(lines.length, 20_000);
  t.is(lines[0], 'ID:20001');
  t.is(lines.at(-1), 'ID:40000');
  t.deepEqual(readdirSync(dir), ['applied-messages.log'], 'no temp file left');
  const again = await SeenIds.open(dir);
  t.true(again.has('ID:40000'));
  t.false(again.has('ID:20000'));
});
