/**
 * offboard(HOST): check → reach every proxy over SSH → apply the layout WITHOUT HOST to the others
 * (keepalived_vrrp tag, --limit others, the layout group given by an overlay source) → stop keepalived on HOST
 * (it resigns its VIPs at once: priority-0 adverts) → wait until the others hold every VIP as planned → stop
 * nginx on HOST gracefully (in-flight requests finish) → remove HOST from the inventory.
 * Each step is a function of the context (OffboardRun), run by the shared step runner (steps.ts).
 */
import path from 'node:path';
import type { Config } from '../config.js';
import { RproxyError } from '../errors.js';
import { runnerSettings } from '../runner/ports.js';
import { vrrpCommand } from '../runner/command.js';
import { groupHosts } from '../runner/inventory.js';
import { overlayInventory, removeHostFromGroup } from './inventory.js';
import type { Connection } from './connection.js';
import { plannedMasters, formatHolders } from './vips.js';
import { SshConnectError, type SshSession } from './ssh.js';
import { OpTracker, type StepRecord } from './records.js';
import { failed, runSteps, type Progress, type Step, type StepResult } from './steps.js';
import { asRoot, playbookCommand, realPorts, type OpPorts, type VipWatcher } from './operations.js';

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

export const OFFBOARD_LAYOUT_GROUP = 'rproxy_offboard_keep';

/** One offboarding: its inputs, its ports, and what the steps found so far. dispose() closes its SSH sessions. */
export class OffboardRun {
  readonly host: string;
  readonly group: string;
  readonly inInventory: boolean;
  invFile = '';
  members: string[] = [];
  others: string[] = [];
  conn: Connection | null = null;
  /** HOST's session; null when it cannot be reached (--force) */
  session: SshSession | null = null;
  watch: VipWatcher | null = null;
  planned: Record<string, string> = {};
  byVip: Record<string, string[]> = {};
  constructor(readonly config: Config, readonly o: OffboardOptions, readonly p: OpPorts) {
    this.host = o.host;
    this.group = config.proxies_group;
    this.inInventory = o.inInventory ?? true;
  }

  dispose(): void {
    this.session?.dispose();
    this.watch?.dispose();
  }
}

/** 1. checks */
export async function checkStep(c: OffboardRun): Promise<StepResult> {
  const { host, group } = c;
  const { file, text } = await c.p.readInventory();
  c.invFile = file;
  c.members = groupHosts(text, group, file);
  if (c.inInventory && !c.members.includes(host)) throw new RproxyError('ERR_INPUT', `${host} is not in group ${group} of ${file}`);
  c.others = c.members.filter((h) => h !== host);
  if (c.others.length === 0) throw new RproxyError('ERR_INPUT', `${host} is the last proxy of ${group}: offboarding it would leave every VIP unserved`);
  await c.p.readFleet(); // a corrupt fleet record stops the operation here, before anything changes
  return { detail: `${c.others.length} proxies stay: ${c.others.join(', ')}` };
}

/** 2. reach everyone (before anything changes) */
export async function reachStep(c: OffboardRun): Promise<StepResult> {
  const { host, others } = c;
  const { conn, vars } = c.inInventory ? await c.p.resolveConnection(host) : await c.p.resolveConnection(host, { address: c.o.address ?? host, group: c.group });
  c.conn = conn;
  const otherConns = await c.p.connections(others);
  try {
    c.session = await c.p.connectSsh(conn, { readyTimeoutMs: 8000 });
  } catch (e) {
    if (!(e instanceof SshConnectError)) throw e;
    if (!c.o.force) {
      return failed(`${host}: ${e.message}`, new RproxyError('ERR_HOST_UNREACHABLE', `cannot reach ${host} (${e.message}); nothing was changed. If ${host} is gone for good, run offboard with --force (its keepalived cannot be stopped: it must never come back with its old configuration)`));
    }
  }
  c.watch = c.p.vipWatch(otherConns);
  c.planned = plannedMasters(others, vars.keepalived_vrrp_vips, vars.keepalived_vrrp_router_id_base);
  const before = await c.watch.holders(Object.keys(c.planned));
  const unreachableOthers = Object.entries(before).filter(([, v]) => v === null).map(([h]) => h);
  if (unreachableOthers.length) {
    return failed(`cannot reach ${unreachableOthers.join(', ')}`, new RproxyError('ERR_HOST_UNREACHABLE', `cannot reach ${unreachableOthers.join(', ')} over SSH; nothing was changed (the VIPs of ${host} must have somewhere to go)`));
  }
  return { detail: c.session ? 'all reachable' : `${host} unreachable (--force): continuing without stopping its services` };
}

/** 3. the layout without HOST on the others */
export async function vrrpStep(c: OffboardRun): Promise<StepResult> {
  const { config, host, others } = c;
  const overlay = overlayInventory({ [OFFBOARD_LAYOUT_GROUP]: others.map((name) => ({ name })) });
  const vr = await c.p.withOverlay(overlay, (src) => c.p.play(playbookCommand(config, [
    '-i', config.inventory_dir, '-i', src, config.ansible.playbook, '--tags', 'keepalived_vrrp', '--limit', others.join(','),
    '-e', JSON.stringify({ rproxy_vrrp_group: OFFBOARD_LAYOUT_GROUP }),
  ], 'vrrp', others), c.o.by === 'listener' ? 'offboard (listener)' : 'offboard'));
  if (vr.result !== 'ok') {
    return failed(vr.error ?? 'failed', new RproxyError('ERR_PLAYBOOK_FAILED', `the VRRP run on ${others.join(', ')} failed; ${host} is still in the inventory (re-run offboard, or restore with: ${vrrpCommand(runnerSettings(config).playbook, c.group, c.members).display}): ${vr.error ?? ''}`));
  }
  return { detail: `ok in ${(vr.durationMs / 1000).toFixed(1)} s` };
}

/** 4. HOST resigns its VIPs */
export async function releaseStep(c: OffboardRun): Promise<StepResult> {
  const { host, session } = c;
  if (!session) return { detail: 'skipped (unreachable)' };
  const r = await session.exec(asRoot(c.conn as Connection, 'if [ -d /run/systemd/system ]; then systemctl stop keepalived; else service keepalived stop; fi'), { timeoutMs: 30_000 });
  if (r.code !== 0) {
    return failed(`stopping keepalived failed: ${(r.stderr || r.stdout).trim()}`, new RproxyError('ERR_HOST_COMMAND_FAILED', `stopping keepalived on ${host} failed (${(r.stderr || r.stdout).trim()}); ${host} is still in the inventory`));
  }
  return { detail: 'keepalived stopped' };
}

/** 5. the others hold every VIP as planned */
export async function vipsStep(c: OffboardRun): Promise<StepResult> {
  const { host, session, planned } = c;
  const w = await (c.watch as VipWatcher).waitFor(planned, c.o.vipWaitMs ?? 60_000);
  c.byVip = w.byVip;
  if (session) {
    const left = await session.exec('ip -o addr show', { timeoutMs: 5000 });
    const still = Object.keys(planned).filter((v) => left.stdout.includes(` ${v}/`));
    if (still.length) {
      return failed(`${host} still holds ${still.join(', ')}`, new RproxyError('ERR_VIPS_NOT_SETTLED', `${host} still holds ${still.join(', ')} after keepalived stopped; it is still in the inventory`));
    }
  }
  if (!w.ok) {
    return failed(`not as planned after ${(w.waitedMs / 1000).toFixed(1)} s: ${formatHolders(w.byVip)}`, new RproxyError('ERR_VIPS_NOT_SETTLED', `the other proxies do not hold the VIPs as planned (${formatHolders(w.byVip)}); ${host} is still in the inventory, its nginx still runs`));
  }
  return { detail: `after ${(w.waitedMs / 1000).toFixed(1)} s: ${formatHolders(w.byVip)}` };
}

/** The script that stops nginx gracefully and keeps keepalived (and the health watcher) from starting at boot. */
export const STOP_SCRIPT = [
  'if [ -d /run/systemd/system ]; then systemctl stop nginx rproxy-health-watcher; systemctl disable keepalived rproxy-health-watcher >/dev/null 2>&1 || true',
  'else STOP_SCHEDULE=QUIT/30/TERM/5/KILL/5 /etc/init.d/nginx stop >/dev/null; update-rc.d keepalived disable >/dev/null 2>&1 || true',
  '  [ -x /etc/init.d/rproxy-health-watcher ] && /etc/init.d/rproxy-health-watcher stop >/dev/null; fi',
  'p=$(cat /run/nginx.pid 2>/dev/null) && kill -0 "$p" 2>/dev/null && echo "nginx still running" && exit 1; exit 0',
].join('\n');

/** 6. stop nginx gracefully (requests in flight finish), keep both from starting at boot */
export async function stopStep(c: OffboardRun): Promise<StepResult> {
  if (!c.session) return { detail: 'skipped (unreachable)' };
  // keepalived must not come back at boot with the old layout (it would claim its old VIPs)
  // (the health watcher of roles/keepalived_vrrp has nothing left to watch: stopped and disabled too)
  const r = await c.session.exec(asRoot(c.conn as Connection, STOP_SCRIPT), { timeoutMs: 60_000 });
  // a failure is recorded, not thrown: the VIPs have moved, the host leaves the inventory anyway
  return { detail: r.code === 0 ? 'nginx stopped (graceful); keepalived disabled at boot' : `nginx: ${(r.stdout + r.stderr).trim()}`, ok: r.code === 0 };
}

/** 7. the inventory */
export async function inventoryStep(c: OffboardRun): Promise<StepResult> {
  const { host, group } = c;
  let detail = 'already removed by the operator';
  if (c.inInventory) {
    await c.p.editInventory((text, file) => removeHostFromGroup(text, group, host, file));
    detail = `${host} removed from ${path.basename(c.invFile)}`;
  }
  await c.p.removeApplied(host);
  await c.p.fleetRemove(host);
  return { detail };
}

export const OFFBOARD_STEPS: ReadonlyArray<Step<OffboardRun>> = [
  { name: 'check', what: (c) => `checking the inventory (${c.group})`, run: checkStep },
  { name: 'reach', what: (c) => `connecting to ${c.host} and ${c.others.join(', ')} over SSH`, run: reachStep },
  { name: 'vrrp', what: (c) => `applying the VRRP layout without ${c.host} to ${c.others.join(', ')}`, run: vrrpStep },
  { name: 'release', what: (c) => `stopping keepalived on ${c.host} (it hands its VIPs over at once)`, run: releaseStep },
  { name: 'vips', what: (c) => `waiting until ${c.others.join(', ')} hold every VIP`, run: vipsStep },
  { name: 'stop', what: (c) => `stopping nginx on ${c.host} gracefully`, run: stopStep },
  { name: 'inventory', what: (c) => `removing ${c.host} from group ${c.group}`, run: inventoryStep },
];

export async function offboard(config: Config, o: OffboardOptions, ports?: OpPorts): Promise<OffboardResult> {
  const progress = o.progress ?? (() => undefined);
  const c = new OffboardRun(config, o, ports ?? realPorts(config, progress));
  const tr = new OpTracker(config.state_dir, 'offboard', o.host, o.address ?? null, o.by ?? 'cli');
  try {
    const steps = await runSteps('offboard', o.host, OFFBOARD_STEPS, c, tr, progress);
    return { host: o.host, durationMs: tr.elapsedMs, steps, vips: c.byVip, stopped: c.session !== null };
  } finally {
    c.dispose();
  }
}
