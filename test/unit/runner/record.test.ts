import test from 'ava';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { runId } from '../../../generator/src/runner/record.js';
import { REPO } from '../../fixtures/helpers.js';

test('run ids: "<pid>.<process start>.<n>", increasing in a process, distinct across processes', (t) => {
  const a = runId();
  const b = runId();
  t.regex(a, new RegExp(`^${process.pid}\\.[0-9a-z]+\\.\\d+$`));
  t.is(a.split('.').slice(0, 2).join('.'), b.split('.').slice(0, 2).join('.'));
  t.is(Number(b.split('.')[2]), Number(a.split('.')[2]) + 1);
  // two other processes (the listener, a `sync` CLI): their first ids differ from each other and from ours
  const first = () => execFileSync(process.execPath, ['--input-type=module', '-e', `import { runId } from ${JSON.stringify(path.join(REPO, 'dist/runner/record.js'))}; console.log(runId());`], { encoding: 'utf8' }).trim();
  const ids = new Set([a, b, first(), first()]);
  t.is(ids.size, 4, [...ids].join(' '));
});
