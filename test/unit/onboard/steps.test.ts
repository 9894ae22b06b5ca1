// Onboarding and offboarding step by step, with fake ports (no SSH, no Ansible, no network): the shared step
// runner, each step alone, and whole operations (what is touched before a failure, which error and exit code).
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultConfig, type Config } from '../../../generator/src/config.js';
import { RproxyError, exitCodeFor, isRproxyError, type ErrorCode } from '../../../generator/src/errors.js';
import type { AppState, State } from '../../../generator/src/state/types.js';
import type { RunRecord } from '../../../generator/src/runner/runner.js';
import type { PlaybookCommand } from '../../../generator/src/runner/command.js';
import { digestsOf } from '../../../generator/src/runner/ports.js';
import { failed, runSteps, stepLine, type Step, type Tracker } from '../../../generator/src/onboard/steps.js';
import type { OpPorts, VipWatcher } from '../../../generator/src/onboard/operations.js';
import type { Connection } from '../../../generator/src/onboard/connection.js';
import type { PreflightReport } from '../../../generator/src/onboard/preflight.js';
import type { VerifyResult } from '../../../generator/src/onboard/verify.js';
import type { SshSession, ExecResult } from '../../../generator/src/onboard/ssh.js';
import { SshConnectError } from '../../../generator/src/onboard/ssh.js';
import type { StepRecord } from '../../../generator/src/onboard/records.js';
import { readOnboarding } from '../../../generator/src/onboard/records.js';
import * as On from '../../../generator/src/onboard/onboard.js';
import * as Off from '../../../generator/src/onboard/offboard.js';

// ------------------------------------------------------------------------------------------------ fakes
const HOSTS_YML = [
  'all:',
  '  children:',
  '    proxies:',
  '      hosts:',
  '        rp1:',
  '          ansible_host: 198.51.100.11',
  '        rp2:',
  '          ansible_host: 198.51.100.12',
  '',
].join('\n');
const VARS = { keepalived_vrrp_vips: ['198.51.100.201', '198.51.100.202', '198.51.100.203'] };

function tmpConfig(): Config {
  const dir = mkdtempSync(path.join(tmpdir(), 'onb-steps-'));
  return { ...defaultConfig(), inventory_dir: path.join(dir, 'inv'), state_dir: path.join(dir, 'var') };
}

const conn = (host: string, address: string, user = 'root'): Connection => ({
  host, address, port: 22, user, privateKeyFile: null, knownHostsFiles: [], hostKeyCheckingDisabled: false, become: user !== 'root', python: 'python3',
});

const app = (id: string, port: number): AppState => ({
  id, app_name: id.split('-')[0]!, namespace: id.split('-')[1]!, scalable: false, ha: false, aliases: [], tls: [],
  endpoints: [{ address: '198.51.100.31', port, gear_id: 'g1', port_name: 'web', protocols: ['http'], types: ['web_framework'], mappings: [{ frontend: '', backend: '' }] }],
} as unknown as AppState);
const stateOf = (...apps: AppState[]): State => ({ apps: new Map(apps.map((a) => [a.id, a])), aliasOwner: new Map() });

const run = (cmd: PlaybookCommand, result: RunRecord['result'] = 'ok', error?: string): RunRecord => ({
  id: 'x.1', kind: cmd.kind, trigger: 't', command: cmd.display, argv: cmd.argv, hosts: [...cmd.hosts], apps: null, startedAt: new Date(0).toISOString(),
  durationMs: 1200, exitCode: result === 'ok' ? 0 : 2, result, perHost: [], ...(error ? { error } : {}),
});

const PREFLIGHT_OK: PreflightReport = { host: 'rp3', address: '198.51.100.13', ok: true, checks: [{ check: 'ssh', ok: true, detail: 'ok' }], bootstrapped: false, durationMs: 5 };
const VERIFY_OK: VerifyResult = { ok: true, apps: 1, checkedApps: 1, requests: 3, reference: '198.51.100.11', failures: [], durationMs: 5 };

interface Fake extends OpPorts {
  calls: string[];
  commands: PlaybookCommand[];
  inventory: string;
  verified: State[];
}

/** A session whose exec answers by the first matching pattern (default: exit 0, no output). */
function fakeSession(calls: string[], host: string, answers: Array<[RegExp, ExecResult]> = []): SshSession {
  return {
    exec: async (command) => {
      calls.push(`exec ${host}: ${command.split('\n')[0]}`);
      return answers.find(([re]) => re.test(command))?.[1] ?? { code: 0, stdout: '', stderr: '' };
    },
    dispose: () => { calls.push(`dispose ${host}`); },
  };
}

function fakeWatch(calls: string[], w: Partial<{ ok: boolean; byVip: Record<string, string[]>; holders: Record<string, string[] | null>; throws: Error }> = {}): VipWatcher {
  return {
    holders: async (vips) => w.holders ?? Object.fromEntries(['rp1', 'rp2'].map((h) => [h, vips.length ? [] : []])),
    waitFor: async (planned) => {
      calls.push('waitFor');
      if (w.throws) throw w.throws;
      const byVip = w.byVip ?? Object.fromEntries(Object.entries(planned).map(([v, h]) => [v, [h]]));
      return { ok: w.ok ?? true, byVip, waitedMs: 800 };
    },
    dispose: () => { calls.push('dispose watch'); },
  } as VipWatcher;
}

function fakePorts(over: Partial<OpPorts> = {}, opts: { state?: State; later?: State; watch?: Parameters<typeof fakeWatch>[1]; session?: Array<[RegExp, ExecResult]> } = {}): Fake {
  const calls: string[] = [];
  const commands: PlaybookCommand[] = [];
  const verified: State[] = [];
  let loads = 0;
  const f: Fake = {
    calls, commands, verified, inventory: HOSTS_YML,
    readInventory: async () => ({ file: '/inv/hosts.yml', text: f.inventory }),
    editInventory: async (edit) => { calls.push('editInventory'); f.inventory = edit(f.inventory, '/inv/hosts.yml'); },
    resolveConnection: async (host, o) => {
      calls.push(`resolve ${host}${o?.address ? ` ${o.address}` : ''}`);
      const known: Record<string, string> = { rp1: '198.51.100.11', rp2: '198.51.100.12', rp3: '198.51.100.13' };
      return { conn: conn(host, o?.address ?? known[host] ?? host), vars: VARS };
    },
    connections: async (hosts) => hosts.map((h) => conn(h, `198.51.100.${10 + Number(h.slice(2))}`)),
    preflight: async () => { calls.push('preflight'); return PREFLIGHT_OK; },
    connectSsh: async (c) => { calls.push(`ssh ${c.host}`); return fakeSession(calls, c.host, opts.session); },
    vipWatch: () => fakeWatch(calls, opts.watch),
    loadState: async () => (loads++ === 0 ? opts.state ?? stateOf() : opts.later ?? opts.state ?? stateOf()),
    digests: async () => digestsOf(loads++ === 0 ? opts.state ?? stateOf() : opts.later ?? opts.state ?? stateOf()),
    withOverlay: async (content, fn) => { calls.push(`overlay ${content.includes('rp3') ? 'rp3' : 'keep'}`); return fn('/inv/.overlay.yml'); },
    play: async (cmd) => { calls.push(`play ${cmd.kind} ${cmd.hosts.join(',')}`); commands.push(cmd); return run(cmd); },
    playBeside: async (cmd) => { calls.push(`playBeside ${cmd.kind} ${cmd.hosts.join(',')}`); commands.push(cmd); return run(cmd); },
    writeApplied: async (host) => { calls.push(`writeApplied ${host}`); },
    removeApplied: async (host) => { calls.push(`removeApplied ${host}`); },
    verify: async (state) => { calls.push('verify'); verified.push(state); return VERIFY_OK; },
    catchUp: async (host) => { calls.push(`catchUp ${host}`); return { runs: [], ok: true, lagging: {}, plan: { fullHosts: [], targetedHosts: [], apps: [], perHost: {} } as never, snapshotSeq: 0, holdPending: [] }; },
    readFleet: async () => { calls.push('readFleet'); return null; },
    fleetAdd: async (e) => { calls.push(`fleetAdd ${e.name}`); },
    fleetRemove: async (h) => { calls.push(`fleetRemove ${h}`); },
    ...over,
  };
  return f;
}

/** A tracker that keeps its records in memory. */
function fakeTracker(): Tracker & { log: string[] } {
  const log: string[] = [];
  let step = '';
  const rec = { steps: [] as StepRecord[] };
  return {
    log, rec, elapsedMs: 7,
    begin: async () => { log.push('begin'); },
    start: async (s: string) => { step = s; log.push(`start ${s}`); },
    end: async (ok: boolean, detail?: string) => { const r = { step, ok, ms: 100, ...(detail ? { detail } : {}) }; rec.steps.push(r); log.push(`end ${step} ${ok}`); return r; },
    finish: async (ok: boolean, error?: string) => { log.push(`finish ${ok}${error ? `: ${error}` : ''}`); },
  } as unknown as Tracker & { log: string[] };
}

async function rejects(t: import('ava').ExecutionContext, p: Promise<unknown>, code: ErrorCode, exit: number, re?: RegExp): Promise<RproxyError> {
  const e = await t.throwsAsync(p);
  t.true(isRproxyError(e, code), `${code} expected, got ${(e as RproxyError)?.code}: ${e?.message}`);
  t.is(exitCodeFor(e), exit);
  if (re) t.regex(e!.message, re);
  return e as RproxyError;
}

// ------------------------------------------------------------------------------------------------ the step runner
test('runSteps: numbered progress lines, each step recorded, the operation finished ok', async (t) => {
  const lines: string[] = [];
  const tr = fakeTracker();
  const steps: Step<{ n: number }>[] = [
    { name: 'one', what: () => 'first', run: async (c) => { c.n++; return { detail: 'did one' }; } },
    { name: 'two', what: (c) => `second after ${c.n}`, run: async () => ({ detail: 'half done', ok: false }) },
  ];
  const out = await runSteps('onboard', 'rp3', steps, { n: 0 }, tr, (l) => lines.push(l));
  t.deepEqual(lines, ['[onboard rp3 1/2] first', '    ok (0.1 s) did one', '[onboard rp3 2/2] second after 1', '    FAILED (0.1 s) half done']);
  t.deepEqual(tr.log, ['begin', 'start one', 'end one true', 'start two', 'end two false', 'finish true']);
  t.deepEqual(out.map((s) => [s.step, s.ok]), [['one', true], ['two', false]]);
  t.is(stepLine('offboard', 'rp1', 3, 7, 'x'), '[offboard rp1 3/7] x');
});

test('runSteps: a failed step is recorded, then its error ends the operation; a step that throws is not recorded', async (t) => {
  const tr = fakeTracker();
  const boom = new RproxyError('ERR_PLAYBOOK_FAILED', 'first line\nsecond line');
  let ran3 = false;
  const steps: Step<object>[] = [
    { name: 'a', what: () => 'a', run: async () => failed('it failed', boom) },
    { name: 'b', what: () => 'b', run: async () => { ran3 = true; return { detail: '' }; } },
  ];
  t.is(await t.throwsAsync(runSteps('onboard', 'rp3', steps, {}, tr, () => undefined)), boom);
  t.false(ran3, 'no step after a failure');
  t.deepEqual(tr.log, ['begin', 'start a', 'end a false', 'finish false: first line']);

  const tr2 = fakeTracker();
  await t.throwsAsync(runSteps('onboard', 'rp3', [{ name: 'c', what: () => 'c', run: async () => { throw new RproxyError('ERR_INPUT', 'refused'); } }], {}, tr2, () => undefined), { message: 'refused' });
  t.deepEqual(tr2.log, ['begin', 'start c', 'finish false: refused']);
});

// ------------------------------------------------------------------------------------------------ onboarding steps
const onboardRun = (p: OpPorts, o: Partial<On.OnboardOptions> = {}) => new On.OnboardRun(tmpConfig(), { host: 'rp3', address: '198.51.100.13', ...o }, p);

test('onboard check: the group\'s members, refusals for a present host, a taken address, a missing one', async (t) => {
  const c = onboardRun(fakePorts());
  t.like(await On.checkStep(c), { detail: '2 proxies in service: rp1, rp2' });
  t.deepEqual(c.others, ['rp1', 'rp2']);
  await rejects(t, On.checkStep(onboardRun(fakePorts(), { host: 'rp2', address: '198.51.100.99' })), 'ERR_INPUT', 2, /rp2 is already in group proxies .*offboard it first/);
  await rejects(t, On.checkStep(onboardRun(fakePorts(), { address: '198.51.100.12' })), 'ERR_INPUT', 2, /address 198\.51\.100\.12 already belongs to rp2/);
  await rejects(t, On.checkStep(onboardRun(fakePorts(), { inInventory: true })), 'ERR_INPUT', 2, /rp3 is not in group proxies/);
  const corrupt = new RproxyError('ERR_STATE_CORRUPT', 'fleet.json is not a fleet record');
  await rejects(t, On.checkStep(onboardRun(fakePorts({ readFleet: async () => { throw corrupt; } }))), 'ERR_STATE_CORRUPT', 1);
});

test('onboard preflight: a failed check changes nothing and names the checks (exit 2)', async (t) => {
  const bad: PreflightReport = { ...PREFLIGHT_OK, ok: false, checks: [{ check: 'python3', ok: false, detail: 'missing', fix: 'apt-get install python3' }] };
  const p = fakePorts({ preflight: async () => bad });
  const r = await On.preflightStep(onboardRun(p));
  t.false(r.ok);
  t.is(r.detail, 'failed checks: python3');
  t.true(isRproxyError(r.error, 'ERR_PREFLIGHT_FAILED'));
  t.is(exitCodeFor(r.error), 2);
  t.regex(r.error!.message, /nothing was changed/);
  t.deepEqual(p.calls, ['resolve rp3 198.51.100.13']);
  // the watcher's host must be in the inventory with the address it was given
  await rejects(t, On.preflightStep(onboardRun(fakePorts(), { inInventory: true, address: '198.51.100.50' })), 'ERR_INPUT', 2, /has ansible_host 198\.51\.100\.13 in the inventory, not 198\.51\.100\.50/);
});

test('onboard provision: the host alone, through an overlay source, without keepalived; keepalived prepared beside it (not started); applied digests only on success', async (t) => {
  const p = fakePorts({}, { state: stateOf(app('shop-acme', 8080)) });
  const c = onboardRun(p);
  t.regex((await On.provisionStep(c)).detail, /^1 apps applied in 1\.2 s; keepalived prepared beside it in 1\.2 s \(not started\)$/);
  const argv = p.commands[0]!.argv;
  t.deepEqual(argv.slice(argv.indexOf('--limit'), argv.indexOf('--limit') + 4), ['--limit', 'rp3', '--skip-tags', 'keepalived_vrrp']);
  t.true(argv.includes('/inv/.overlay.yml'));
  // the preparation: the same host and overlay, only the tag that never touches keepalived itself (no VIP)
  const prep = p.commands[1]!.argv;
  t.deepEqual(prep.slice(prep.indexOf('--limit'), prep.indexOf('--limit') + 4), ['--limit', 'rp3', '--tags', 'keepalived_vrrp_prepare']);
  t.true(prep.includes('/inv/.overlay.yml'));
  t.false(prep.includes('--skip-tags'));
  t.deepEqual(p.calls, ['overlay rp3', 'play routes-full rp3', 'playBeside vrrp rp3', 'writeApplied rp3']);

  const inv = fakePorts();
  await On.provisionStep(onboardRun(inv, { inInventory: true }));
  t.false(inv.calls.some((x) => x.startsWith('overlay')), 'a host in the inventory needs no overlay');

  const failing = fakePorts({ play: async (cmd) => run(cmd, 'failed', 'rp3: failed in task "nginx"') });
  const r = await On.provisionStep(onboardRun(failing));
  t.true(isRproxyError(r.error, 'ERR_PLAYBOOK_FAILED'));
  t.regex(r.error!.message, /inventory and the VIPs are untouched: rp3: failed in task "nginx"/);
  t.false(failing.calls.includes('writeApplied rp3'));

  // a failed preparation fails the step too (after both runs ended): no VIP for a host whose watcher is not there
  let provEnded = false;
  const prepFails = fakePorts({
    play: async (cmd) => { await new Promise((r) => setTimeout(r, 20)); provEnded = true; return run(cmd); },
    playBeside: async (cmd) => run(cmd, 'failed', 'rp3: failed in task "Start the health watcher"'),
  });
  const r2 = await On.provisionStep(onboardRun(prepFails));
  t.true(provEnded, 'the provision run ended before the step did');
  t.true(isRproxyError(r2.error, 'ERR_PLAYBOOK_FAILED'));
  t.regex(r2.error!.message, /preparing keepalived on rp3 .* failed; .*the inventory and the VIPs are untouched: rp3: failed in task "Start the health watcher"/);
  t.false(prepFails.calls.includes('writeApplied rp3'));
});

test('onboard verify: against a proxy in service, apps changed since provisioning left to the catch-up; a failure is ERR_VERIFY_FAILED (exit 4)', async (t) => {
  const before = stateOf(app('shop-acme', 8080), app('blog-x', 8080));
  const after = stateOf(app('shop-acme', 8080), app('blog-x', 9090));
  const p = fakePorts({}, { state: before, later: after });
  let loads = 0;
  const load = p.loadState;
  p.loadState = async () => { loads++; return load(); };
  const c = onboardRun(p);
  await On.checkStep(c);
  await On.provisionStep(c);
  t.regex((await On.verifyStep(c)).detail, /1 of 1 apps, 3 requests, same answers as rp1 \(198\.51\.100\.11\)/);
  t.deepEqual([...p.verified[0]!.apps.keys()], ['shop-acme'], 'blog-x changed meanwhile: not verified');
  t.is(loads, 1, 'verify compares with the digests of index.json: the state is parsed once, by the provision step');

  const bad = fakePorts({ verify: async () => ({ ...VERIFY_OK, ok: false, requests: 2, failures: [{ app: 'shop-acme', name: 'shop-acme.apps.example.com', status: 502, expected: '200' }] }) });
  const c2 = onboardRun(bad);
  await On.checkStep(c2);
  await On.provisionStep(c2);
  const r = await On.verifyStep(c2);
  t.true(isRproxyError(r.error, 'ERR_VERIFY_FAILED'));
  t.is(exitCodeFor(r.error), 4);
  t.regex(r.error!.message, /does not serve the current routes \(1 of 2 checks failed/);
});

test('onboard inventory and fleet: appended by the CLI, left as the operator put it for the watcher', async (t) => {
  const p = fakePorts();
  t.is((await On.inventoryStep(onboardRun(p))).detail, 'rp3 appended (ansible_host 198.51.100.13)');
  t.regex(p.inventory, /rp2:\n\s+ansible_host: 198\.51\.100\.12\n\s+# added by paas-rproxy onboard .*\n\s+rp3:\n\s+ansible_host: 198\.51\.100\.13\n$/);
  t.deepEqual(p.calls, ['editInventory', 'fleetAdd rp3']);
  const w = fakePorts();
  t.is((await On.inventoryStep(onboardRun(w, { inInventory: true }))).detail, 'already there (added by the operator)');
  t.deepEqual(w.calls, ['fleetAdd rp3']);
});

test('onboard VRRP and VIPs: a failed run is ERR_PLAYBOOK_FAILED; VIPs not as planned are ERR_VIPS_NOT_SETTLED (exit 6)', async (t) => {
  const c = onboardRun(fakePorts({ play: async (cmd) => run(cmd, 'failed', 'rp1 unreachable') }));
  await On.checkStep(c);
  const r = await On.vrrpStep(c);
  t.true(isRproxyError(r.error, 'ERR_PLAYBOOK_FAILED'));
  t.regex(r.error!.message, /VRRP run failed: rp1 unreachable\nRe-run it: .*--tags keepalived_vrrp_conf --limit proxies /);

  // the re-spread: the narrow tag on the whole group (keepalived.conf, reload, start of the new host)
  const rs = fakePorts();
  const c1 = onboardRun(rs);
  await On.checkStep(c1);
  t.regex((await On.vrrpStep(c1)).detail, /^ok in /);
  const va = rs.commands[0]!.argv;
  t.deepEqual(va.slice(va.indexOf('--tags'), va.indexOf('--tags') + 4), ['--tags', 'keepalived_vrrp_conf', '--limit', 'proxies']);
  t.deepEqual(rs.commands[0]!.hosts, ['rp1', 'rp2', 'rp3']);

  const ok = fakePorts();
  const c2 = onboardRun(ok);
  await On.checkStep(c2);
  await On.preflightStep(c2);
  const v = await On.vipsStep(c2);
  t.is(v.error, undefined);
  t.regex(v.detail, /^as planned after 0\.8 s: .* \(rp3 masters 198\.51\.100\.202\)$/);
  t.true(c2.vipsOk);
  t.is(ok.calls.at(-1), 'dispose watch');

  const stuck = fakePorts({}, { watch: { ok: false, byVip: { '198.51.100.201': ['rp1'], '198.51.100.202': ['rp2'], '198.51.100.203': [] } } });
  const c3 = onboardRun(stuck);
  await On.checkStep(c3);
  await On.preflightStep(c3);
  const s = await On.vipsStep(c3);
  t.false(s.ok);
  t.true(isRproxyError(s.error, 'ERR_VIPS_NOT_SETTLED'));
  t.is(exitCodeFor(s.error), 6);
  t.regex(s.error!.message, /198\.51\.100\.203→nobody/);

  const blind = fakePorts({}, { watch: { throws: new Error('ssh down') } });
  const c4 = onboardRun(blind);
  await On.checkStep(c4);
  await On.preflightStep(c4);
  const b = await On.vipsStep(c4);
  t.is(b.detail, 'could not check the VIP holders: ssh down');
  t.true(isRproxyError(b.error, 'ERR_VIPS_NOT_SETTLED'));
  t.is(blind.calls.at(-1), 'dispose watch');
});

test('onboard(): every step in order, recorded in onboarding.json; a failed preflight touches nothing', async (t) => {
  const config = tmpConfig();
  const p = fakePorts();
  const lines: string[] = [];
  const res = await On.onboard(config, { host: 'rp3', address: '198.51.100.13', progress: (l) => lines.push(l) }, p);
  t.deepEqual(res.steps.map((s) => s.step), ['check', 'preflight', 'provision', 'verify', 'inventory', 'catch-up', 'vrrp', 'vips']);
  t.true(res.vipsOk);
  t.deepEqual(p.calls.filter((x) => /^(preflight|play|editInventory|fleetAdd|catchUp)/.test(x)),
    ['preflight', 'play routes-full rp3', 'playBeside vrrp rp3', 'editInventory', 'fleetAdd rp3', 'catchUp rp3', 'play vrrp rp1,rp2,rp3']);
  t.is(lines.filter((l) => l.startsWith('[onboard rp3 ')).length, 8);
  t.is(lines[0], '[onboard rp3 1/8] checking the inventory (proxies)');
  const rec = await readOnboarding(config.state_dir);
  t.like(rec.history.at(-1), { op: 'onboard', host: 'rp3', result: 'ok' });
  t.deepEqual(rec.current, []);

  const config2 = tmpConfig();
  const bad = fakePorts({ preflight: async () => ({ ...PREFLIGHT_OK, ok: false, checks: [{ check: 'disk', ok: false, detail: 'full' }] }) });
  await rejects(t, On.onboard(config2, { host: 'rp3', address: '198.51.100.13' }, bad), 'ERR_PREFLIGHT_FAILED', 2);
  t.false(bad.calls.some((x) => /^(play|editInventory|fleetAdd|writeApplied|overlay)/.test(x)), bad.calls.join(', '));
  t.like((await readOnboarding(config2.state_dir)).history.at(-1), { result: 'failed', step: 'preflight' });

  await rejects(t, On.onboard(config2, { host: 'rp 3', address: '198.51.100.13' }, fakePorts()), 'ERR_USAGE', 2, /not a valid inventory host name/);
  for (const address of ['198.51.100.256', ':::', 'rp3.example.com', '010.0.0.1']) {
    await rejects(t, On.onboard(config2, { host: 'rp3', address }, fakePorts()), 'ERR_USAGE', 2, /is not an IP address/);
  }
});

// ------------------------------------------------------------------------------------------------ offboarding steps
const offboardRun = (p: OpPorts, o: Partial<Off.OffboardOptions> = {}) => new Off.OffboardRun(tmpConfig(), { host: 'rp2', ...o }, p);

test('offboard check: never the last proxy, never a host outside the group', async (t) => {
  const c = offboardRun(fakePorts());
  t.is((await Off.checkStep(c)).detail, '1 proxies stay: rp1');
  await rejects(t, Off.checkStep(offboardRun(fakePorts(), { host: 'rp9' })), 'ERR_INPUT', 2, /rp9 is not in group proxies/);
  const one = fakePorts();
  one.inventory = 'all:\n  children:\n    proxies:\n      hosts:\n        rp2:\n          ansible_host: 198.51.100.12\n';
  await rejects(t, Off.checkStep(offboardRun(one)), 'ERR_INPUT', 2, /last proxy of proxies/);
});

test('offboard reach: an unreachable host stops it unless --force; unreachable others always stop it (exit 2)', async (t) => {
  const down = () => fakePorts({ connectSsh: async () => { throw new SshConnectError('unreachable', '198.51.100.12:22: ECONNREFUSED'); } });
  const c = offboardRun(down());
  await Off.checkStep(c);
  const r = await Off.reachStep(c);
  t.true(isRproxyError(r.error, 'ERR_HOST_UNREACHABLE'));
  t.is(exitCodeFor(r.error), 2);
  t.regex(r.error!.message, /nothing was changed\. If rp2 is gone for good, run offboard with --force/);

  const forced = offboardRun(down(), { force: true });
  await Off.checkStep(forced);
  t.is((await Off.reachStep(forced)).detail, 'rp2 unreachable (--force): continuing without stopping its services');
  t.is(forced.session, null);
  t.deepEqual(Object.keys(forced.planned), ['198.51.100.201', '198.51.100.202', '198.51.100.203']);

  const others = offboardRun(fakePorts({}, { watch: { holders: { rp1: null } } }));
  await Off.checkStep(others);
  const o = await Off.reachStep(others);
  t.true(isRproxyError(o.error, 'ERR_HOST_UNREACHABLE'));
  t.regex(o.error!.message, /cannot reach rp1 over SSH; nothing was changed/);

  // any other error is not "unreachable": it propagates as it is
  const weird = offboardRun(fakePorts({ connectSsh: async () => { throw new TypeError('bug'); } }));
  await Off.checkStep(weird);
  await t.throwsAsync(Off.reachStep(weird), { instanceOf: TypeError });
});

test('offboard VRRP: the others only, the layout group given by an overlay source', async (t) => {
  const p = fakePorts();
  const c = offboardRun(p);
  await Off.checkStep(c);
  await Off.vrrpStep(c);
  const argv = p.commands[0]!.argv;
  t.deepEqual(argv.slice(argv.indexOf('--tags'), argv.indexOf('--tags') + 6), ['--tags', 'keepalived_vrrp', '--limit', 'rp1', '-e', JSON.stringify({ rproxy_vrrp_group: Off.OFFBOARD_LAYOUT_GROUP })]);
  t.deepEqual(p.calls, ['readFleet', 'overlay keep', 'play vrrp rp1']);
  const f = offboardRun(fakePorts({ play: async (cmd) => run(cmd, 'failed', 'boom') }));
  await Off.checkStep(f);
  const r = await Off.vrrpStep(f);
  t.true(isRproxyError(r.error, 'ERR_PLAYBOOK_FAILED'));
  t.regex(r.error!.message, /rp2 is still in the inventory \(re-run offboard, or restore with: .*--tags keepalived_vrrp --limit proxies .*\): boom/);
});

test('offboard release, VIPs and stop: command failures, a VIP still held, VIPs not settled (exit 4 and 6)', async (t) => {
  const reach = async (p: Fake, o: Partial<Off.OffboardOptions> = {}) => { const c = offboardRun(p, o); await Off.checkStep(c); await Off.reachStep(c); return c; };

  const ok = await reach(fakePorts());
  t.is((await Off.releaseStep(ok)).detail, 'keepalived stopped');
  t.regex((await Off.vipsStep(ok)).detail, /^after 0\.8 s: /);
  t.is((await Off.stopStep(ok)).detail, 'nginx stopped (graceful); keepalived disabled at boot');

  const sudo = fakePorts({ resolveConnection: async (host) => ({ conn: conn(host, '198.51.100.12', 'rpadmin'), vars: VARS }) });
  const cs = await reach(sudo);
  await Off.releaseStep(cs);
  t.true(sudo.calls.includes("exec rp2: sudo -n sh -c 'if [ -d /run/systemd/system ]; then systemctl stop keepalived; else service keepalived stop; fi'"));

  const refuse = await reach(fakePorts({}, { session: [[/keepalived stop/, { code: 1, stdout: '', stderr: 'Failed to stop' }]] }));
  const r = await Off.releaseStep(refuse);
  t.true(isRproxyError(r.error, 'ERR_HOST_COMMAND_FAILED'));
  t.is(exitCodeFor(r.error), 4);
  t.regex(r.error!.message, /stopping keepalived on rp2 failed \(Failed to stop\); rp2 is still in the inventory/);

  const holds = await reach(fakePorts({}, { session: [[/^ip -o addr show$/, { code: 0, stdout: '2: eth0    inet 198.51.100.202/32 scope global eth0\n', stderr: '' }]] }));
  const h = await Off.vipsStep(holds);
  t.true(isRproxyError(h.error, 'ERR_VIPS_NOT_SETTLED'));
  t.is(exitCodeFor(h.error), 6);
  t.regex(h.error!.message, /rp2 still holds 198\.51\.100\.202 after keepalived stopped/);

  const stuck = await reach(fakePorts({}, { watch: { ok: false, byVip: { '198.51.100.201': [], '198.51.100.202': ['rp1'], '198.51.100.203': ['rp1'] } } }));
  const s = await Off.vipsStep(stuck);
  t.true(isRproxyError(s.error, 'ERR_VIPS_NOT_SETTLED'));
  t.regex(s.error!.message, /198\.51\.100\.201→nobody.*its nginx still runs/);

  // nginx that does not stop is recorded as failed, not thrown: the VIPs have moved already
  const nginx = await reach(fakePorts({}, { session: [[/STOP_SCHEDULE|systemctl stop nginx/, { code: 1, stdout: 'nginx still running', stderr: '' }]] }));
  const n = await Off.stopStep(nginx);
  t.deepEqual([n.ok, n.detail, n.error], [false, 'nginx: nginx still running', undefined]);

  const gone = await reach(fakePorts({ connectSsh: async () => { throw new SshConnectError('unreachable', 'x'); } }), { force: true });
  t.is((await Off.releaseStep(gone)).detail, 'skipped (unreachable)');
  t.is((await Off.stopStep(gone)).detail, 'skipped (unreachable)');
});

test('offboard(): steps in order, the inventory edited last; sessions closed also after a failure', async (t) => {
  const p = fakePorts();
  const res = await Off.offboard(tmpConfig(), { host: 'rp2' }, p);
  t.deepEqual(res.steps.map((s) => s.step), ['check', 'reach', 'vrrp', 'release', 'vips', 'stop', 'inventory']);
  t.true(res.stopped);
  t.false(/rp2:/.test(p.inventory), 'rp2 left the inventory');
  t.deepEqual(p.calls.slice(-5), ['editInventory', 'removeApplied rp2', 'fleetRemove rp2', 'dispose rp2', 'dispose watch']);

  const watcher = fakePorts();
  await Off.offboard(tmpConfig(), { host: 'rp2', inInventory: false, address: '198.51.100.12', by: 'listener' }, watcher);
  t.false(watcher.calls.includes('editInventory'), 'removed by the operator already');
  t.true(watcher.calls.includes('resolve rp2 198.51.100.12'));

  const failing = fakePorts({}, { watch: { ok: false, byVip: {} } });
  await rejects(t, Off.offboard(tmpConfig(), { host: 'rp2' }, failing), 'ERR_VIPS_NOT_SETTLED', 6);
  t.false(failing.calls.includes('editInventory'));
  t.deepEqual(failing.calls.slice(-2), ['dispose rp2', 'dispose watch']);
});
