import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readResults, hostOutcomes } from '../../../generator/src/runner/recap.js';
import { failureMessage, type SpawnResult } from '../../../generator/src/runner/spawn.js';
import { backoffDelay } from '../../../generator/src/runner/backoff.js';
import { idle, trigger, dueAt, take, ended, simulate } from '../../../generator/src/runner/coalescer.js';
import { hasPending, pendingApps, planRun, snapshotOf } from '../../../generator/src/runner/pending.js';
import { targetedRoutesCommand, fullRoutesCommand, shellQuote, holdCommand } from '../../../generator/src/runner/command.js';
import { stringify } from 'yaml';
import { groupHosts } from '../../../generator/src/runner/inventory.js';
import { runnerSettings } from '../../../generator/src/runner/ports.js';
import { defaultConfig } from '../../../generator/src/config.js';
import path from 'node:path';

// Real output of ansible/callback_plugins/rproxy_results.py, captured from real ansible-playbook runs by
// fixtures/capture.sh (rp1 changed, rp2 unreachable over SSH, rp3 failed; a handler's failing loop; a parse error).
const FIX = (name: string): string => readFileSync(fileURLToPath(new URL(`fixtures/results-${name}.jsonl`, import.meta.url)), 'utf8');

test('recap: per-host counts and failing tasks', (t) => {
  const p = readResults(FIX('routes'));
  t.deepEqual(p.recap.get('rp1'), { ok: 1, changed: 1, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0 });
  t.is(p.recap.get('rp2')?.unreachable, 1);
  t.is(p.recap.get('rp3')?.failed, 1);
  t.is(p.failures.length, 2);
  t.deepEqual(p.failures[0], {
    host: 'rp2', task: 'nginx_rproxy : Apply the routes of the selected applications', kind: 'unreachable',
    message: 'Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 1: Connection refused',
  });
  t.is(p.failures[1]?.host, 'rp3');
  t.is(p.failures[1]?.message, 'nginx -t failed: unknown directive "x"');
  const o = hostOutcomes(p, ['rp1', 'rp2', 'rp3', 'rp4']);
  t.deepEqual([...o.entries()], [['rp1', 'ok'], ['rp2', 'unreachable'], ['rp3', 'failed'], ['rp4', 'missing']]);
});

test('recap: each host\'s slowest task and its duration, from the callback\'s duration_ms; a bad duration counts as 0', (t) => {
  const p = readResults(FIX('routes'));
  for (const h of ['rp1', 'rp2', 'rp3']) {
    const s = p.slowest.get(h);
    t.is(s?.task, 'nginx_rproxy : Apply the routes of the selected applications', h);
    t.true(Number.isSafeInteger(s?.ms) && (s?.ms ?? -1) >= 0, h);
  }
  const line = (task: string, ms: unknown) => JSON.stringify({ event: 'task', host: 'rp1', task, status: 'ok', duration_ms: ms });
  const q = readResults([line('a', 5), line('b', 40), line('c', 7), line('d', -3), line('e', '90'), line('f', 1e300)].join('\n'));
  t.deepEqual(q.slowest.get('rp1'), { task: 'b', ms: 40 });
});

test('recap: empty or aborted output gives no hosts', (t) => {
  const p = readResults(FIX('aborted'));
  t.is(p.recap.size, 0);
  t.deepEqual([...hostOutcomes(p, ['a']).values()], ['missing']);
});

test('recap: failed loop item and handler task', (t) => {
  const p = readResults(FIX('handler'));
  t.deepEqual(p.failures, [{ host: 'rp1', task: 'nginx_rproxy : Reload nginx', kind: 'failed', message: 'boom' }]);
});

test('recap: a run cut off mid-line keeps the lines before it; ignored failures are not failures; hostile lines are skipped', (t) => {
  const lines = FIX('routes').trim().split('\n');
  const cut = readResults(`${lines.slice(0, -1).join('\n')}\n${(lines.at(-1) ?? '').slice(0, 40)}`);
  t.is(cut.recap.size, 0, 'no recap line: every host is missing');
  t.is(cut.failures.length, 2);
  const ignored = JSON.stringify({ event: 'task', host: 'rp1', task: 'x', status: 'ignored', error: 'e' });
  const junk = ['[]', 'null', '{"event":"recap","hosts":{"rp9":null,"rp8":{"ok":-1,"failures":"2"}}}', '{not json', 'x'.repeat(100000)];
  const p = readResults([ignored, ...junk].join('\n'));
  t.deepEqual(p.failures, []);
  t.deepEqual(p.recap.get('rp8'), { ok: 0, changed: 0, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0 });
  t.false(p.recap.has('rp9'));
});

test('failureMessage: host, task and message from the results; a clean exit without any result names the callback', (t) => {
  const result = (exitCode: number, jsonLines: string, hosts: string[]): SpawnResult => {
    const parsed = readResults(jsonLines);
    return {
      command: { argv: [], display: 'ansible-playbook site.yml', kind: 'routes', playbook: 'site.yml', hosts, apps: null },
      exitCode, signal: null, durationMs: 1, startedAt: '', output: 'PLAY RECAP', parsed, outcomes: hostOutcomes(parsed, hosts), aborted: false, warm: false,
    };
  };
  t.is(failureMessage(result(4, FIX('routes'), ['rp2'])), 'playbook run failed (ansible-playbook site.yml): rp2: unreachable in task '
    + '"nginx_rproxy : Apply the routes of the selected applications": Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 1: Connection refused');
  t.regex(failureMessage(result(0, '', ['rp1'])), /rp1: no result .*exited 0 but wrote no results: enable the rproxy_results callback/);
  t.notRegex(failureMessage(result(4, '', ['rp1'])), /rproxy_results/, 'a failed run without results is a run that stopped early');
});

test('backoff: doubles, capped, jitter bounded', (t) => {
  t.is(backoffDelay(0, 1000, 60000), 0);
  t.is(backoffDelay(1, 1000, 60000), 1000);
  t.is(backoffDelay(2, 1000, 60000), 2000);
  t.is(backoffDelay(3, 1000, 60000), 4000);
  t.is(backoffDelay(10, 1000, 60000), 60000);
  t.is(backoffDelay(1000, 1000, 60000), 60000);
  t.is(backoffDelay(1, 1000, 60000, () => 0), 900);
  t.is(backoffDelay(1, 1000, 60000, () => 1), 1100);
  t.is(backoffDelay(20, 1000, 60000, () => 1), 60000);
});

test('coalescer: quiet period, bounded max wait', (t) => {
  let s = idle();
  t.is(dueAt(s, 250, 1500), null);
  s = trigger(s, 1000);
  t.is(dueAt(s, 250, 1500), 1250);
  s = trigger(s, 1200);
  t.is(dueAt(s, 250, 1500), 1450);
  // a steady stream every 100 ms would postpone forever; the max wait bounds it
  for (let now = 1300; now <= 3000; now += 100) s = trigger(s, now);
  t.is(dueAt(s, 250, 1500), 2500);
  s = take(s);
  t.is(dueAt(s, 250, 1500), null);
  // max wait shorter than quiet is treated as quiet
  t.is(dueAt(trigger(idle(), 0), 250, 100), 250);
});

test('coalescer, quiet_ms 0 (group commit): an idle system starts at once; changes during a run wait for its end, together', (t) => {
  let s = trigger(idle(), 1000);
  t.is(dueAt(s, 0, 1500), 1000, 'due the moment it arrives');
  s = take(s);
  s = trigger(s, 1100); // arrives during the run
  s = trigger(s, 1900);
  t.is(dueAt(s, 0, 1500, true), null, 'nothing starts while a run is in progress');
  t.is(dueAt(s, 0, 1500, false), 1100, 'at the end of the run: due at once (since the first change it serves)');
  t.is(dueAt(s, 250, 1500, true), null, 'a quiet period never overlaps a run either');
});

test('coalescer: simulated runs (a change on an idle system, a burst, a stream)', (t) => {
  // one change on an idle system: a run starts with it, no wait
  t.deepEqual(simulate([5000], 0, 1500, () => 800), [[5000, 5800, 1]]);
  t.deepEqual(simulate([5000], 250, 1500, () => 800), [[5250, 6050, 1]], 'quiet_ms > 0 keeps its old meaning');
  // 1,000 events over 1 s while a run takes 3.5 s (10,000 apps): 2 runs, the last live 3.5 s after the first run
  const burst = Array.from({ length: 1000 }, (_, i) => 10_000 + i);
  const runs = simulate(burst, 0, 1500, () => 3500);
  t.deepEqual(runs.map((r) => r[2]), [1, 999]);
  t.true((runs.at(-1)![1] - 10_999) <= 5000 + 3500, JSON.stringify(runs));
  t.true(runs.length <= 4);
  // the same burst with a 1 s run: still few runs, every change served
  const r2 = simulate(burst, 0, 1500, () => 1000);
  t.is(r2.reduce((n, r) => n + r[2], 0), 1000);
  t.true(r2.length <= 3, JSON.stringify(r2));
  // a steady stream (every 100 ms for 10 s), runs of 1 s: about one run per second, none overlapping
  const stream = Array.from({ length: 100 }, (_, i) => i * 100);
  const r3 = simulate(stream, 0, 1500, () => 1000);
  t.true(r3.length <= 11 && r3.length >= 9, String(r3.length));
  for (let i = 1; i < r3.length; i++) t.true(r3[i]![0] >= r3[i - 1]![1], 'runs never overlap');
});

test('coalescer, burst_quiet_ms: changes that arrived during a run wait for the burst to pause, at most max_wait_ms after that run', (t) => {
  let s = trigger(idle(), 1000);
  t.is(dueAt(s, 0, 1500, false, 250), 1000, 'an idle system still starts at once');
  s = take(s);
  s = trigger(s, 1100); // arrives during the run, which ends at 1400
  s = ended(s, 1400);
  t.is(dueAt(s, 0, 1500, false, 250), 1350, 'the burst paused before the run ended: due at once');
  s = trigger(s, 1500);
  t.is(dueAt(s, 0, 1500, false, 250), 1750, '250 ms after the last change');
  for (let at = 1600; at <= 3200; at += 100) s = trigger(s, at); // the stream goes on
  t.is(dueAt(s, 0, 1500, false, 250), 2900, 'never later than max_wait_ms after the run the burst began during');
  t.is(dueAt(s, 0, 1500, false, 0), 1100, 'burst_quiet_ms 0: due the moment the run ended');
  t.is(ended(s, 5000).burstAt, 1400, 'the first run of the burst sets the bound');
  t.is(ended(idle(), 5000).burstAt, null, 'a run that ends with nothing waiting starts no burst');
  t.is(take(s).burstAt, null, 'the run that serves them ends it');
});

test('coalescer: fast runs and a 4.5 s burst of 1,000 events: burst_quiet_ms keeps it to 4 runs, live soon after the last', (t) => {
  const burst = Array.from({ length: 1000 }, (_, i) => 10_000 + Math.round(i * 4.5)); // 4.5 s, as bench:scale
  const plain = simulate(burst, 0, 1500, () => 350, 0);
  t.true(plain.length >= 10, `group commit alone: one run per run-duration (${plain.length})`);
  const runs = simulate(burst, 0, 1500, () => 350, 250);
  t.is(runs.reduce((n, r) => n + r[2], 0), 1000, 'every change served');
  t.true(runs.length <= 4, JSON.stringify(runs));
  t.true(runs.at(-1)![1] - burst.at(-1)! <= 250 + 350, `live ${runs.at(-1)![1] - burst.at(-1)!} ms after the last event`);
  for (let i = 1; i < runs.length; i++) t.true(runs[i]![0] >= runs[i - 1]![1], 'runs never overlap');
  // lone changes further apart than a run are never delayed
  t.deepEqual(simulate([0, 1000, 2000], 0, 1500, () => 350, 250).map((r) => r[0]), [0, 1000, 2000]);
});

test('pending: differing digests plus vanished apps', (t) => {
  t.deepEqual(pendingApps({ a: '1', b: '2', c: '3' }, { a: '1', b: 'old', z: '9' }), ['b', 'c', 'z']);
  t.deepEqual(pendingApps({}, {}), []);
  t.deepEqual(pendingApps({ a: '1' }, { a: '1' }), []);
  t.deepEqual(pendingApps(new Map([['a', '1'], ['b', '2']]), new Map([['a', '1'], ['z', '9']])), ['b', 'z'], 'maps (the cache, a live view) alike');
});

test('hasPending: the same answer as pendingApps without listing (same size, one value differs; a swap of apps)', (t) => {
  const cases: [Record<string, string>, Record<string, string>][] = [
    [{ a: '1', b: '2' }, { a: '1', b: '2' }], [{ a: '1', b: '2' }, { a: '1', b: 'x' }], [{ a: '1' }, { b: '1' }],
    [{ a: '1' }, {}], [{}, { a: '1' }], [{}, {}],
  ];
  for (const [c, a] of cases) t.is(hasPending(c, a), pendingApps(c, a).length > 0, JSON.stringify([c, a]));
  t.false(hasPending(new Map([['a', '1']]), { a: '1' }));
});

test('snapshotOf: the planned apps\' digests (null: gone), and the whole snapshot only when a host gets a full run', (t) => {
  const current = new Map([['a', '2'], ['b', '1']]);
  const targeted = planRun(current, new Map([['rp1', new Map([['a', '1'], ['b', '1'], ['gone', '1']])]]));
  const s1 = snapshotOf(current, targeted);
  t.deepEqual([...s1.changes], [['a', '2'], ['gone', null]]);
  t.is(s1.full, null);
  const full = planRun(current, new Map([['rp1', null]]));
  const s2 = snapshotOf(current, full);
  t.deepEqual([...s2.full!].sort(), [['a', '2'], ['b', '1']]);
  current.set('a', '3');
  t.is(s2.full!.get('a'), '2', 'a copy: later commits to a live view do not reach it');
});

test('pending: plan over hosts (union, unknown hosts full, up-to-date hosts left out)', (t) => {
  const plan = planRun({ a: '1', b: '2' }, new Map<string, Record<string, string> | null>([
    ['rp2', { a: '1', b: '2' }], ['rp1', { a: '0', b: '2', gone: 'x' }], ['rp3', null], ['rp4', { a: '1' }],
  ]));
  t.deepEqual(plan.fullHosts, ['rp3']);
  t.deepEqual(plan.targetedHosts, ['rp1', 'rp4']);
  t.deepEqual(plan.apps, ['a', 'b', 'gone']);
  t.deepEqual(plan.perHost.rp2, []);
});

test('command: exact targeted command, as site.yml documents it', (t) => {
  const s = { command: 'ansible-playbook', playbook: '/r/ansible/site.yml', inventoryDir: '/r/inv', stateDir: '/var/lib/x', extraArgs: ['-f', '10'] };
  const c = targetedRoutesCommand(s, ['rp2', 'rp1'], ['shop-acme', 'blog-x', 'shop-acme']);
  t.deepEqual(c.argv, ['ansible-playbook', '-i', '/r/inv', '/r/ansible/site.yml', '--tags', 'nginx_rproxy_routes', '--limit', 'rp1,rp2',
    '-e', '{"nginx_rproxy_sync_apps":["blog-x","shop-acme"]}', '-e', '{"rproxy_state_dir":"/var/lib/x"}', '-f', '10']);
  t.is(c.display, `ansible-playbook -i /r/inv /r/ansible/site.yml --tags nginx_rproxy_routes --limit rp1,rp2 -e '{"nginx_rproxy_sync_apps":["blog-x","shop-acme"]}' -e '{"rproxy_state_dir":"/var/lib/x"}' -f 10`);
  // every run names the state dir the CLI wrote: the playbook and the config can never disagree
  t.deepEqual(fullRoutesCommand(s, ['rp1']).argv.slice(4), ['--tags', 'nginx_rproxy_routes', '--limit', 'rp1', '-e', '{"rproxy_state_dir":"/var/lib/x"}', '-f', '10']);
  t.is(shellQuote(["it's"]), `'it'\\''s'`);
  const h = holdCommand(s, ['rp3', 'rp1'], true);
  t.is(h.display, `ansible-playbook -i /r/inv /r/ansible/site.yml --tags keepalived_vrrp_hold --limit rp1,rp3 -e '{"keepalived_vrrp_hold":true}' -f 10`);
  t.is(h.kind, 'vrrp');
});

test('command: a targeted run uses routes.yml when it is beside site.yml; a full run always site.yml', (t) => {
  const s = { command: 'ansible-playbook', playbook: '/r/ansible/site.yml', routesPlaybook: '/r/ansible/routes.yml', inventoryDir: '/r/inv', stateDir: '/var/lib/x', extraArgs: [] };
  const c = targetedRoutesCommand(s, ['rp1'], ['shop-acme']);
  t.is(c.display, `ansible-playbook -i /r/inv /r/ansible/routes.yml --tags nginx_rproxy_routes --limit rp1 -e '{"nginx_rproxy_sync_apps":["shop-acme"]}' -e '{"rproxy_state_dir":"/var/lib/x"}'`);
  t.is(c.playbook, '/r/ansible/site.yml'); // the run's cwd and ansible.cfg: the same directory
  t.is(fullRoutesCommand(s, ['rp1']).argv[3], '/r/ansible/site.yml');
});

test('inventory: hosts of a group, children included, in order', (t) => {
  const doc = stringify({ all: { children: { proxies: { hosts: { rp1: {}, rp2: {} }, children: { extra: { hosts: { rp3: null } } } }, brokers: { hosts: { b1: {} } } } } });
  t.deepEqual(groupHosts(doc, 'proxies'), ['rp1', 'rp2', 'rp3']);
  t.deepEqual(groupHosts(doc, 'brokers'), ['b1']);
  t.deepEqual(groupHosts(doc, 'nope'), []);
});

test('runnerSettings: routes.yml only for the shipped site.yml; an operator playbook keeps its targeted runs', (t) => {
  const shipped = runnerSettings(defaultConfig()).playbook;
  t.is(shipped.routesPlaybook, path.join(path.dirname(shipped.playbook), 'routes.yml'));
  const custom = runnerSettings({ ...defaultConfig(), ansible: { ...defaultConfig().ansible, playbook: '/srv/ops/site.yml' } }).playbook;
  t.is(custom.routesPlaybook, undefined);
  t.is(targetedRoutesCommand(custom, ['rp1'], ['a-b']).argv[3], '/srv/ops/site.yml');
});
