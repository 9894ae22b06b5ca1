/**
 * Inventory watcher: an operator adds a host to (or removes one from) the proxies group of hosts.yml;
 * the listener notices and onboards (or offboards) it. planInventoryChange() is pure: it compares the
 * group with the fleet record (<state_dir>/fleet.json: the proxies that are provisioned and in the VRRP
 * set) and says what to do. checkInventory() reads the files; applyInventoryPlan() carries the plan out.
 *
 * Same members but other VRRP layout inputs (VIP list, host order, keepalived_vrrp_* vars in hosts.yml or
 * group_vars/{all,proxies}) → a 'vrrp' action (a VRRP run on every proxy).
 *
 * How the listener uses it (instead of "inventory hash changed → vrrp run"):
 *   every few seconds (and at start): const plan = await checkInventory(config);
 *   if (plan.actions.length) { await applyInventoryPlan(config, plan, {log}); runner.notify('inventory'); }
 * applyInventoryPlan takes the playbook lock run by run (like every run), so it never overlaps the runner's
 * runs; the runner does not run routes on hosts that are not in the fleet yet (status/fleet.ts: fleetProxies).
 */
import { promises as fs } from 'node:fs';
import type { Config } from '../config.js';
import { parseIp } from '../net/address.js';
import { allHosts, groupHosts } from '../runner/inventory.js';
import { inventoryFile, respreadVips, type Progress } from './operations.js';
import { onboard } from './onboard.js';
import { offboard } from './offboard.js';
import { vrrpInputsKey } from './vrrpkey.js';
import { liveOperations, readOnboarding, type OpRecord } from './records.js';
import { readFleet, writeFleet, type FleetEntry } from '../status/fleet.js';

export type WatchAction =
  | { kind: 'onboard'; host: string; address: string }
  | { kind: 'offboard'; host: string; address: string | null }
  | { kind: 'adopt'; proxies: FleetEntry[]; vrrpKey?: string }
  | { kind: 'vrrp'; reason: string; vrrpKey: string };

export interface WatchProblem { host: string; problem: string }

export interface InventoryPlan {
  /** the group as the inventory lists it now (inventory order) */
  group: FleetEntry[];
  fleet: FleetEntry[] | null;
  added: string[];
  removed: string[];
  /** hosts skipped because an onboarding/offboarding of them runs right now (CLI or another process) */
  busy: string[];
  actions: WatchAction[];
  problems: WatchProblem[];
}

/** a failed automatic onboarding/offboarding is retried after this long */
export const RETRY_AFTER_MS = 5 * 60_000;

/**
 * Pure. No fleet record yet → adopt the group as it is (a first start never onboards hosts that already
 * serve). Added hosts (in the group, not in the fleet) → onboard, in inventory order (an address is
 * needed: ansible_host). Removed hosts (in the fleet, not in the group) → offboard (VIPs moved to the
 * others, services stopped) — unless that would leave no proxy. Hosts with an operation in progress, or
 * whose last automatic attempt failed less than `backoff` ago, are left alone (busy).
 */
export function planInventoryChange(
  group: FleetEntry[], fleet: FleetEntry[] | null, inProgress: ReadonlyArray<Pick<OpRecord, 'host' | 'op'>>,
  backoff: ReadonlyArray<{ host: string; until: number }> = [], now = Date.now(),
  keys: { current: string; recorded: string | undefined } | null = null,
): InventoryPlan {
  const plan: InventoryPlan = { group, fleet, added: [], removed: [], busy: [], actions: [], problems: [] };
  if (fleet === null) {
    plan.actions.push({ kind: 'adopt', proxies: group, ...(keys ? { vrrpKey: keys.current } : {}) });
    return plan;
  }
  const busy = new Set(inProgress.map((o) => o.host));
  for (const b of backoff) if (b.until > now) busy.add(b.host);
  const inFleet = new Set(fleet.map((f) => f.name));
  const inGroup = new Set(group.map((g) => g.name));
  for (const f of fleet) {
    if (inGroup.has(f.name)) continue;
    plan.removed.push(f.name);
    if (busy.has(f.name)) { plan.busy.push(f.name); continue; }
    const remaining = fleet.filter((x) => inGroup.has(x.name));
    if (remaining.length === 0) {
      plan.problems.push({ host: f.name, problem: `removed from the inventory, but it is the last proxy in service: its VIPs have nowhere to go (add another proxy first)` });
      continue;
    }
    plan.actions.push({ kind: 'offboard', host: f.name, address: f.address });
  }
  for (const g of group) {
    if (inFleet.has(g.name)) continue;
    plan.added.push(g.name);
    if (busy.has(g.name)) { plan.busy.push(g.name); continue; }
    if (!g.address || parseIp(g.address) === null) {
      plan.problems.push({ host: g.name, problem: `added to the inventory without an IP address: set ansible_host for it` });
      continue;
    }
    plan.actions.push({ kind: 'onboard', host: g.name, address: g.address });
  }
  // same members, but the layout inputs changed (VIP list, host order, keepalived vars): a VRRP run
  if (keys && plan.added.length === 0 && plan.removed.length === 0 && plan.problems.length === 0 && keys.current !== keys.recorded) {
    if (keys.recorded === undefined) plan.actions.push({ kind: 'adopt', proxies: fleet, vrrpKey: keys.current });
    else plan.actions.push({ kind: 'vrrp', reason: 'the VRRP layout inputs changed (VIPs, host order or keepalived_vrrp_* vars)', vrrpKey: keys.current });
  }
  return plan;
}

/** Reads hosts.yml, fleet.json and onboarding.json; returns the plan (changes nothing). */
export async function checkInventory(config: Config): Promise<InventoryPlan> {
  const file = await inventoryFile(config);
  const text = await fs.readFile(file, 'utf8');
  const vars = allHosts(text, file);
  const group = groupHosts(text, config.proxies_group, file).map((name) => {
    const a = vars.get(name)?.ansible_host;
    return { name, address: typeof a === 'string' ? a : null };
  });
  const fleet = await readFleet(config.state_dir);
  const ops = await readOnboarding(config.state_dir);
  // a failed automatic attempt is retried after RETRY_AFTER_MS (the operator fixes the host meanwhile)
  const backoff = ops.history.filter((h) => h.result === 'failed' && h.by === 'listener')
    .map((h) => ({ host: h.host, until: Date.parse(h.startedAt) + (h.durationMs ?? 0) + RETRY_AFTER_MS }));
  const key = await vrrpInputsKey(config, text);
  return planInventoryChange(group, fleet?.proxies ?? null, liveOperations(ops), backoff, Date.now(), { current: key, recorded: fleet?.vrrpKey });
}

export interface ApplyOutcome { action: WatchAction; ok: boolean; error?: string; durationMs: number }

/**
 * Carries the plan out, one action at a time (offboards first, so a replaced host's VIPs move before the
 * new one's spread). A failed action is reported and retried by a later check after RETRY_AFTER_MS (the
 * inventory still differs from the fleet).
 */
export async function applyInventoryPlan(config: Config, plan: InventoryPlan, opts: { log?: (event: string, fields: Record<string, unknown>) => void; progress?: Progress } = {}): Promise<ApplyOutcome[]> {
  const log = opts.log ?? (() => undefined);
  const out: ApplyOutcome[] = [];
  const ordered = [...plan.actions].sort((a, b) => (a.kind === 'offboard' ? 0 : 1) - (b.kind === 'offboard' ? 0 : 1));
  for (const p of plan.problems) log('inventory_problem', { host: p.host, problem: p.problem });
  for (const a of ordered) {
    const t0 = Date.now();
    try {
      if (a.kind === 'adopt') await writeFleet(config.state_dir, a.proxies, a.vrrpKey);
      else if (a.kind === 'vrrp') await respreadVips(config, { by: 'listener', ...(opts.progress ? { progress: opts.progress } : {}) });
      else if (a.kind === 'onboard') await onboard(config, { host: a.host, address: a.address, inInventory: true, by: 'listener', progress: (l) => { opts.progress?.(l); log('onboard_progress', { host: a.host, line: l }); } });
      else await offboard(config, { host: a.host, inInventory: false, ...(a.address ? { address: a.address } : {}), by: 'listener', progress: (l) => { opts.progress?.(l); log('offboard_progress', { host: a.host, line: l }); } });
      out.push({ action: a, ok: true, durationMs: Date.now() - t0 });
      log('inventory_action', { kind: a.kind, ...(a.kind === 'adopt' ? { proxies: a.proxies.map((p) => p.name) } : a.kind === 'vrrp' ? { reason: a.reason } : { host: a.host }), result: 'ok', duration_ms: Date.now() - t0 });
    } catch (e) {
      const error = (e as Error).message.split('\n')[0] ?? String(e);
      out.push({ action: a, ok: false, error, durationMs: Date.now() - t0 });
      log('inventory_action', { kind: a.kind, ...(a.kind === 'onboard' || a.kind === 'offboard' ? { host: a.host } : {}), result: 'failed', error, duration_ms: Date.now() - t0 });
    }
  }
  return out;
}
