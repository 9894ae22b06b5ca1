import test from 'ava';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { planInventoryChange, checkInventory, applyInventoryPlan } from '../../../generator/src/onboard/watcher.js';
import { OpTracker, readOnboarding, registerOnboardingMetrics } from '../../../generator/src/onboard/records.js';
import { writeFleet, readFleet, fleetProxies } from '../../../generator/src/status/fleet.js';
import { defaultConfig, type Config } from '../../../generator/src/config.js';
import { verifyTargets, judge } from '../../../generator/src/onboard/verify.js';
import { vipsInIpAddr, vipAddresses, plannedMasters } from '../../../generator/src/onboard/vips.js';

const e = (name: string, address: string | null = `10.0.0.${name.replace(/\D/g, '')}`) => ({ name, address });

test('no fleet record yet: adopt the group as it is (never onboard hosts already serving)', (t) => {
  const p = planInventoryChange([e('rp1'), e('rp2')], null, []);
  t.deepEqual(p.actions, [{ kind: 'adopt', proxies: [e('rp1'), e('rp2')] }]);
});

test('a host appended to the group is onboarded; one removed is offboarded; unchanged = nothing', (t) => {
  t.deepEqual(planInventoryChange([e('rp1'), e('rp2')], [e('rp1'), e('rp2')], []).actions, []);
  const grow = planInventoryChange([e('rp1'), e('rp2'), e('rp3')], [e('rp1'), e('rp2')], []);
  t.deepEqual(grow.added, ['rp3']);
  t.deepEqual(grow.actions, [{ kind: 'onboard', host: 'rp3', address: '10.0.0.3' }]);
  const shrink = planInventoryChange([e('rp1')], [e('rp1'), e('rp2')], []);
  t.deepEqual(shrink.actions, [{ kind: 'offboard', host: 'rp2', address: '10.0.0.2' }]);
  const replace = planInventoryChange([e('rp1'), e('rp3')], [e('rp1'), e('rp2')], []);
  t.deepEqual(replace.actions.map((a) => a.kind), ['offboard', 'onboard']);
});

test('same members with other layout inputs → vrrp; no recorded key yet → adopt the key', (t) => {
  t.deepEqual(planInventoryChange([e('rp1')], [e('rp1')], [], [], 0, { current: 'k2', recorded: 'k1' }).actions.map((a) => a.kind), ['vrrp']);
  t.deepEqual(planInventoryChange([e('rp1')], [e('rp1')], [], [], 0, { current: 'k1', recorded: 'k1' }).actions, []);
  t.deepEqual(planInventoryChange([e('rp1')], [e('rp1')], [], [], 0, { current: 'k1', recorded: undefined }).actions, [{ kind: 'adopt', proxies: [e('rp1')], vrrpKey: 'k1' }]);
  // membership changes run their own VRRP run: no separate one
  t.deepEqual(planInventoryChange([e('rp1'), e('rp2')], [e('rp1')], [], [], 0, { current: 'k2', recorded: 'k1' }).actions.map((a) => a.kind), ['onboard']);
});

test('busy hosts (an operation in progress, or a recent automatic failure) are left alone', (t) => {
  const p = planInventoryChange([e('rp1'), e('rp2'), e('rp3')], [e('rp1'), e('rp2')], [{ host: 'rp3', op: 'onboard' }]);
  t.deepEqual(p.actions, []);
  t.deepEqual(p.busy, ['rp3']);
  const now = 1_000_000;
  t.deepEqual(planInventoryChange([e('rp1'), e('rp3')], [e('rp1')], [], [{ host: 'rp3', until: now + 1 }], now).actions, []);
  t.is(planInventoryChange([e('rp1'), e('rp3')], [e('rp1')], [], [{ host: 'rp3', until: now - 1 }], now).actions.length, 1);
});

test('problems: a host without an address, removing the last proxy', (t) => {
  const p = planInventoryChange([e('rp1'), e('rp9', null)], [e('rp1')], []);
  t.deepEqual(p.actions, []);
  t.regex(p.problems[0]!.problem, /set ansible_host/);
  const last = planInventoryChange([], [e('rp1')], []);
  t.deepEqual(last.actions, []);
  t.regex(last.problems[0]!.problem, /last proxy in service/);
});

function tmpConfig(hostsYml: string): Config {
  const dir = mkdtempSync(path.join(tmpdir(), 'onb-watch-'));
  mkdirSync(path.join(dir, 'inv'));
  writeFileSync(path.join(dir, 'inv', 'hosts.yml'), hostsYml);
  return { ...defaultConfig(), inventory_dir: path.join(dir, 'inv'), state_dir: path.join(dir, 'var') };
}

test('checkInventory reads hosts.yml + fleet.json; adopt writes the fleet; fleetProxies hides hosts not onboarded', async (t) => {
  const c = tmpConfig('all:\n  children:\n    proxies:\n      hosts:\n        rp1:\n          ansible_host: 10.0.0.1\n        rp2:\n          ansible_host: 10.0.0.2\n');
  const first = await checkInventory(c);
  t.is(first.actions.length, 1);
  t.like(first.actions[0], { kind: 'adopt', proxies: [e('rp1'), e('rp2')] });
  const out = await applyInventoryPlan(c, first);
  t.true(out[0]!.ok);
  t.deepEqual((await readFleet(c.state_dir))?.proxies, [e('rp1'), e('rp2')]);
  t.deepEqual((await checkInventory(c)).actions, []);
  writeFileSync(path.join(c.inventory_dir, 'hosts.yml'), 'all:\n  children:\n    proxies:\n      hosts:\n        rp1:\n          ansible_host: 10.0.0.1\n        rp2:\n          ansible_host: 10.0.0.2\n        rp3:\n          ansible_host: 10.0.0.3\n');
  t.deepEqual((await checkInventory(c)).actions, [{ kind: 'onboard', host: 'rp3', address: '10.0.0.3' }]);
  t.deepEqual(await fleetProxies(c, ['rp1', 'rp2', 'rp3']), ['rp1', 'rp2']);
  // same members, VIP list changed → a VRRP run
  const fleet = (await readFleet(c.state_dir))!;
  writeFileSync(path.join(c.inventory_dir, 'hosts.yml'), 'all:\n  children:\n    proxies:\n      hosts:\n        rp1:\n          ansible_host: 10.0.0.1\n        rp2:\n          ansible_host: 10.0.0.2\n      vars:\n        keepalived_vrrp_vips: [10.0.0.201]\n');
  const v = await checkInventory(c);
  t.is(v.actions.length, 1);
  t.like(v.actions[0], { kind: 'vrrp' });
  t.not((v.actions[0] as { vrrpKey: string }).vrrpKey, fleet.vrrpKey);
  // group_vars/proxies/*.yml counts, the routing state does not
  mkdirSync(path.join(c.inventory_dir, 'group_vars', 'proxies'), { recursive: true });
  await writeFleet(c.state_dir, fleet.proxies, (v.actions[0] as { vrrpKey: string }).vrrpKey);
  writeFileSync(path.join(c.inventory_dir, 'group_vars', 'proxies', 'rproxy_routes.yml'), 'nginx_rproxy_apps: {}\n');
  t.deepEqual((await checkInventory(c)).actions, []);
  writeFileSync(path.join(c.inventory_dir, 'group_vars', 'proxies', 'vrrp.yml'), 'keepalived_vrrp_advert_int: 1\n');
  t.like((await checkInventory(c)).actions[0], { kind: 'vrrp' });
  await writeFleet(c.state_dir, fleet.proxies, fleet.vrrpKey);
  writeFileSync(path.join(c.inventory_dir, 'hosts.yml'), 'all:\n  children:\n    proxies:\n      hosts:\n        rp1:\n          ansible_host: 10.0.0.1\n        rp2:\n          ansible_host: 10.0.0.2\n        rp3:\n          ansible_host: 10.0.0.3\n');
  await writeFleet(c.state_dir, [e('rp1'), e('rp2'), e('rp3')]);
  t.deepEqual(await fleetProxies(c, ['rp1', 'rp2', 'rp3']), ['rp1', 'rp2', 'rp3']);
});

test('operation records: in progress, then history with steps; metrics read them', async (t) => {
  const c = tmpConfig('all: {}\n');
  const tr = new OpTracker(c.state_dir, 'onboard', 'rp3', '10.0.0.3', 'cli');
  await tr.begin();
  await tr.start('preflight');
  let f = await readOnboarding(c.state_dir);
  t.is(f.current.length, 1);
  t.is(f.current[0]!.step, 'preflight');
  const reg = new Registry();
  registerOnboardingMetrics(reg, c.state_dir);
  t.regex(await reg.metrics(), /paas_rproxy_onboarding_in_progress\{op="onboard",host="rp3",step="preflight"\} 1/);
  await tr.end(true, 'all passed');
  await tr.finish(true);
  f = await readOnboarding(c.state_dir);
  t.is(f.current.length, 0);
  t.is(f.history.length, 1);
  t.is(f.history[0]!.result, 'ok');
  t.deepEqual(f.history[0]!.steps.map((s) => s.step), ['preflight']);
  await new Promise((r) => setTimeout(r, 250));
  const m = await reg.metrics();
  t.regex(m, /paas_rproxy_onboarding_last_duration_seconds\{op="onboard",host="rp3",result="ok"\} [\d.]+/);
  t.notRegex(m, /paas_rproxy_onboarding_in_progress\{/);
});

test('verification targets and verdicts', (t) => {
  const app = (id: string, backends: boolean, aliases: string[] = []) => [id, {
    id, app_name: id.split('-')[0]!, namespace: id.split('-')[1]!, scalable: false, ha: false, aliases, tls: [],
    endpoints: backends ? [{ address: '10.1.0.1', port: 8080, gear_id: 'g', port_name: 'web', protocols: ['http'], types: ['web_framework'], mappings: [] }] : [],
  }] as const;
  const state = { apps: new Map([app('a-n', true, ['www.a.org']), app('b-n', false), app('c-n', true)] as never), aliasOwner: new Map() };
  const all = verifyTargets(state as never, 'apps.example.com', 10);
  t.deepEqual(all.targets.map((x) => x.name), ['a-n.apps.example.com', 'www.a.org', 'b-n.apps.example.com', 'c-n.apps.example.com']);
  t.is(verifyTargets(state as never, 'apps.example.com', 2).checkedApps, 2);
  const [a, , b] = all.targets;
  t.is(judge(a!, 200, null), null);
  t.regex(judge(a!, 404, null)!.expected, /not the default server/);
  t.is(judge(b!, 503, null), null);
  t.regex(judge(b!, 200, null)!.expected, /503/);
  t.is(judge(a!, 502, 502), null, 'same answer as the proxy in service');
  t.regex(judge(a!, 404, 200)!.expected, /200 \(as the proxy in service answers\)/);
  t.regex(judge(a!, 'ECONNREFUSED', null)!.expected, /backend/);
});

test('VIP helpers', (t) => {
  t.deepEqual(vipAddresses(['198.51.100.201/24', '198.51.100.202', { address: '198.51.100.203/24', router_id: 9 }]), ['198.51.100.201', '198.51.100.202', '198.51.100.203']);
  const ip = '2: eth0    inet 198.51.100.13/24 brd 198.51.100.255 scope global eth0\n2: eth0    inet 198.51.100.202/32 scope global eth0\n';
  t.deepEqual(vipsInIpAddr(ip, ['198.51.100.201', '198.51.100.202', '198.51.100.20']), ['198.51.100.202']);
  t.deepEqual(plannedMasters(['rp1', 'rp2', 'rp3'], ['198.51.100.201', '198.51.100.202', '198.51.100.203']), { '198.51.100.201': 'rp1', '198.51.100.202': 'rp3', '198.51.100.203': 'rp2' });
  t.deepEqual(plannedMasters(['rp1', 'rp2'], ['198.51.100.201/24', '198.51.100.202/24', '198.51.100.203/24']), { '198.51.100.201': 'rp1', '198.51.100.202': 'rp1', '198.51.100.203': 'rp2' });
});

test('status lines for onboarding', async (t) => {
  const { formatOnboarding } = await import('../../../generator/src/onboard/records.js');
  const lines = formatOnboarding({
    current: [{ op: 'onboard', host: 'rp4', address: null, pid: 9, by: 'listener', startedAt: new Date(1000).toISOString(), step: 'provision', steps: [] }],
    last: [{ op: 'offboard', host: 'rp3', address: null, pid: 8, by: 'cli', startedAt: '2026-01-01T00:00:00.000Z', step: 'inventory', result: 'ok', durationMs: 15000, steps: [{ step: 'vrrp', ok: true, ms: 10900 }] }],
  }, 31_000);
  t.deepEqual(lines, [
    'onboard rp4 in progress (by listener, pid 9): step provision, 30 s so far',
    'offboard rp3 ok at 2026-01-01T00:00:00.000Z in 15.0 s (vrrp 10.9s)',
  ]);
  t.deepEqual(formatOnboarding(undefined), []);
});
