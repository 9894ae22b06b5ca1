// The runner edge against a fake ansible-playbook (a script printing the default callback's output and writing the
// results callback's JSON lines):
// exact commands, per-host applied digests, coalescing, per-host retry with backoff, no overlapping runs.
import test from 'ava';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { syncPass, Runner, type RunnerSettings, type RunnerPorts } from '../../../generator/src/runner/runner.js';
import { AppliedCache, appliedJournal, readApplied, writeApplied } from '../../../generator/src/runner/applied.js';
import { appliedFile } from '../../../generator/src/io/statedir.js';
import { readHold, writeHold, holdPlan, staleHosts } from '../../../generator/src/runner/vrrphold.js';
import { FakeClock } from '../../fixtures/clock.js';

const FAKE = `#!/usr/bin/env bash
# fake ansible-playbook: --limit h1,h2 ; a host is unreachable while $DIR/down-<host> exists
dir="$(dirname "$0")"
limit="" ; prev=""
for a in "$@"; do [ "$prev" = "--limit" ] && limit="$a"; prev="$a"; done
start=$(date +%s%N)
printf '%s\\n' "$*" >> "$dir/calls.log"
sleep "\${FAKE_SLEEP:-0}"
echo; echo "PLAY [proxies] *****"; echo; echo "TASK [nginx_rproxy : Apply application routes] *****"
rc=0
IFS=, read -ra hosts <<< "$limit"
for h in "\${hosts[@]}"; do
  if [ -e "$dir/down-$h" ]; then echo "fatal: [$h]: UNREACHABLE! => {\\"changed\\": false, \\"msg\\": \\"ssh: connect to host $h port 22: Connection refused\\", \\"unreachable\\": true}"; rc=4
  else echo "changed: [$h]"; fi
done
echo; echo "PLAY RECAP *****"
# the results callback's JSON lines (ansible/callback_plugins/rproxy_results.py), which the runner reads
recap=""
for h in "\${hosts[@]}"; do
  if [ -e "$dir/down-$h" ]; then echo "$h : ok=0 changed=0 unreachable=1 failed=0 skipped=0 rescued=0 ignored=0"
    echo "{\\"event\\": \\"task\\", \\"host\\": \\"$h\\", \\"task\\": \\"nginx_rproxy : Apply application routes\\", \\"status\\": \\"unreachable\\", \\"error\\": \\"ssh: connect to host $h port 22: Connection refused\\"}" >> "$RPROXY_RESULTS_FILE"
    recap="$recap\\"$h\\": {\\"ok\\": 0, \\"changed\\": 0, \\"unreachable\\": 1, \\"failures\\": 0},"
  else echo "$h : ok=1 changed=1 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"
    recap="$recap\\"$h\\": {\\"ok\\": 1, \\"changed\\": 1, \\"unreachable\\": 0, \\"failures\\": 0},"
  fi
done
echo "{\\"event\\": \\"recap\\", \\"hosts\\": {\${recap%,}}}" >> "$RPROXY_RESULTS_FILE"
echo "$start $(date +%s%N)" >> "$dir/spans.log"
exit $rc
`;

function setup(): { dir: string; s: RunnerSettings; ports: RunnerPorts & { current: Record<string, string> }; calls: () => string[] } {
  const dir = mkdtempSync(path.join(tmpdir(), 'runner-test-'));
  writeFileSync(path.join(dir, 'ansible-playbook'), FAKE);
  chmodSync(path.join(dir, 'ansible-playbook'), 0o755);
  const s: RunnerSettings = {
    stateDir: path.join(dir, 'state'),
    playbook: { command: path.join(dir, 'ansible-playbook'), playbook: path.join(dir, 'site.yml'), inventoryDir: path.join(dir, 'inv'), stateDir: path.join(dir, 'state'), extraArgs: [] },
    quietMs: 30, maxWaitMs: 150, burstQuietMs: 0, retryInitialMs: 100, retryMaxMs: 400, reconcileIntervalS: 0, lockTimeoutMs: 10000,
  };
  const current: Record<string, string> = { 'a-x': '1', 'b-x': '1' };
  const ports = { current, digests: async () => ({ ...current }), proxies: async () => ['rp1', 'rp2'] };
  const calls = () => (existsSync(path.join(dir, 'calls.log')) ? readFileSync(path.join(dir, 'calls.log'), 'utf8').trim().split('\n') : []);
  return { dir, s, ports, calls };
}
const noLog = () => undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(fn: () => boolean | Promise<boolean>, ms = 30000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await fn()) return true; await sleep(20); }
  return false;
}
/**
 * `until` for the Runner's timers on a FakeClock: the clock moves by `stepMs` between checks, the playbook runs
 * (real processes, real files) get real time to finish.
 */
async function untilAdvancing(clock: FakeClock, fn: () => boolean | Promise<boolean>, stepMs = 50, ms = 30000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await fn()) return true; await clock.advance(stepMs); await sleep(20); }
  return false;
}

test('sync pass: unknown hosts get a full run, then only what changed, vanished apps included', async (t) => {
  const { s, ports, calls, dir } = setup();
  const r1 = await syncPass(s, ports, noLog, { trigger: 't' });
  t.true(r1.ok);
  t.is(calls().length, 1);
  t.is(calls()[0], `-i ${dir}/inv ${dir}/site.yml --tags nginx_rproxy_routes --limit rp1,rp2 -e {"rproxy_state_dir":"${dir}/state"}`);
  t.deepEqual(await readApplied(s.stateDir, 'rp1'), { 'a-x': '1', 'b-x': '1' });
  const r2 = await syncPass(s, ports, noLog, { trigger: 't' });
  t.is(r2.runs.length, 0, 'nothing pending: no run');
  ports.current['a-x'] = '2';
  delete ports.current['b-x'];
  const r3 = await syncPass(s, ports, noLog, { trigger: 't' });
  t.is(r3.runs.length, 1);
  t.is(calls()[1], `-i ${dir}/inv ${dir}/site.yml --tags nginx_rproxy_routes --limit rp1,rp2 -e {"nginx_rproxy_sync_apps":["a-x","b-x"]} -e {"rproxy_state_dir":"${dir}/state"}`);
  t.deepEqual(await readApplied(s.stateDir, 'rp2'), { 'a-x': '2' });
});

test('sync pass: an unreachable host is reported with host and task; the other records its digests', async (t) => {
  const { s, ports, dir } = setup();
  writeFileSync(path.join(dir, 'down-rp2'), '');
  const r = await syncPass(s, ports, noLog, { trigger: 't' });
  t.false(r.ok);
  t.deepEqual(Object.keys(r.lagging), ['rp2']);
  t.regex(r.runs[0]!.error!, /rp2: unreachable in task "nginx_rproxy : Apply application routes": ssh: connect to host rp2 port 22: Connection refused/);
  t.truthy(await readApplied(s.stateDir, 'rp1'));
  t.is(await readApplied(s.stateDir, 'rp2'), null);
});

test('VRRP hold: a proxy a pass leaves lagging is held back on the others, and the hold is lifted once it caught up', async (t) => {
  const { s, ports, calls, dir } = setup();
  await writeApplied(s.stateDir, 'rp1', { ...ports.current });
  await writeApplied(s.stateDir, 'rp2', { ...ports.current });
  const hold = (v: boolean, hosts: string) => `-i ${dir}/inv ${dir}/site.yml --tags keepalived_vrrp_hold --limit ${hosts} -e {"keepalived_vrrp_hold":${v}}`;
  writeFileSync(path.join(dir, 'down-rp2'), '');
  ports.current['c-x'] = '1';
  const r1 = await syncPass(s, ports, noLog, { trigger: 't' });
  t.deepEqual(Object.keys(r1.lagging), ['rp2']);
  t.is(calls().at(-1), hold(true, 'rp1'), 'the up-to-date proxy outranks the stale one');
  t.deepEqual((await readHold(s.stateDir))?.written, { rp1: true });
  t.is(r1.runs.at(-1)?.kind, 'vrrp');
  const n = calls().length;
  await syncPass(s, ports, noLog, { trigger: 't' });
  t.is(calls().length, n + 1, 'a retry writes no hold twice (one routes run only)');
  rmSync(path.join(dir, 'down-rp2'));
  const r3 = await syncPass(s, ports, noLog, { trigger: 'retry' });
  t.true(r3.ok);
  t.is(calls().at(-1), hold(false, 'rp1'), 'lifted after the catch-up run');
  t.deepEqual((await readHold(s.stateDir))?.written, { rp1: false });
  const m = calls().length;
  ports.current['d-x'] = '1';
  await syncPass(s, ports, noLog, { trigger: 't' });
  t.is(calls().length, m + 1, 'a change every proxy got holds nothing');
});

test('VRRP hold: survives a restart (the record is on disk) and is rewritten everywhere when the record is unreadable', async (t) => {
  const { s, ports, calls, dir } = setup();
  await writeApplied(s.stateDir, 'rp1', { ...ports.current });
  await writeApplied(s.stateDir, 'rp2', { ...ports.current });
  await writeHold(s.stateDir, { schema: 1, written: { rp1: true } }); // a listener that died while rp2 was stale
  const r = await syncPass(s, ports, noLog, { trigger: 'startup' });
  t.true(r.ok);
  t.regex(calls().at(-1)!, /--tags keepalived_vrrp_hold --limit rp1 -e \{"keepalived_vrrp_hold":false\}/);
  writeFileSync(path.join(s.stateDir, 'vrrp-hold.json'), '{not json');
  await syncPass(s, ports, noLog, { trigger: 't' });
  t.regex(calls().at(-1)!, /--limit rp1,rp2 -e \{"keepalived_vrrp_hold":false\}/);
  t.deepEqual((await readHold(s.stateDir))?.written, { rp1: false, rp2: false });
  void dir;
});

test('VRRP hold, pure: stale = lagging and still lacking apps; the plan never targets a stale proxy', (t) => {
  const applied = new Map<string, Record<string, string> | null>([['rp1', { a: '1' }], ['rp2', { a: '0' }], ['rp3', null]]);
  t.deepEqual(staleHosts(['rp1', 'rp2', 'rp3'], { a: '1' }, applied), ['rp2', 'rp3'], 'rp1 was caught up by another runner meanwhile');
  t.deepEqual(holdPlan(['rp1', 'rp2', 'rp3'], ['rp2'], {}), { hold: true, hosts: ['rp1', 'rp3'] });
  t.deepEqual(holdPlan(['rp1', 'rp2', 'rp3'], ['rp2'], { rp1: true }), { hold: true, hosts: ['rp3'] });
  t.deepEqual(holdPlan(['rp1', 'rp2'], [], { rp1: true, rp2: false }), { hold: false, hosts: ['rp1'] });
  t.deepEqual(holdPlan(['rp1', 'rp2'], [], {}), { hold: false, hosts: [] });
  t.deepEqual(holdPlan(['rp1', 'rp2'], [], null), { hold: false, hosts: ['rp1', 'rp2'] }, 'unknown record: write everyone');
});

test('runner: a burst is coalesced into one run', async (t) => {
  const { s, ports, calls } = setup();
  await writeApplied(s.stateDir, 'rp1', { ...ports.current });
  await writeApplied(s.stateDir, 'rp2', { ...ports.current });
  const clock = new FakeClock();
  const runner = new Runner({ ...s, quietMs: 300, maxWaitMs: 2000 }, ports, noLog, {}, clock);
  for (let i = 0; i < 10; i++) { ports.current[`n${i}-x`] = '1'; runner.notify(); await clock.advance(5); }
  t.is(calls().length, 0, 'nothing runs within the quiet period');
  await clock.advance(300);
  t.true(await until(() => calls().length >= 1));
  t.true(await until(() => !runner.busy));
  await clock.advance(600);
  t.true(await until(() => !runner.busy));
  t.is(calls().length, 1, 'one run for the burst');
  t.regex(calls()[0]!, /"n0-x".*"n9-x"/);
  await runner.stop({ abandon: false });
});

test('runner, burst_quiet_ms: a lone change runs at once; changes during that run wait for a pause of the burst, then share one run', async (t) => {
  const { s, ports, calls } = setup();
  await writeApplied(s.stateDir, 'rp1', { ...ports.current });
  await writeApplied(s.stateDir, 'rp2', { ...ports.current });
  const clock = new FakeClock();
  const runner = new Runner({ ...s, quietMs: 0, maxWaitMs: 1000, burstQuietMs: 200 }, ports, noLog, {}, clock);
  process.env.FAKE_SLEEP = '0.4';
  try {
    ports.current['first-x'] = '1';
    runner.notify();
    await clock.advance(0); // (a fake clock's timers fire when it moves; a due time of now is "at once")
    t.true(await until(() => calls().length === 1), 'the lone change started a run at once');
    for (let i = 0; i < 3; i++) { ports.current[`b${i}-x`] = '1'; runner.notify(); } // during that run
    t.true(await until(() => !runner.busy));
    const settle = () => new Promise((r) => setTimeout(r, 500)); // (real time: a run that started would have logged)
    await clock.advance(150);
    await settle();
    t.is(calls().length, 1, 'no run 150 ms into the pause');
    ports.current['b3-x'] = '1'; runner.notify(); // the burst goes on: the pause starts again
    await clock.advance(150);
    await settle();
    t.is(calls().length, 1, 'no run while the burst has not paused for 200 ms');
    await clock.advance(60);
    t.true(await until(() => calls().length === 2), 'a run once it paused');
    t.true(await until(() => !runner.busy));
    t.regex(calls()[1]!, /"b0-x".*"b3-x"/, 'the burst in one run');
    t.is(calls().length, 2);
  } finally {
    delete process.env.FAKE_SLEEP;
    await runner.stop({ abandon: false });
  }
});

test('runner: an unreachable host never blocks the other and catches up by itself', async (t) => {
  const { s, ports, calls, dir } = setup();
  await writeApplied(s.stateDir, 'rp1', { ...ports.current });
  await writeApplied(s.stateDir, 'rp2', { ...ports.current });
  writeFileSync(path.join(dir, 'down-rp2'), '');
  const clock = new FakeClock();
  const runner = new Runner(s, { ...ports, digests: async () => ({ ...ports.current }) }, noLog, {}, clock);
  ports.current['c-x'] = '1';
  runner.notify();
  t.true(await untilAdvancing(clock, async () => (await readApplied(s.stateDir, 'rp1'))?.['c-x'] === '1'), 'rp1 updated');
  t.true(await untilAdvancing(clock, () => calls().some((c) => / --limit rp2 /.test(c))), 'rp2 retried on its own');
  // another change while rp2 is in backoff: rp1 gets it without waiting for rp2
  ports.current['d-x'] = '1';
  runner.notify();
  t.true(await untilAdvancing(clock, async () => (await readApplied(s.stateDir, 'rp1'))?.['d-x'] === '1'), 'rp1 updated again');
  rmSync(path.join(dir, 'down-rp2'));
  t.true(await untilAdvancing(clock, async () => (await readApplied(s.stateDir, 'rp2'))?.['d-x'] === '1'), 'rp2 caught up without a notify');
  // the pass ends after the VRRP hold step (a run of its own) has lifted rp2's hold
  t.true(await untilAdvancing(clock, () => Object.keys(runner.backoffState()).length === 0), JSON.stringify(runner.backoffState()));
  await runner.stop({ abandon: false });
});

test('playbook runs never overlap, across callers', async (t) => {
  const { s, ports, dir } = setup();
  process.env.FAKE_SLEEP = '0.3';
  try {
    const s2 = { ...s };
    const [a, b] = await Promise.all([
      syncPass(s, ports, noLog, { trigger: 'a', full: true }),
      syncPass(s2, ports, noLog, { trigger: 'b', full: true }),
    ]);
    t.true(a.ok && b.ok);
    const spans = readFileSync(path.join(dir, 'spans.log'), 'utf8').trim().split('\n').map((l) => l.split(' ').map(Number) as [number, number]).sort((x, y) => x[0] - y[0]);
    t.is(spans.length, 2);
    t.true(spans[1]![0] >= spans[0]![1], 'the second run started after the first ended');
  } finally { delete process.env.FAKE_SLEEP; }
});

test('two processes syncing the same change run it once (the plan is made under the playbook lock)', async (t) => {
  const { s, ports, calls } = setup();
  await writeApplied(s.stateDir, 'rp1', { ...ports.current });
  await writeApplied(s.stateDir, 'rp2', { ...ports.current });
  ports.current['n-x'] = '1';
  process.env.FAKE_SLEEP = '0.3';
  try {
    // two callers with their own settings objects (as the listener and `paas-rproxy sync` are)
    const [a, b] = await Promise.all([syncPass({ ...s }, ports, noLog, { trigger: 'a' }), syncPass({ ...s }, ports, noLog, { trigger: 'b' })]);
    t.true(a.ok && b.ok);
    t.is(calls().filter((c) => c.includes('nginx_rproxy_routes')).length, 1, calls().join('\n'));
    t.is(a.runs.length + b.runs.length, 1);
  } finally { delete process.env.FAKE_SLEEP; }
});

test('runner: the periodic reconcile runs a full routes run on every proxy even when nothing is pending', async (t) => {
  const { s, ports, calls, dir } = setup();
  await writeApplied(s.stateDir, 'rp1', { ...ports.current });
  await writeApplied(s.stateDir, 'rp2', { ...ports.current });
  const clock = new FakeClock();
  const runner = new Runner({ ...s, reconcileIntervalS: 0.3 }, ports, noLog, {}, clock);
  runner.start();
  await clock.advance(30); // the startup pass: nothing pending, no run
  t.true(await until(() => !runner.busy));
  t.is(calls().length, 0);
  t.true(await untilAdvancing(clock, () => calls().length >= 1), 'a reconcile run happened');
  // full run: no nginx_rproxy_sync_apps, so every app is applied and stale files are removed
  t.is(calls()[0], `-i ${dir}/inv ${dir}/site.yml --tags nginx_rproxy_routes --limit rp1,rp2 -e {"rproxy_state_dir":"${dir}/state"}`);
  await runner.stop({ abandon: false });
});

test('runPlaybook runs next to the playbook (its ansible.cfg) whatever the arguments before it (a second -i)', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'runner-cwd-'));
  const fake = path.join(dir, 'ansible-playbook');
  writeFileSync(fake, '#!/usr/bin/env bash\npwd > "$(dirname "$0")/cwd"\necho "$ANSIBLE_CONFIG" > "$(dirname "$0")/cfg"\n');
  chmodSync(fake, 0o755);
  const playbook = path.join(dir, 'pb', 'site.yml');
  const { runPlaybook } = await import('../../../generator/src/runner/spawn.js');
  const cmd = { argv: [fake, '-i', '/inv', '-i', '/overlay.yml', playbook, '--limit', 'rp4'], display: '', kind: 'routes-full' as const, playbook, hosts: ['rp4'], apps: null };
  const { mkdirSync } = await import('node:fs');
  mkdirSync(path.dirname(playbook));
  const prev = process.env.ANSIBLE_CONFIG;
  delete process.env.ANSIBLE_CONFIG;
  try {
    await runPlaybook(cmd, { lockFile: path.join(dir, 'playbook.lock'), lockTimeoutMs: 5000 });
  } finally { if (prev !== undefined) process.env.ANSIBLE_CONFIG = prev; }
  t.is(readFileSync(path.join(dir, 'cwd'), 'utf8').trim(), path.join(dir, 'pb'));
  t.is(readFileSync(path.join(dir, 'cfg'), 'utf8').trim(), path.join(dir, 'pb', 'ansible.cfg'));
});

test('sync pass over a live view: what is recorded is the snapshot the plan was made from; a change during the run stays pending', async (t) => {
  const { s, ports, calls } = setup();
  const live = new Map<string, string>([['a-x', '1'], ['b-x', '1']]);
  const viewPorts: RunnerPorts = { ...ports, view: async () => live };
  const applied = new AppliedCache(s.stateDir);
  t.true((await syncPass(s, viewPorts, noLog, { trigger: 't', applied })).ok);
  live.set('a-x', '2');
  // the store commits while the run is in progress (after the plan)
  const r = await syncPass(s, viewPorts, noLog, { trigger: 't', applied, hooks: { onPlan: () => { live.set('a-x', '3'); live.set('c-x', '1'); live.delete('b-x'); } } });
  t.true(r.ok);
  t.deepEqual(r.plan.apps, ['a-x']);
  for (const h of ['rp1', 'rp2']) t.deepEqual(await readApplied(s.stateDir, h), { 'a-x': '2', 'b-x': '1' }, `${h}: the snapshot, not what came during the run`);
  const next = await syncPass(s, viewPorts, noLog, { trigger: 't', applied });
  t.deepEqual(next.plan.apps, ['a-x', 'b-x', 'c-x'], 'the next pass runs what came during the run');
  t.regex(calls().at(-1)!, /"nginx_rproxy_sync_apps":\["a-x","b-x","c-x"\]/);
  for (const h of ['rp1', 'rp2']) t.deepEqual(await readApplied(s.stateDir, h), { 'a-x': '3', 'c-x': '1' });
});

test('sync pass: a targeted run records one journal line of its apps per host; the base (every app) is not rewritten', async (t) => {
  const { s, ports } = setup();
  for (let i = 0; i < 500; i++) ports.current[`app${i}-x`] = '1';
  const applied = new AppliedCache(s.stateDir);
  t.true((await syncPass(s, ports, noLog, { trigger: 't', applied })).ok);
  const base = readFileSync(appliedFile(s.stateDir, 'rp1'), 'utf8');
  ports.current['app7-x'] = '2';
  delete ports.current['app8-x'];
  t.true((await syncPass(s, ports, noLog, { trigger: 't', applied })).ok);
  t.is(readFileSync(appliedFile(s.stateDir, 'rp1'), 'utf8'), base);
  t.is(readFileSync(appliedJournal(s.stateDir, 'rp1'), 'utf8'), '{"app7-x":"2","app8-x":null}\n');
  t.deepEqual(await readApplied(s.stateDir, 'rp2'), ports.current);
});

test('sync pass: a cache kept between passes sees what another process recorded meanwhile', async (t) => {
  const { s, ports } = setup();
  const applied = new AppliedCache(s.stateDir);
  t.true((await syncPass(s, ports, noLog, { trigger: 't', applied })).ok);
  await writeApplied(s.stateDir, 'rp2', { 'a-x': '1' }); // e.g. an older record put back by another process
  const r = await syncPass(s, ports, noLog, { trigger: 't', applied });
  t.deepEqual(r.plan.targetedHosts, ['rp2']);
  t.deepEqual(r.plan.apps, ['b-x']);
  t.deepEqual(await readApplied(s.stateDir, 'rp2'), { 'a-x': '1', 'b-x': '1' });
});
