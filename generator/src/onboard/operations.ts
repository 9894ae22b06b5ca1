/**
 * Onboarding and offboarding of a proxy, step by step, each step recorded (onboarding.json, status.json).
 *
 * onboard(HOST, ADDRESS): check → preflight (nothing touched before it passes) → provision HOST alone
 *   (site.yml --limit HOST --skip-tags keepalived_vrrp, the host added to the proxies group through a
 *   temporary overlay inventory source: the real inventory is untouched until HOST is proven) → verify it
 *   serves the current routes on its own address → add it to the inventory (round-trip edit) → catch up
 *   routes changed meanwhile → re-spread the VIPs (keepalived_vrrp tag on all proxies) → wait until every
 *   VIP is held by its planned master.
 * offboard(HOST): check → reach every proxy over SSH → apply the layout WITHOUT HOST to the others
 *   (keepalived_vrrp tag, --limit others, the layout group given by an overlay source) → stop keepalived on
 *   HOST (it resigns its VIPs at once: priority-0 adverts) → wait until the others hold every VIP as planned
 *   → stop nginx on HOST gracefully (in-flight requests finish) → remove HOST from the inventory.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { RproxyError } from '../errors.js';
import { withLock } from '../io/lock.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadState } from '../vars/store.js';
import { digestsOf, runnerPorts, runnerSettings } from '../runner/ports.js';
import { syncPass, type RunRecord } from '../runner/runner.js';
import { runPlaybook, failureMessage, type SpawnResult } from '../runner/spawn.js';
import { shellQuote, stateDirArgs, vrrpCommand, type PlaybookCommand } from '../runner/command.js';
import { writeApplied, removeApplied } from '../runner/applied.js';
import { recordRun } from '../runner/record.js';
import { updateStatus } from '../status/file.js';
import { inventoryLockFile, playbookLockFile } from '../io/statedir.js';
import { readFleet, writeFleet, type FleetEntry } from '../status/fleet.js';
import { addHostToGroup, allHosts, groupHosts, overlayInventory, removeHostFromGroup } from './inventory.js';
import { resolveConnection, withOverlay, type Connection } from './connection.js';
import { runPreflight, formatPreflight, failedChecks, type PreflightReport } from './preflight.js';
import { verifyRoutes, formatVerifyFailures, type VerifyResult } from './verify.js';
import { VipWatch, plannedMasters, vipAddresses, formatHolders } from './vips.js';
import { connectSsh, shq, SshConnectError, type SshSession } from './ssh.js';
import { vrrpInputsKey } from './vrrpkey.js';
import { OpTracker, type StepRecord } from './records.js';

export type Progress = (line: string) => void;

export interface OnboardOptions {
  host: string;
  address: string;
  passwordFile?: string;
  minFreeMiB?: number;
  /** verify at most this many apps (spread over all), default 500 */
  verifyMax?: number;
  /** how long to wait for the VIPs to settle, default 60 s */
  vipWaitMs?: number;
  /** the host is in the inventory already (an operator added it; the watcher onboards it) */
  inInventory?: boolean;
  by?: string;
  progress?: Progress;
}

export interface OnboardResult {
  host: string;
  address: string;
  durationMs: number;
  steps: StepRecord[];
  preflight: PreflightReport;
  verify: VerifyResult;
  vips: Record<string, string[]>;
  vipsOk: boolean;
}

export interface OffboardOptions {
  host: string;
  /** continue when HOST cannot be reached (it is gone for good): its services cannot be stopped */
  force?: boolean;
  vipWaitMs?: number;
  /** the host was removed from the inventory already (by an operator; the watcher offboards it) */
  address?: string;
  inInventory?: boolean;
  by?: string;
  progress?: Progress;
}

export interface OffboardResult {
  host: string;
  durationMs: number;
  steps: StepRecord[];
  vips: Record<string, string[]>;
  stopped: boolean;
}

const HOST_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const isIp = (s: string) => IPV4_RE.test(s) || (s.includes(':') && /^[0-9A-Fa-f:.]+$/.test(s));

/** <inventory_dir>/hosts.yml (or .yaml): the file onboarding edits. */
export async function inventoryFile(config: Config): Promise<string> {
  for (const n of ['hosts.yml', 'hosts.yaml']) {
    const f = path.join(config.inventory_dir, n);
    try { await fs.access(f); return f; } catch { /* next */ }
  }
  throw new RproxyError('ERR_CONFIG_INVALID', `onboarding edits ${path.join(config.inventory_dir, 'hosts.yml')}, which does not exist (a YAML inventory with the ${config.proxies_group} group is needed)`);
}

async function editInventory(config: Config, edit: (text: string, file: string) => string): Promise<void> {
  const file = await inventoryFile(config);
  await withLock(inventoryLockFile(config.state_dir), async () => {
    const text = await fs.readFile(file, 'utf8');
    const out = edit(text, file);
    const st = await fs.stat(file);
    await writeFileAtomic(file, out, { mode: st.mode & 0o7777 });
  }, { timeoutMs: 60_000 });
}

function stepLine(op: string, host: string, n: number, total: number, what: string): string {
  return `[${op} ${host} ${n}/${total}] ${what}`;
}

let runIds = 100000;
function toRunRecord(r: SpawnResult, trigger: string): RunRecord {
  const perHost = [...r.outcomes.entries()].map(([host, outcome]) => {
    const f = r.parsed.failures.find((x) => x.host === host);
    return outcome === 'ok' ? { host, outcome } : { host, outcome, task: f?.task ?? '', message: f?.message ?? '' };
  });
  const ok = !r.aborted && r.exitCode === 0 && perHost.every((h) => h.outcome === 'ok');
  const rec: RunRecord = {
    id: ++runIds, kind: r.command.kind, trigger, command: r.command.display, argv: r.command.argv, hosts: [...r.command.hosts],
    apps: null, startedAt: r.startedAt, durationMs: r.durationMs, exitCode: r.exitCode, result: r.aborted ? 'aborted' : ok ? 'ok' : 'failed', perHost,
  };
  if (!ok) rec.error = failureMessage(r);
  return rec;
}

/** Runs a playbook command under the shared one-at-a-time lock and records it in status.json. */
async function play(config: Config, cmd: PlaybookCommand, trigger: string, progress: Progress): Promise<RunRecord> {
  progress(`    running: ${cmd.display}`);
  const r = await runPlaybook(cmd, {
    lockFile: playbookLockFile(config.state_dir), lockTimeoutMs: runnerSettings(config).lockTimeoutMs,
    onLockWait: () => progress('    waiting for another playbook run to finish (playbook.lock)'),
  });
  const rec = toRunRecord(r, trigger);
  await updateStatus(config.state_dir, (s) => recordRun(s, rec, trigger)).catch(() => undefined);
  return rec;
}

/** A script run as root on a host: through passwordless sudo when Ansible connects as another user (become). */
export function asRoot(conn: Pick<Connection, 'user'>, script: string): string {
  return conn.user === 'root' ? script : `sudo -n sh -c ${shq(script)}`;
}

function command(config: Config, args: string[], kind: PlaybookCommand['kind'], hosts: string[]): PlaybookCommand {
  const argv = [config.ansible.command, ...args, ...stateDirArgs(config.state_dir), ...config.ansible.extra_args];
  return { argv, display: shellQuote(argv), kind, playbook: config.ansible.playbook, hosts, apps: null };
}

async function connectionsOf(config: Config, hosts: string[]): Promise<Connection[]> {
  return Promise.all(hosts.map(async (h) => (await resolveConnection(config, h)).conn));
}

// ---------------------------------------------------------------------------------------------------- onboard
export async function onboard(config: Config, o: OnboardOptions): Promise<OnboardResult> {
  const progress = o.progress ?? (() => undefined);
  const { host, address } = o;
  const group = config.proxies_group;
  const TOTAL = 8;
  if (!HOST_RE.test(host)) throw new RproxyError('ERR_USAGE', `"${host}" is not a valid inventory host name`);
  if (!isIp(address)) throw new RproxyError('ERR_USAGE', `--address "${address}" is not an IP address`);
  const tr = new OpTracker(config.state_dir, 'onboard', host, address, o.by ?? 'cli');
  await tr.begin();
  let n = 0;
  const step = async (name: string, what: string) => { n++; progress(stepLine('onboard', host, n, TOTAL, what)); await tr.start(name); };
  const done = async (detail: string, ok = true) => { const s = await tr.end(ok, detail); progress(`    ${ok ? 'ok' : 'FAILED'} (${(s.ms / 1000).toFixed(1)} s) ${detail}`); };
  try {
    // 1. inventory checks (read only)
    await step('check', `checking the inventory (${group})`);
    const invFile = await inventoryFile(config);
    const invText = await fs.readFile(invFile, 'utf8');
    const members = groupHosts(invText, group, invFile);
    if (o.inInventory) {
      if (!members.includes(host)) throw new RproxyError('ERR_INPUT', `${host} is not in group ${group} of ${invFile}`);
    } else if (members.includes(host)) {
      throw new RproxyError('ERR_INPUT', `${host} is already in group ${group} of ${invFile}: it is onboarded (to re-provision it run site.yml --limit ${host}; to replace it, offboard it first)`);
    }
    for (const [name, vars] of allHosts(invText, invFile)) {
      if (name !== host && (vars.ansible_host === address || vars.keepalived_vrrp_address === address)) {
        throw new RproxyError('ERR_INPUT', `address ${address} already belongs to ${name} in ${invFile}`);
      }
    }
    const others = members.filter((h) => h !== host);
    await done(`${others.length} proxies in service: ${others.join(', ') || 'none'}`);

    // 2. preflight — nothing is touched before it passes
    await step('preflight', `preflight over SSH (${address})`);
    const { conn, vars } = await resolveConnection(config, host, o.inInventory ? {} : { address, group });
    if (o.inInventory && conn.address !== address) throw new RproxyError('ERR_INPUT', `${host} has ansible_host ${conn.address} in the inventory, not ${address}`);
    const pf = await runPreflight(conn, { ...(o.minFreeMiB !== undefined ? { minFreeMiB: o.minFreeMiB } : {}), ...(o.passwordFile ? { passwordFile: o.passwordFile } : {}) });
    if (pf.ok) for (const line of formatPreflight(pf).trimEnd().split('\n')) progress(`    ${line}`);
    if (!pf.ok) {
      await done(`failed checks: ${failedChecks(pf)}`, false);
      throw new RproxyError('ERR_PREFLIGHT_FAILED', `preflight of ${host} failed (${failedChecks(pf)}): nothing was changed (inventory, proxies and VIPs untouched).\n${formatPreflight(pf)}`);
    }
    await done(`all ${pf.checks.length} checks passed${pf.bootstrapped ? ' (controller key installed with the password)' : ''}`);

    // 3. provision HOST alone (not yet in the VRRP set)
    await step('provision', `provisioning ${host} alone with ${path.basename(config.ansible.playbook)} (nginx and the current routes; keepalived comes with the VIP re-spread)`);
    const snapState = await loadState(config);
    const snapshot = digestsOf(snapState);
    const overlay = o.inInventory ? null : overlayInventory({ [group]: [{ name: host, vars: { ansible_host: address } }] });
    const runProvision = (src: string | null) => play(config, command(config, [
      '-i', config.inventory_dir, ...(src ? ['-i', src] : []), config.ansible.playbook, '--limit', host, '--skip-tags', 'keepalived_vrrp',
    ], 'routes-full', [host]), o.by === 'listener' ? 'onboard (listener)' : 'onboard', progress);
    const prov = overlay ? await withOverlay(config.inventory_dir, overlay, runProvision) : await runProvision(null);
    if (prov.result !== 'ok') {
      await done(prov.error ?? 'failed', false);
      throw new RproxyError('ERR_PLAYBOOK_FAILED', `provisioning ${host} failed; the inventory and the VIPs are untouched: ${prov.error ?? ''}`);
    }
    await writeApplied(config.state_dir, host, snapshot);
    await done(`${Object.keys(snapshot).length} apps applied in ${(prov.durationMs / 1000).toFixed(1)} s`);

    // 4. verify it serves the routes on its own address
    await step('verify', `verifying ${host} serves the current routes on ${address}:80 (Host headers)`);
    const fleetAddrs = allHosts(invText, invFile);
    const refHost = others.find((h) => typeof fleetAddrs.get(h)?.ansible_host === 'string');
    const reference = refHost ? String(fleetAddrs.get(refHost)?.ansible_host) : null;
    // what it was provisioned with, minus apps changed since (those reach it with the catch-up below; the
    // proxies in service may already have the newer version)
    const nowDigests = digestsOf(await loadState(config));
    const stable = { ...snapState, apps: new Map([...snapState.apps].filter(([id]) => nowDigests[id] === snapshot[id])) };
    const ver = await verifyRoutes(stable, config.cloud_domain, address, reference, { max: o.verifyMax ?? 500 });
    if (!ver.ok) {
      await done(formatVerifyFailures(ver), false);
      throw new RproxyError('ERR_PLAYBOOK_FAILED', `${host} was provisioned but does not serve the current routes (${ver.failures.length} of ${ver.requests} checks failed: ${formatVerifyFailures(ver)}); it is not in the inventory and holds no VIP${o.inInventory ? ' (it stays in the inventory as the operator put it, outside the VRRP set)' : ''}`);
    }
    await done(`${ver.checkedApps} of ${ver.apps} apps, ${ver.requests} requests${ver.reference ? `, same answers as ${refHost} (${ver.reference})` : ''}`);

    // 5. the inventory (round-trip edit: comments and order kept; appended at the end of the group)
    await step('inventory', `adding ${host} to group ${group} of ${path.basename(invFile)}`);
    if (!o.inInventory) {
      await editInventory(config, (text, file) => addHostToGroup(text, group, host, {
        vars: { ansible_host: address }, comment: `added by paas-rproxy onboard ${new Date().toISOString().slice(0, 19)}Z`,
      }, file));
      await done(`${host} appended (ansible_host ${address})`);
    } else await done('already there (added by the operator)');
    // from now on the runner's routes runs include it (fleetProxies): it serves the routes, and it is about
    // to master VIPs
    await updateFleetAdd(config, { name: host, address });

    // 6. routes changed while it was provisioned (snapshot → now); later changes reach it through the runner
    await step('catch-up', 'applying routes changed meanwhile');
    const cu = await syncPass(runnerSettings(config), { ...runnerPorts(config), proxies: async () => [host] }, () => undefined, { trigger: 'onboard', onlyHosts: new Set([host]) });
    await done(cu.runs.length ? `${cu.runs.length} run(s): ${cu.ok ? 'ok' : 'still lagging (the runner retries)'}` : 'nothing changed meanwhile', true);

    // 7. re-spread the VIPs over the grown group
    await step('vrrp', `re-spreading the VIPs over ${[...others, host].join(', ')} (keepalived_vrrp tag on all proxies)`);
    const all = [...others, host];
    const vr = await play(config, vrrpCommand(runnerSettings(config).playbook, group, all), o.by === 'listener' ? 'onboard (listener)' : 'onboard', progress);
    if (vr.result !== 'ok') {
      await done(vr.error ?? 'failed', false);
      throw new RproxyError('ERR_PLAYBOOK_FAILED', `${host} serves the routes and is in the inventory, but the VRRP run failed: ${vr.error ?? ''}\nRe-run it: ${vr.command}`);
    }
    await done(`ok in ${(vr.durationMs / 1000).toFixed(1)} s`);

    // 8. wait until every VIP is held by its planned master
    await step('vips', `waiting until ${host} masters its share of the VIPs`);
    let vipsOk = false;
    let byVip: Record<string, string[]> = {};
    try {
      const planned = plannedMasters(all, vars.keepalived_vrrp_vips, vars.keepalived_vrrp_router_id_base);
      const watch = new VipWatch(await connectionsOf(config, all));
      try {
        const w = await watch.waitFor(planned, o.vipWaitMs ?? 60_000);
        vipsOk = w.ok; byVip = w.byVip;
        const mine = Object.entries(planned).filter(([, m]) => m === host).map(([v]) => v);
        await done(`${w.ok ? 'as planned' : 'NOT as planned'} after ${(w.waitedMs / 1000).toFixed(1)} s: ${formatHolders(w.byVip)} (${host} masters ${mine.join(', ') || 'none'})`, w.ok);
      } finally { watch.dispose(); }
    } catch (e) {
      await done(`could not check the VIP holders: ${(e as Error).message}`, false);
    }
    if (!vipsOk) throw new RproxyError('ERR_PLAYBOOK_FAILED', `${host} is onboarded, but the VIPs are not held as planned (${formatHolders(byVip)}): check keepalived on the proxies`);
    await tr.finish(true);
    return { host, address, durationMs: tr.elapsedMs, steps: tr.rec.steps, preflight: pf, verify: ver, vips: byVip, vipsOk };
  } catch (e) {
    await tr.finish(false, (e as Error).message.split('\n')[0]);
    throw e;
  }
}

async function updateFleetAdd(config: Config, entry: FleetEntry): Promise<void> {
  const f = await readFleet(config.state_dir);
  const invText = await fs.readFile(await inventoryFile(config), 'utf8');
  const hosts = allHosts(invText);
  const base: FleetEntry[] = f?.proxies ?? groupHosts(invText, config.proxies_group).map((h) => ({ name: h, address: typeof hosts.get(h)?.ansible_host === 'string' ? String(hosts.get(h)?.ansible_host) : null }));
  await writeFleet(config.state_dir, [...base.filter((p) => p.name !== entry.name), entry], await vrrpInputsKey(config, invText));
}

async function updateFleetRemove(config: Config, host: string): Promise<void> {
  const f = await readFleet(config.state_dir);
  const invText = await fs.readFile(await inventoryFile(config), 'utf8');
  const hosts = allHosts(invText);
  const base: FleetEntry[] = f?.proxies ?? groupHosts(invText, config.proxies_group).map((h) => ({ name: h, address: typeof hosts.get(h)?.ansible_host === 'string' ? String(hosts.get(h)?.ansible_host) : null }));
  await writeFleet(config.state_dir, base.filter((p) => p.name !== host), await vrrpInputsKey(config, invText));
}

/** VRRP run on every proxy (the watcher's answer to a changed VIP list or host order); records the inputs' key. */
export async function respreadVips(config: Config, opts: { by?: string; progress?: Progress } = {}): Promise<RunRecord> {
  const invText = await fs.readFile(await inventoryFile(config), 'utf8');
  const key = await vrrpInputsKey(config, invText);
  const hosts = groupHosts(invText, config.proxies_group);
  const rec = await play(config, vrrpCommand(runnerSettings(config).playbook, config.proxies_group, hosts), opts.by ?? 'vrrp', opts.progress ?? (() => undefined));
  if (rec.result !== 'ok') throw new RproxyError('ERR_PLAYBOOK_FAILED', rec.error ?? 'VRRP run failed');
  const f = await readFleet(config.state_dir);
  await writeFleet(config.state_dir, f?.proxies ?? hosts.map((name) => ({ name, address: null })), key);
  return rec;
}

// ---------------------------------------------------------------------------------------------------- offboard
export const OFFBOARD_LAYOUT_GROUP = 'rproxy_offboard_keep';

export async function offboard(config: Config, o: OffboardOptions): Promise<OffboardResult> {
  const progress = o.progress ?? (() => undefined);
  const { host } = o;
  const group = config.proxies_group;
  const inInventory = o.inInventory ?? true;
  const TOTAL = 7;
  const tr = new OpTracker(config.state_dir, 'offboard', host, o.address ?? null, o.by ?? 'cli');
  await tr.begin();
  let n = 0;
  const step = async (name: string, what: string) => { n++; progress(stepLine('offboard', host, n, TOTAL, what)); await tr.start(name); };
  const done = async (detail: string, ok = true) => { const s = await tr.end(ok, detail); progress(`    ${ok ? 'ok' : 'FAILED'} (${(s.ms / 1000).toFixed(1)} s) ${detail}`); };
  let session: SshSession | null = null;
  let watch: VipWatch | null = null;
  try {
    // 1. checks
    await step('check', `checking the inventory (${group})`);
    const invFile = await inventoryFile(config);
    const members = groupHosts(await fs.readFile(invFile, 'utf8'), group, invFile);
    if (inInventory && !members.includes(host)) throw new RproxyError('ERR_INPUT', `${host} is not in group ${group} of ${invFile}`);
    const others = members.filter((h) => h !== host);
    if (others.length === 0) throw new RproxyError('ERR_INPUT', `${host} is the last proxy of ${group}: offboarding it would leave every VIP unserved`);
    await done(`${others.length} proxies stay: ${others.join(', ')}`);

    // 2. reach everyone (before anything changes)
    await step('reach', `connecting to ${host} and ${others.join(', ')} over SSH`);
    const { conn, vars } = inInventory ? await resolveConnection(config, host) : await resolveConnection(config, host, { address: o.address ?? host, group });
    const otherConns = await connectionsOf(config, others);
    let reachable = true;
    try {
      session = await connectSsh(conn, { readyTimeoutMs: 8000 });
    } catch (e) {
      if (!(e instanceof SshConnectError)) throw e;
      reachable = false;
      if (!o.force) {
        await done(`${host}: ${e.message}`, false);
        throw new RproxyError('ERR_INPUT', `cannot reach ${host} (${e.message}); nothing was changed. If ${host} is gone for good, run offboard with --force (its keepalived cannot be stopped: it must never come back with its old configuration)`);
      }
    }
    watch = new VipWatch(otherConns);
    const planned = plannedMasters(others, vars.keepalived_vrrp_vips, vars.keepalived_vrrp_router_id_base);
    const before = await watch.holders(Object.keys(planned));
    const unreachableOthers = Object.entries(before).filter(([, v]) => v === null).map(([h]) => h);
    if (unreachableOthers.length) {
      await done(`cannot reach ${unreachableOthers.join(', ')}`, false);
      throw new RproxyError('ERR_INPUT', `cannot reach ${unreachableOthers.join(', ')} over SSH; nothing was changed (the VIPs of ${host} must have somewhere to go)`);
    }
    await done(reachable ? 'all reachable' : `${host} unreachable (--force): continuing without stopping its services`);

    // 3. the layout without HOST on the others
    await step('vrrp', `applying the VRRP layout without ${host} to ${others.join(', ')}`);
    const overlay = overlayInventory({ [OFFBOARD_LAYOUT_GROUP]: others.map((name) => ({ name })) });
    const vr = await withOverlay(config.inventory_dir, overlay, (src) => play(config, command(config, [
      '-i', config.inventory_dir, '-i', src, config.ansible.playbook, '--tags', 'keepalived_vrrp', '--limit', others.join(','),
      '-e', JSON.stringify({ rproxy_vrrp_group: OFFBOARD_LAYOUT_GROUP }),
    ], 'vrrp', others), o.by === 'listener' ? 'offboard (listener)' : 'offboard', progress));
    if (vr.result !== 'ok') {
      await done(vr.error ?? 'failed', false);
      throw new RproxyError('ERR_PLAYBOOK_FAILED', `the VRRP run on ${others.join(', ')} failed; ${host} is still in the inventory (re-run offboard, or restore with: ${vrrpCommand(runnerSettings(config).playbook, group, members).display}): ${vr.error ?? ''}`);
    }
    await done(`ok in ${(vr.durationMs / 1000).toFixed(1)} s`);

    // 4. HOST resigns its VIPs
    await step('release', `stopping keepalived on ${host} (it hands its VIPs over at once)`);
    if (session) {
      const r = await session.exec(asRoot(conn, 'if [ -d /run/systemd/system ]; then systemctl stop keepalived; else service keepalived stop; fi'), { timeoutMs: 30_000 });
      if (r.code !== 0) {
        await done(`stopping keepalived failed: ${(r.stderr || r.stdout).trim()}`, false);
        throw new RproxyError('ERR_INTERNAL', `stopping keepalived on ${host} failed (${(r.stderr || r.stdout).trim()}); ${host} is still in the inventory`);
      }
      await done('keepalived stopped');
    } else await done('skipped (unreachable)');

    // 5. the others hold every VIP as planned
    await step('vips', `waiting until ${others.join(', ')} hold every VIP`);
    const w = await watch.waitFor(planned, o.vipWaitMs ?? 60_000);
    if (session) {
      const left = await session.exec('ip -o addr show', { timeoutMs: 5000 });
      const still = Object.keys(planned).filter((v) => left.stdout.includes(` ${v}/`));
      if (still.length) {
        await done(`${host} still holds ${still.join(', ')}`, false);
        throw new RproxyError('ERR_INTERNAL', `${host} still holds ${still.join(', ')} after keepalived stopped; it is still in the inventory`);
      }
    }
    if (!w.ok) {
      await done(`not as planned after ${(w.waitedMs / 1000).toFixed(1)} s: ${formatHolders(w.byVip)}`, false);
      throw new RproxyError('ERR_INTERNAL', `the other proxies do not hold the VIPs as planned (${formatHolders(w.byVip)}); ${host} is still in the inventory, its nginx still runs`);
    }
    await done(`after ${(w.waitedMs / 1000).toFixed(1)} s: ${formatHolders(w.byVip)}`);

    // 6. stop nginx gracefully (requests in flight finish), keep both from starting at boot
    await step('stop', `stopping nginx on ${host} gracefully`);
    if (session) {
      // keepalived must not come back at boot with the old layout (it would claim its old VIPs)
      // (the health watcher of roles/keepalived_vrrp has nothing left to watch: stopped and disabled too)
      const r = await session.exec(asRoot(conn, [
        'if [ -d /run/systemd/system ]; then systemctl stop nginx rproxy-health-watcher; systemctl disable keepalived rproxy-health-watcher >/dev/null 2>&1 || true',
        'else STOP_SCHEDULE=QUIT/30/TERM/5/KILL/5 /etc/init.d/nginx stop >/dev/null; update-rc.d keepalived disable >/dev/null 2>&1 || true',
        '  [ -x /etc/init.d/rproxy-health-watcher ] && /etc/init.d/rproxy-health-watcher stop >/dev/null; fi',
        'p=$(cat /run/nginx.pid 2>/dev/null) && kill -0 "$p" 2>/dev/null && echo "nginx still running" && exit 1; exit 0',
      ].join('\n')), { timeoutMs: 60_000 });
      await done(r.code === 0 ? 'nginx stopped (graceful); keepalived disabled at boot' : `nginx: ${(r.stdout + r.stderr).trim()}`, r.code === 0);
    } else await done('skipped (unreachable)');

    // 7. the inventory
    await step('inventory', `removing ${host} from group ${group}`);
    if (inInventory) {
      await editInventory(config, (text, file) => removeHostFromGroup(text, group, host, file));
      await done(`${host} removed from ${path.basename(invFile)}`);
    } else await done('already removed by the operator');
    await removeApplied(config.state_dir, host);
    await updateFleetRemove(config, host);
    await tr.finish(true);
    return { host, durationMs: tr.elapsedMs, steps: tr.rec.steps, vips: w.byVip, stopped: session !== null };
  } catch (e) {
    await tr.finish(false, (e as Error).message.split('\n')[0]);
    throw e;
  } finally {
    session?.dispose();
    watch?.dispose();
  }
}
