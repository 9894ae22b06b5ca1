/**
 * onboard(HOST, ADDRESS): check → preflight (nothing touched before it passes) → provision HOST alone
 * (site.yml --limit HOST --skip-tags keepalived_vrrp, the host added to the proxies group through a temporary
 * overlay inventory source: the real inventory is untouched until HOST is proven; beside it, a second run prepares
 * HOST's keepalived_vrrp without keepalived itself: --tags keepalived_vrrp_prepare) → verify it serves the current
 * routes on its own address → add it to the inventory (round-trip edit) → catch up routes changed meanwhile →
 * re-spread the VIPs (keepalived_vrrp_conf tag on all proxies: keepalived.conf, reload, then start on HOST) → wait
 * until every VIP is held by its planned master.
 * Each step is a function of the context (OnboardRun), run by the shared step runner (steps.ts).
 */
import path from 'node:path';
import type { Config } from '../config.js';
import { RproxyError } from '../errors.js';
import type { State } from '../state/types.js';
import { parseIp } from '../net/address.js';
import { digestsOf } from '../runner/ports.js';
import { allHosts, groupHosts } from '../runner/inventory.js';
import { addHostToGroup, overlayInventory } from './inventory.js';
import type { Connection } from './connection.js';
import { formatPreflight, failedChecks, type PreflightReport } from './preflight.js';
import { formatVerifyFailures, type VerifyResult } from './verify.js';
import { plannedMasters, formatHolders } from './vips.js';
import { OpTracker, type StepRecord } from './records.js';
import { failed, runSteps, type Progress, type Step, type StepResult } from './steps.js';
import { playbookCommand, realPorts, type OpPorts } from './operations.js';

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

const HOST_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;

/** One onboarding: its inputs, its ports, and what the steps found so far (each step reads what earlier ones set). */
export class OnboardRun {
  readonly host: string;
  readonly address: string;
  readonly group: string;
  readonly trigger: string;
  invFile = '';
  invText = '';
  members: string[] = [];
  others: string[] = [];
  conn: Connection | null = null;
  vars: Record<string, unknown> = {};
  preflight: PreflightReport | null = null;
  snapState: State | null = null;
  snapshot: Record<string, string> = {};
  verify: VerifyResult | null = null;
  vipsOk = false;
  byVip: Record<string, string[]> = {};
  constructor(readonly config: Config, readonly o: OnboardOptions, readonly p: OpPorts) {
    this.host = o.host;
    this.address = o.address;
    this.group = config.proxies_group;
    this.trigger = o.by === 'listener' ? 'onboard (listener)' : 'onboard';
  }

  get all(): string[] { return [...this.others, this.host]; }
}

/** 1. inventory checks (read only) */
export async function checkStep(c: OnboardRun): Promise<StepResult> {
  const { host, address, group } = c;
  const { file, text } = await c.p.readInventory();
  c.invFile = file; c.invText = text;
  c.members = groupHosts(text, group, file);
  if (c.o.inInventory) {
    if (!c.members.includes(host)) throw new RproxyError('ERR_INPUT', `${host} is not in group ${group} of ${file}`);
  } else if (c.members.includes(host)) {
    throw new RproxyError('ERR_INPUT', `${host} is already in group ${group} of ${file}: it is onboarded (to re-provision it run site.yml --limit ${host}; to replace it, offboard it first)`);
  }
  for (const [name, vars] of allHosts(text, file)) {
    if (name !== host && (vars.ansible_host === address || vars.keepalived_vrrp_address === address)) {
      throw new RproxyError('ERR_INPUT', `address ${address} already belongs to ${name} in ${file}`);
    }
  }
  await c.p.readFleet(); // a corrupt fleet record stops the operation here, before anything changes
  c.others = c.members.filter((h) => h !== host);
  return { detail: `${c.others.length} proxies in service: ${c.others.join(', ') || 'none'}` };
}

/** 2. preflight — nothing is touched before it passes */
export async function preflightStep(c: OnboardRun): Promise<StepResult> {
  const { host, address, o } = c;
  const { conn, vars } = await c.p.resolveConnection(host, o.inInventory ? {} : { address, group: c.group });
  c.conn = conn; c.vars = vars;
  if (o.inInventory && conn.address !== address) throw new RproxyError('ERR_INPUT', `${host} has ansible_host ${conn.address} in the inventory, not ${address}`);
  const pf = await c.p.preflight(conn, { ...(o.minFreeMiB !== undefined ? { minFreeMiB: o.minFreeMiB } : {}), ...(o.passwordFile ? { passwordFile: o.passwordFile } : {}) });
  c.preflight = pf;
  if (!pf.ok) {
    return failed(`failed checks: ${failedChecks(pf)}`,
      new RproxyError('ERR_PREFLIGHT_FAILED', `preflight of ${host} failed (${failedChecks(pf)}): nothing was changed (inventory, proxies and VIPs untouched).\n${formatPreflight(pf)}`));
  }
  for (const line of formatPreflight(pf).trimEnd().split('\n')) c.o.progress?.(`    ${line}`);
  return { detail: `all ${pf.checks.length} checks passed${pf.bootstrapped ? ' (controller key installed with the password)' : ''}` };
}

/**
 * 3. provision HOST alone (not yet in the VRRP set): nginx and every route; beside it (a second ansible-playbook
 * process, so its tasks do not add to the provision's time) the part of keepalived_vrrp that does not touch
 * keepalived: packages and the health watcher. keepalived is neither configured nor started: HOST holds no VIP.
 */
export async function provisionStep(c: OnboardRun): Promise<StepResult> {
  const { config, host, group } = c;
  c.snapState = await c.p.loadState();
  c.snapshot = digestsOf(c.snapState);
  const overlay = c.o.inInventory ? null : overlayInventory({ [group]: [{ name: host, vars: { ansible_host: c.address } }] });
  const inv = (src: string | null) => ['-i', config.inventory_dir, ...(src ? ['-i', src] : []), config.ansible.playbook, '--limit', host];
  const run = async (src: string | null) => {
    // both end before the step does (no run left behind), whichever fails first
    const [prov, prep] = await Promise.allSettled([
      c.p.play(playbookCommand(config, [...inv(src), '--skip-tags', 'keepalived_vrrp'], 'routes-full', [host]), c.trigger),
      c.p.playBeside(playbookCommand(config, [...inv(src), '--tags', 'keepalived_vrrp_prepare'], 'vrrp', [host]), c.trigger),
    ]);
    if (prov.status === 'rejected') throw prov.reason;
    if (prep.status === 'rejected') throw prep.reason;
    return { prov: prov.value, prep: prep.value };
  };
  const { prov, prep } = overlay ? await c.p.withOverlay(overlay, run) : await run(null);
  if (prov.result !== 'ok') {
    return failed(prov.error ?? 'failed', new RproxyError('ERR_PLAYBOOK_FAILED', `provisioning ${host} failed; the inventory and the VIPs are untouched: ${prov.error ?? ''}`));
  }
  if (prep.result !== 'ok') {
    return failed(`keepalived_vrrp_prepare: ${prep.error ?? 'failed'}`, new RproxyError('ERR_PLAYBOOK_FAILED', `preparing keepalived on ${host} (packages, health watcher) failed; nginx and the routes are provisioned, the inventory and the VIPs are untouched: ${prep.error ?? ''}`));
  }
  await c.p.writeApplied(host, c.snapshot);
  return { detail: `${Object.keys(c.snapshot).length} apps applied in ${(prov.durationMs / 1000).toFixed(1)} s; keepalived prepared beside it in ${(prep.durationMs / 1000).toFixed(1)} s (not started)` };
}

/** 4. verify it serves the routes on its own address */
export async function verifyStep(c: OnboardRun): Promise<StepResult> {
  const { host, snapshot } = c;
  const snapState = c.snapState as State;
  const fleetAddrs = allHosts(c.invText, c.invFile);
  const refHost = c.others.find((h) => typeof fleetAddrs.get(h)?.ansible_host === 'string');
  const reference = refHost ? String(fleetAddrs.get(refHost)?.ansible_host) : null;
  // what it was provisioned with, minus apps changed since (those reach it with the catch-up below; the
  // proxies in service may already have the newer version)
  const nowDigests = await c.p.digests();
  const stable = { ...snapState, apps: new Map([...snapState.apps].filter(([id]) => nowDigests[id] === snapshot[id])) };
  const ver = await c.p.verify(stable, c.address, reference, c.o.verifyMax ?? 500);
  c.verify = ver;
  if (!ver.ok) {
    return failed(formatVerifyFailures(ver), new RproxyError('ERR_VERIFY_FAILED', `${host} was provisioned but does not serve the current routes (${ver.failures.length} of ${ver.requests} checks failed: ${formatVerifyFailures(ver)}); it is not in the inventory and holds no VIP${c.o.inInventory ? ' (it stays in the inventory as the operator put it, outside the VRRP set)' : ''}`));
  }
  return { detail: `${ver.checkedApps} of ${ver.apps} apps, ${ver.requests} requests${ver.reference ? `, same answers as ${refHost} (${ver.reference})` : ''} (requests ${(ver.durationMs / 1000).toFixed(1)} s)` };
}

/** 5. the inventory (round-trip edit: comments and order kept; appended at the end of the group) */
export async function inventoryStep(c: OnboardRun): Promise<StepResult> {
  const { host, address, group } = c;
  let detail = 'already there (added by the operator)';
  if (!c.o.inInventory) {
    await c.p.editInventory((text, file) => addHostToGroup(text, group, host, {
      vars: { ansible_host: address }, comment: `added by paas-rproxy onboard ${new Date().toISOString().slice(0, 19)}Z`,
    }, file));
    detail = `${host} appended (ansible_host ${address})`;
  }
  // from now on the runner's routes runs include it (fleetProxies): it serves the routes, and it is about
  // to master VIPs
  await c.p.fleetAdd({ name: host, address });
  return { detail };
}

/** 6. routes changed while it was provisioned (snapshot → now); later changes reach it through the runner */
export async function catchUpStep(c: OnboardRun): Promise<StepResult> {
  const cu = await c.p.catchUp(c.host);
  return { detail: cu.runs.length ? `${cu.runs.length} run(s): ${cu.ok ? 'ok' : 'still lagging (the runner retries)'}` : 'nothing changed meanwhile' };
}

/** The re-spread: the layout and keepalived.conf on every proxy, the running keepalived reloaded, then the stopped
 * one (HOST, prepared by the provision step) started. */
export function respreadCommand(config: Config, group: string, hosts: readonly string[]) {
  return playbookCommand(config, ['-i', config.inventory_dir, config.ansible.playbook, '--tags', 'keepalived_vrrp_conf', '--limit', group], 'vrrp', [...hosts].sort());
}

/** 7. re-spread the VIPs over the grown group */
export async function vrrpStep(c: OnboardRun): Promise<StepResult> {
  const vr = await c.p.play(respreadCommand(c.config, c.group, c.all), c.trigger);
  if (vr.result !== 'ok') {
    return failed(vr.error ?? 'failed', new RproxyError('ERR_PLAYBOOK_FAILED', `${c.host} serves the routes and is in the inventory, but the VRRP run failed: ${vr.error ?? ''}\nRe-run it: ${vr.command}`));
  }
  return { detail: `ok in ${(vr.durationMs / 1000).toFixed(1)} s` };
}

/** 8. wait until every VIP is held by its planned master */
export async function vipsStep(c: OnboardRun): Promise<StepResult> {
  const { host } = c;
  let r: StepResult;
  try {
    const planned = plannedMasters(c.all, c.vars.keepalived_vrrp_vips, c.vars.keepalived_vrrp_router_id_base);
    const watch = c.p.vipWatch(await c.p.connections(c.all));
    try {
      const w = await watch.waitFor(planned, c.o.vipWaitMs ?? 60_000);
      c.vipsOk = w.ok; c.byVip = w.byVip;
      const mine = Object.entries(planned).filter(([, m]) => m === host).map(([v]) => v);
      r = { detail: `${w.ok ? 'as planned' : 'NOT as planned'} after ${(w.waitedMs / 1000).toFixed(1)} s: ${formatHolders(w.byVip)} (${host} masters ${mine.join(', ') || 'none'})`, ok: w.ok };
    } finally { watch.dispose(); }
  } catch (e) {
    r = { detail: `could not check the VIP holders: ${(e as Error).message}`, ok: false };
  }
  if (!c.vipsOk) r.error = new RproxyError('ERR_VIPS_NOT_SETTLED', `${host} is onboarded, but the VIPs are not held as planned (${formatHolders(c.byVip)}): check keepalived on the proxies`);
  return r;
}

export const ONBOARD_STEPS: ReadonlyArray<Step<OnboardRun>> = [
  { name: 'check', what: (c) => `checking the inventory (${c.group})`, run: checkStep },
  { name: 'preflight', what: (c) => `preflight over SSH (${c.address})`, run: preflightStep },
  { name: 'provision', what: (c) => `provisioning ${c.host} alone with ${path.basename(c.config.ansible.playbook)} (nginx and the current routes; beside it keepalived's packages and health watcher, keepalived not started: it comes with the VIP re-spread)`, run: provisionStep },
  { name: 'verify', what: (c) => `verifying ${c.host} serves the current routes on ${c.address}:80 (Host headers)`, run: verifyStep },
  { name: 'inventory', what: (c) => `adding ${c.host} to group ${c.group} of ${path.basename(c.invFile)}`, run: inventoryStep },
  { name: 'catch-up', what: () => 'applying routes changed meanwhile', run: catchUpStep },
  { name: 'vrrp', what: (c) => `re-spreading the VIPs over ${c.all.join(', ')} (keepalived_vrrp_conf tag on all proxies: reload, then start on ${c.host})`, run: vrrpStep },
  { name: 'vips', what: (c) => `waiting until ${c.host} masters its share of the VIPs`, run: vipsStep },
];

export async function onboard(config: Config, o: OnboardOptions, ports?: OpPorts): Promise<OnboardResult> {
  const progress = o.progress ?? (() => undefined);
  const { host, address } = o;
  if (!HOST_RE.test(host)) throw new RproxyError('ERR_USAGE', `"${host}" is not a valid inventory host name`);
  if (parseIp(address) === null) throw new RproxyError('ERR_USAGE', `--address "${address}" is not an IP address`);
  const c = new OnboardRun(config, o, ports ?? realPorts(config, progress));
  const tr = new OpTracker(config.state_dir, 'onboard', host, address, o.by ?? 'cli');
  const steps = await runSteps('onboard', host, ONBOARD_STEPS, c, tr, progress);
  return { host, address, durationMs: tr.elapsedMs, steps, preflight: c.preflight as PreflightReport, verify: c.verify as VerifyResult, vips: c.byVip, vipsOk: c.vipsOk };
}
