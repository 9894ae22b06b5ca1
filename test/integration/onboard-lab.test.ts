// Onboarding and offboarding in the lab (serial, bounded), on either profile: one more VIP than the profile has
// over its proxies (default: 3 VIPs over rp1+rp2, the new proxy rp3; prod: 4 VIPs over rp1-rp3, the new proxy rp4), then
//  - a failed preflight (the new host's sshd down; python3 missing on it) changes nothing and names the check;
//  - the new proxy joins under a steady request load through every VIP: zero failed requests for a client that
//    retries once (see loads()), it masters its share and serves every route;
//  - it leaves under the same load: zero failed requests (same client), the others hold every VIP.
// Figures (onboarding duration, requests sent/failed) are printed with t.log and written to
// .lab/onboard-figures.json.
import test, { type ExecutionContext } from 'ava';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import {
  ensureLab, releaseLab, runAsync, run, sitePlaybook, applyAndSync, spi, fqdn, vipHolder, waitFor, sleep,
  startRequestLoop, failureLines, cli, LAB, LAB_SH, CONFIG, INVENTORY, type LoopSummary,
  VIPS, PROXIES, NEXT_PROXY, NEXT_VIP, STATE_DIR, PROFILE, proxyAddress, watchVips, nginxHealthFile, holdFile, sshProxy,
} from '../lab/labenv.js';
import { setGroupVar, groupHosts } from '../../generator/src/onboard/inventory.js';
import { plannedMasters } from '../../generator/src/onboard/vips.js';

const HOSTS_YML = path.join(INVENTORY, 'hosts.yml');
const VIPS3 = [...VIPS, NEXT_VIP];
const BASE = Object.keys(PROXIES);
const RP3 = { name: NEXT_PROXY, address: proxyAddress(NEXT_PROXY) };
const rx = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const NS = 'onb';
// one app per VIP for the load, plus an alias and an app without backends (503) for the route check
const APPS = [
  { app: 'onbone', port: 35571, alias: 'www.onboard-one.example.org' },
  { app: 'onbtwo', port: 35572, alias: null },
  { app: 'onbthree', port: 35573, alias: null },
];
const EMPTY_APP = 'onbempty';
const LATE_APP = { app: 'onblate', port: 35574 };
const GEAR = '198.51.100.33';
const figures: Record<string, unknown> = {};
let originalInventory = '';

/** The onboard/offboard commands of the built CLI, against the lab's config. */
function productCli(args: string[], timeoutMs = 600_000) {
  return cli(args, { timeoutMs });
}

const md5 = (f: string) => (existsSync(f) ? createHash('md5').update(readFileSync(f)).digest('hex') : 'absent');
function proxyConfDigests(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of BASE) {
    out[`${h} keepalived`] = md5(`/etc/netns/${h}/keepalived/keepalived.conf`);
    out[`${h} nginx`] = run('bash', ['-c', `cd /etc/netns/${h}/nginx && find . -type f | sort | xargs md5sum | md5sum`]).stdout.trim();
  }
  return out;
}

function holders(): Record<string, string> {
  return Object.fromEntries(VIPS3.map((v) => [v, vipHolder(v)]));
}

async function waitHolders(want: Record<string, string>, timeoutMs = 30_000): Promise<Record<string, string>> {
  let last = holders();
  await waitFor(() => { last = holders(); return VIPS3.every((v) => last[v] === want[v]); }, timeoutMs, 250);
  return last;
}

function lab(args: string[], timeoutMs = 300_000) {
  return runAsync('bash', [LAB_SH, ...args], { timeoutMs });
}

/** Ends root-namespace ssh clients (Ansible's ControlPersist masters) still connected to rp3's address:
 * a re-created rp3 has a new sshd, and a stale master would hang the next run. Only those pids. */
function endSshClientsTo(address: string): void {
  const out = run('ss', ['-Htnp', 'dst', address]).stdout;
  const pids = [...out.matchAll(/\("ssh",pid=(\d+)/g)].map((m) => Number(m[1]));
  for (const pid of new Set(pids)) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
}

async function freshRp3(): Promise<void> {
  endSshClientsTo(RP3.address);
  if (run('ip', ['netns', 'list']).stdout.split('\n').some((l) => l.split(' ')[0] === RP3.name)) {
    const d = await lab(['host-del', RP3.name]);
    if (d.code !== 0) throw new Error(`lab.sh host-del ${RP3.name}: ${d.stdout}${d.stderr}`);
  }
  const r = await lab(['host', RP3.name]);
  if (r.code !== 0) throw new Error(`lab.sh host ${RP3.name}: ${r.stdout}${r.stderr}`);
}

function loads(durationMs: number): Array<{ vip: string; loop: ReturnType<typeof startRequestLoop> }> {
  return VIPS3.map((vip, i) => ({
    vip,
    // a client that retries once after 0.2 s, as in lab-failover: a request in flight when a VIP moves is reset, and
    // a keepalived reload can still move a reloaded master's VIPs away and back for a moment (roles/keepalived_vrrp/
    // README.md, "Still open"); the first attempts that failed are logged and kept in the figures
    loop: startRequestLoop({ vip, host: fqdn(APPS[i % APPS.length]!.app, NS), intervalMs: 20, durationMs, timeoutMs: 3000, retries: 1, retryDelayMs: 200 }),
  }));
}

async function stopLoads(ls: ReturnType<typeof loads>): Promise<Record<string, LoopSummary>> {
  const out: Record<string, LoopSummary> = {};
  for (const l of ls) out[l.vip] = await l.loop.stop();
  return out;
}

function totals(s: Record<string, LoopSummary>): { sent: number; failed: number; attemptsFailed: number } {
  const v = Object.values(s);
  return { sent: v.reduce((a, x) => a + x.sent, 0), failed: v.reduce((a, x) => a + x.failed, 0), attemptsFailed: v.reduce((a, x) => a + x.attemptsFailed, 0) };
}

// every VIP event from the before hook's VRRP run to the end of the preflight tests (diagnostics when VIPs move)
let vipMoves: ReturnType<typeof watchVips> | undefined;
let vipMovesT0 = 0;

test.before(async (t) => {
  t.timeout(900_000);
  await ensureLab();
  originalInventory = readFileSync(HOSTS_YML, 'utf8');
  if (groupHosts(originalInventory, 'proxies').includes(RP3.name)) throw new Error(`${RP3.name} is already in the lab inventory (left over?)`);
  // routes: one app per VIP load, an alias, and an app with no backend
  let stream = '';
  for (const a of APPS) {
    stream += spi.createApp(a.app, NS) + spi.addEndpoint(a.app, NS, GEAR, a.port);
    if (a.alias) stream += spi.addAlias(a.app, NS, a.alias);
  }
  stream += spi.createApp(EMPTY_APP, NS);
  const ap = await applyAndSync(stream);
  if (ap.code !== 0) throw new Error(`apply --sync: ${failureLines(ap)}`);
  // one more VIP over the profile's proxies (test-local inventory vars; restored after)
  writeFileSync(HOSTS_YML, setGroupVar(originalInventory, 'proxies', 'keepalived_vrrp_vips', VIPS3));
  vipMoves = watchVips(BASE, VIPS3);
  vipMovesT0 = Date.now();
  const v = await sitePlaybook(['--tags', 'keepalived_vrrp', '--limit', 'proxies']);
  if (v.code !== 0) throw new Error(`vrrp run for 3 VIPs: ${failureLines(v)}`);
  t.log(`vrrp run done after ${Date.now() - vipMovesT0} ms`);
  const want = plannedMasters(BASE, VIPS3);
  const got = await waitHolders(want);
  t.log(`${VIPS3.length} VIPs over ${BASE.join('+')}: ${JSON.stringify(got)}`);
  if (VIPS3.some((x) => got[x] !== want[x])) throw new Error(`VIPs not as planned: ${JSON.stringify(got)} want ${JSON.stringify(want)}`);
  await freshRp3();
});

test.after.always(async (t) => {
  t.timeout(600_000);
  writeFileSync(path.join(LAB, 'onboard-figures.json'), JSON.stringify(figures, null, 2) + '\n');
  try {
    // rp3 out (whatever state it is in), inventory and 2-VIP layout back, test apps removed
    if (groupHosts(readFileSync(HOSTS_YML, 'utf8'), 'proxies').includes(RP3.name)) {
      const r = await productCli(['offboard', RP3.name, '--force']);
      t.log(`cleanup offboard: ${r.code}`);
    }
    vipMoves?.stop();
    if (originalInventory) writeFileSync(HOSTS_YML, originalInventory);
    await lab(['host-del', RP3.name]);
    endSshClientsTo(RP3.address);
    const v = await sitePlaybook(['--tags', 'keepalived_vrrp', '--limit', 'proxies']);
    t.log(`restore 2-VIP layout: exit ${v.code}`);
    let stream = '';
    for (const a of APPS) stream += spi.deleteApp(a.app, NS);
    stream += spi.deleteApp(EMPTY_APP, NS) + spi.deleteApp(LATE_APP.app, NS);
    await applyAndSync(stream);
  } finally {
    releaseLab();
  }
});

/**
 * The VIP holders once they are as planned (up to 15 s: offboarding waits until the staying proxies hold every VIP,
 * and the planned one may preempt a backup a moment later); when they are not, each proxy's hold flag and health
 * verdict are logged with them.
 */
async function plannedHolders(t: ExecutionContext, want: Record<string, string>): Promise<Record<string, string>> {
  const got = await waitHolders(want, 15_000);
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    t.log(`VIPs ${JSON.stringify(got)}; ${BASE.map((h) => `${h}: nginx-healthy=${nginxHealthFile(h) || '?'} hold=${holdFile(h) || '-'}`).join('; ')}`);
  }
  return got;
}

/**
 * The VIP holders once every VIP has one and none moved for a second (a snapshot in the middle of a VRRP transition
 * would compare a passing state). Any VIP event while the onboarding ran is logged all the same.
 */
async function settledHolders(timeoutMs = 15_000): Promise<Record<string, string>> {
  let last = holders();
  let since = Date.now();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await sleep(250);
    const now = holders();
    if (JSON.stringify(now) !== JSON.stringify(last) || Object.values(now).includes('none')) { last = now; since = Date.now(); continue; }
    if (Date.now() - since >= 1000) return now;
  }
  return last;
}

/** Onboards rp3 expecting its preflight to fail: exit 2, and the inventory, rp1/rp2's files and the VIPs untouched. */
async function onboardFailingPreflight(t: ExecutionContext) {
  const inv = readFileSync(HOSTS_YML, 'utf8');
  const confs = proxyConfDigests();
  const before = await settledHolders();
  const t0 = Date.now();
  const r = await productCli(['onboard', RP3.name, '--address', RP3.address], 120_000);
  t.log(r.stderr.trim().split('\n').slice(0, 8).join('\n'));
  const after = await settledHolders();
  const during = (vipMoves?.events ?? []).filter((e) => e.t >= t0);
  if (JSON.stringify(after) !== JSON.stringify(before) || during.length > 0) {
    // what moved them (logged before the assertions, which throw): the VIP events in ms since the before hook's
    // VRRP run, when the onboarding started, each proxy's health verdict, hold flag and watcher log
    const events = vipMoves?.events ?? [];
    t.log(`VIPs before ${JSON.stringify(before)} after ${JSON.stringify(after)}; onboarding at +${t0 - vipMovesT0}ms; events: ${events.map((e) => `+${e.t - vipMovesT0}ms ${e.added ? 'add' : 'del'} ${e.vip} ${e.host}`).join(', ') || 'none'}`);
    for (const h of BASE) {
      t.log(`${h}: nginx-healthy=${nginxHealthFile(h) || '?'} hold=${holdFile(h) || '-'}; watcher log: ${sshProxy(h, 'tail -8 /var/log/rproxy-health-watcher.log 2>&1').stdout.trim()}`);
    }
  }
  t.is(r.code, 2, 'exit 2: preflight failed');
  t.is(readFileSync(HOSTS_YML, 'utf8'), inv, 'inventory untouched');
  t.deepEqual(proxyConfDigests(), confs, 'rp1/rp2 nginx and keepalived files untouched');
  t.deepEqual(after, before, 'VIPs untouched');
  return r;
}

test.serial('a failed preflight (the new proxy\'s sshd down) changes nothing and names the failing check', async (t) => {
  t.timeout(300_000);
  const pid = Number(readFileSync(path.join(LAB, 'hosts', RP3.name, 'sshd.pid'), 'utf8').trim());
  process.kill(pid, 'SIGTERM');
  await waitFor(() => run('ip', ['netns', 'exec', RP3.name, 'bash', '-c', `echo > /dev/tcp/${RP3.address}/22`]).code !== 0, 5000);
  try {
    const r = await onboardFailingPreflight(t);
    t.regex(r.stderr, new RegExp(`preflight of ${RP3.name} failed \\(ssh\\)`));
    t.regex(r.stderr, new RegExp(`FAIL ssh\\s+sshd does not answer at ${rx(RP3.address)}:22`));
    t.regex(r.stderr, /start sshd on the host/);
    t.false(existsSync(path.join(STATE_DIR, 'applied', `${RP3.name}.json`)));
  } finally {
    await freshRp3(); // sshd back (a re-created bare host), even when an assertion failed: the next tests need it
  }
});

test.serial('a failed preflight (python3 missing on the new proxy) changes nothing and names the check', async (t) => {
  t.timeout(300_000);
  // hide python3 in rp3's own mount namespace only (its sshd runs under unshare --mount --propagation private)
  const pid = readFileSync(path.join(LAB, 'hosts', RP3.name, 'sshd.pid'), 'utf8').trim();
  const ns = run('readlink', [`/proc/${pid}/ns/mnt`]).stdout.trim();
  const mine = run('readlink', ['/proc/self/ns/mnt']).stdout.trim();
  if (!ns || ns === mine) {
    const log = run('tail', ['-5', path.join(LAB, 'hosts', RP3.name, 'sshd.log')]).stdout.trim();
    t.fail(`${RP3.name}'s sshd (${pid}) is not in its own mount namespace (${ns || 'no such process'}); its log: ${log}`);
    return;
  }
  const hide = run('nsenter', ['-t', pid, '-m', 'mount', '--bind', '/dev/null', '/usr/bin/python3']);
  t.is(hide.code, 0, hide.stderr);
  try {
    t.not(run('readlink', ['-f', '/usr/bin/python3']).stdout.trim(), '/dev/null', 'the root namespace still has python3');
    const r = await onboardFailingPreflight(t);
    t.regex(r.stderr, new RegExp(`preflight of ${RP3.name} failed \\(python3\\)`));
    t.regex(r.stderr, /FAIL python3\s+\/usr\/bin\/python3 is not installed on the host/);
    t.regex(r.stderr, /apt-get install -y python3/);
  } finally {
    run('nsenter', ['-t', pid, '-m', 'umount', '/usr/bin/python3']);
  }
});

test.serial('the new proxy joins under load through every VIP: zero failed requests, it masters its share and serves every route', async (t) => {
  t.timeout(600_000);
  vipMoves?.stop();
  const want3 = plannedMasters([...BASE, RP3.name], VIPS3);
  const ls = loads(600_000);
  await sleep(1500); // the load is steady before anything changes
  const t0 = Date.now();
  const pending = productCli(['onboard', RP3.name, '--address', RP3.address]);
  // an app created while rp3 is being provisioned (after its routes snapshot) must reach rp3 too
  const provisioning = await waitFor(() => {
    try { return /"step": "provision"/.test(readFileSync(path.join(STATE_DIR, 'onboarding.json'), 'utf8').split('"history"')[0] ?? ''); } catch { return false; }
  }, 60_000, 100);
  const late = provisioning ? await applyAndSync(spi.createApp(LATE_APP.app, NS) + spi.addEndpoint(LATE_APP.app, NS, GEAR, LATE_APP.port)) : undefined;
  const r = await pending;
  const onboardMs = Date.now() - t0;
  await sleep(1500);
  const s = await stopLoads(ls); // before any assertion (they throw): the loads must not outlive the test
  t.true(provisioning, 'onboarding reached the provisioning step');
  t.is(late?.code, 0, late ? failureLines(late) : '');
  t.log(r.stdout.trim());
  if (r.code !== 0) t.log(r.stderr);
  t.is(r.code, 0, 'onboard succeeded');
  const tot = totals(s);
  figures.grow = { onboardMs, steps: /onboarded in .*$/m.exec(r.stdout)?.[0] ?? '', ...tot, perVip: Object.fromEntries(Object.entries(s).map(([v, x]) => [v, { sent: x.sent, failed: x.failed, gears: x.gears }])) };
  t.log(`grow: onboarding took ${(onboardMs / 1000).toFixed(1)} s; requests sent ${tot.sent}, failed ${tot.failed} (failed attempts ${tot.attemptsFailed})`);
  for (const [vip, x] of Object.entries(s)) {
    t.true(x.sent > 50, `${vip}: load ran`);
    t.is(x.failed, 0, `${vip}: ${JSON.stringify(x.failures)}`);
  }
  // rp3 masters its share
  const got = await waitHolders(want3, 10_000);
  t.deepEqual(got, want3);
  t.true(Object.values(got).includes(RP3.name), `${RP3.name} masters at least one VIP`);
  // the inventory: rp3 appended, every other line as it was
  const inv = readFileSync(HOSTS_YML, 'utf8');
  t.deepEqual(groupHosts(inv, 'proxies'), [...BASE, RP3.name]);
  // rp3 serves every route on its own address and through the VIP it masters
  const rp3Vip = VIPS3.find((v) => want3[v] === RP3.name)!;
  for (const a of APPS) {
    for (const name of [fqdn(a.app, NS), ...(a.alias ? [a.alias] : [])]) {
      const direct = run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '5', '-H', `Host: ${name}`, `http://${RP3.address}/`]).stdout;
      t.is(direct, '200', `${name} on rp3's address`);
      const via = run('ip', ['netns', 'exec', 'rpclient', 'curl', '-s', '-m', '5', '--resolve', `${name}:80:${rp3Vip}`, `http://${name}/`]).stdout;
      t.true(via.startsWith(`gear ${GEAR}:${a.port}`), `${name} via ${rp3Vip} (rp3): ${via.slice(0, 60)}`);
    }
  }
  const lateDirect = run('curl', ['-s', '-m', '5', '-H', `Host: ${fqdn(LATE_APP.app, NS)}`, `http://${RP3.address}/`]).stdout;
  t.true(lateDirect.startsWith(`gear ${GEAR}:${LATE_APP.port}`), `an app created during the onboarding is served by rp3: ${lateDirect.slice(0, 60)}`);
  const empty = run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '5', '-H', `Host: ${fqdn(EMPTY_APP, NS)}`, `http://${RP3.address}/`]).stdout;
  t.is(empty, '503', 'an app without backends answers 503 on rp3');
  t.true(existsSync(path.join(STATE_DIR, 'applied', `${RP3.name}.json`)), 'rp3 has applied digests (the runner keeps it up to date)');
});

test.serial('the new proxy leaves under load: zero failed requests, the others hold every VIP, the inventory is as before', async (t) => {
  t.timeout(600_000);
  const want2 = plannedMasters(BASE, VIPS3);
  const invBefore = setGroupVar(originalInventory, 'proxies', 'keepalived_vrrp_vips', VIPS3);
  const ls = loads(600_000);
  await sleep(1500);
  const t0 = Date.now();
  const r = await productCli(['offboard', RP3.name]);
  const offboardMs = Date.now() - t0;
  await sleep(1500);
  const s = await stopLoads(ls);
  t.log(r.stdout.trim());
  if (r.code !== 0) t.log(r.stderr);
  t.is(r.code, 0, 'offboard succeeded');
  const tot = totals(s);
  figures.shrink = { offboardMs, ...tot, perVip: Object.fromEntries(Object.entries(s).map(([v, x]) => [v, { sent: x.sent, failed: x.failed }])) };
  t.log(`shrink: offboarding took ${(offboardMs / 1000).toFixed(1)} s; requests sent ${tot.sent}, failed ${tot.failed} (failed attempts ${tot.attemptsFailed})`);
  for (const [vip, x] of Object.entries(s)) {
    t.true(x.sent > 50, `${vip}: load ran`);
    t.is(x.failed, 0, `${vip}: ${JSON.stringify(x.failures)}`);
  }
  t.deepEqual(await plannedHolders(t, want2), want2, `${BASE.join('+')} hold every VIP as planned`);
  t.is(readFileSync(HOSTS_YML, 'utf8'), invBefore, 'inventory back to what it was, byte for byte');
  // rp3's services are stopped
  const procs = run('ip', ['netns', 'pids', RP3.name]).stdout.trim().split('\n').filter(Boolean)
    .map((p) => run('cat', [`/proc/${p}/comm`]).stdout.trim());
  t.false(procs.includes('nginx'), `nginx stopped on rp3 (${procs.join(',')})`);
  t.false(procs.includes('keepalived'), 'keepalived stopped on rp3');
  t.false(existsSync(path.join(STATE_DIR, 'applied', `${RP3.name}.json`)));
});

// The watcher runs inside this (root) test process: on the prod profile the state belongs to the listener's user,
// whose own listener runs the same watcher (the CLI tests above already onboard as that user there).
(PROFILE === 'prod' ? test.skip : test.serial)('the inventory watcher: an operator appends rp3 to hosts.yml → onboarded; removes it → offboarded; no failed request', async (t) => {
  t.timeout(600_000);
  const { checkInventory, applyInventoryPlan } = await import('../../generator/src/onboard/watcher.js');
  const { loadConfig } = await import('../../generator/src/config.js');
  const { addHostToGroup, removeHostFromGroup } = await import('../../generator/src/onboard/inventory.js');
  const config = await loadConfig({ file: CONFIG });
  const base = readFileSync(HOSTS_YML, 'utf8');
  // a first check adopts the group as it is (or finds nothing to do after the CLI runs above)
  const first = await checkInventory(config);
  if (first.actions.length) await applyInventoryPlan(config, first);
  t.deepEqual((await checkInventory(config)).actions, []);
  const ls = loads(600_000);
  await sleep(1000);
  // the operator's edit (as by hand: appended at the end of the proxies group)
  writeFileSync(HOSTS_YML, addHostToGroup(base, 'proxies', RP3.name, { vars: { ansible_host: RP3.address } }));
  const plan = await checkInventory(config);
  t.deepEqual(plan.actions, [{ kind: 'onboard', host: RP3.name, address: RP3.address }]);
  const t0 = Date.now();
  const out = await applyInventoryPlan(config, plan, { progress: (l) => t.log(l) });
  const growMs = Date.now() - t0;
  t.true(out[0]?.ok, out[0]?.error);
  const want3 = plannedMasters([...BASE, RP3.name], VIPS3);
  t.deepEqual(await plannedHolders(t, want3), want3);
  t.deepEqual((await checkInventory(config)).actions, [], 'nothing left to do');
  // the operator removes it again
  writeFileSync(HOSTS_YML, removeHostFromGroup(readFileSync(HOSTS_YML, 'utf8'), 'proxies', RP3.name));
  const plan2 = await checkInventory(config);
  t.deepEqual(plan2.actions, [{ kind: 'offboard', host: RP3.name, address: RP3.address }]);
  const t1 = Date.now();
  const out2 = await applyInventoryPlan(config, plan2, { progress: (l) => t.log(l) });
  const shrinkMs = Date.now() - t1;
  t.true(out2[0]?.ok, out2[0]?.error);
  await sleep(1000);
  const s = await stopLoads(ls);
  const tot = totals(s);
  figures.watcher = { growMs, shrinkMs, ...tot };
  t.log(`watcher: onboard ${(growMs / 1000).toFixed(1)} s, offboard ${(shrinkMs / 1000).toFixed(1)} s; requests sent ${tot.sent}, failed ${tot.failed} (failed attempts ${tot.attemptsFailed})`);
  for (const [vip, x] of Object.entries(s)) t.is(x.failed, 0, `${vip}: ${JSON.stringify(x.failures)}`);
  const want2 = plannedMasters(BASE, VIPS3);
  t.deepEqual(await plannedHolders(t, want2), want2);
  t.is(readFileSync(HOSTS_YML, 'utf8'), base);
});
