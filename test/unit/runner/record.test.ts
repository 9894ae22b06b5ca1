import test from 'ava';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { recordRun, runId, toRecord } from '../../../generator/src/runner/record.js';
import { emptyStatus, formatRun } from '../../../generator/src/status/file.js';
import { readResults, hostOutcomes } from '../../../generator/src/runner/recap.js';
import type { SpawnResult } from '../../../generator/src/runner/spawn.js';
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

test('a run record names each host\'s slowest task and its duration, failed hosts too', (t) => {
  const line = (host: string, task: string, ms: number, status = 'ok') => JSON.stringify({ event: 'task', host, task, status, duration_ms: ms, ...(status === 'failed' ? { error: 'boom' } : {}) });
  const recap = JSON.stringify({ event: 'recap', hosts: { rp1: { ok: 2 }, rp2: { ok: 1, failures: 1 } } });
  const parsed = readResults([line('rp1', 'a', 12), line('rp1', 'b', 640), line('rp2', 'a', 700, 'failed'), recap].join('\n'));
  const run: SpawnResult = {
    command: { argv: ['ansible-playbook'], display: 'ansible-playbook', kind: 'routes', playbook: 'p.yml', hosts: ['rp1', 'rp2', 'rp3'], apps: ['x-y'] },
    exitCode: 2, signal: null, durationMs: 1100, startedAt: new Date(0).toISOString(), output: '', parsed,
    outcomes: hostOutcomes(parsed, ['rp1', 'rp2', 'rp3']), aborted: false, warm: true,
  };
  t.deepEqual(toRecord(run, 'event').perHost, [
    { host: 'rp1', outcome: 'ok', slowest_task: 'b', slowest_ms: 640 },
    { host: 'rp2', outcome: 'failed', task: 'a', message: 'boom', slowest_task: 'a', slowest_ms: 700 },
    { host: 'rp3', outcome: 'missing', task: '', message: '' },
  ]);
  // status.json keeps each host's outcome and slowest task; `paas-rproxy status` prints them under the run
  const st = emptyStatus();
  recordRun(st, toRecord(run, 'event'), 'listener');
  t.deepEqual(st.runs[0]!.perHost, [
    { host: 'rp1', outcome: 'ok', slowest_task: 'b', slowest_ms: 640 },
    { host: 'rp2', outcome: 'failed', slowest_task: 'a', slowest_ms: 700 },
    { host: 'rp3', outcome: 'missing' },
  ]);
  const lines = formatRun(st.runs[0]!);
  t.is(lines.at(-1), '  rp1 ok, slowest task "b" 640 ms; rp2 failed, slowest task "a" 700 ms; rp3 missing');
  t.regex(lines[0]!, /^1970-01-01T00:00:00.000Z routes by listener on rp1,rp2,rp3: failed in 1.10 s, 1 app\(s\)$/);
  const { perHost: _p, ...older } = st.runs[0]!; // a status.json written by an earlier version
  t.false(formatRun(older).some((l) => /slowest/.test(l)));
});
