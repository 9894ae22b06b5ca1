// Wiring of the runner to the core: settings from Config, digests from the state (core's appDigest),
// proxies from the inventory, and syncNow() for `paas-rproxy sync` and `apply --sync`.
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import type { Config } from '../config.js';
import { RproxyError } from '../errors.js';
import { appDigest } from '../vars/digest.js';
import { loadState } from '../vars/store.js';
import { readIndexDigests } from '../vars/load.js';
import { pendingMigration } from '../vars/migrate.js';
import type { StateStore } from '../vars/store.js';
import type { State } from '../state/types.js';
import { groupHosts, inventoryFile } from './inventory.js';
import { syncPass, type Log, type RunnerPorts, type RunnerSettings, type SyncResult } from './runner.js';
import { updateStatus, recordRun } from '../status/file.js';
import { fleetProxies } from '../onboard/watcher.js';

export function runnerSettings(config: Config): RunnerSettings {
  return {
    stateDir: config.state_dir,
    proxiesGroup: config.proxies_group,
    playbook: {
      command: config.ansible.command, playbook: config.ansible.playbook, inventoryDir: config.inventory_dir,
      stateDir: config.state_dir, extraArgs: config.ansible.extra_args,
    },
    quietMs: config.runner.quiet_ms,
    maxWaitMs: config.runner.max_wait_ms,
    retryInitialMs: config.runner.retry_initial_ms,
    retryMaxMs: config.runner.retry_max_ms,
    reconcileIntervalS: config.runner.reconcile_interval_s,
    lockTimeoutMs: 30 * 60 * 1000, // a run (even a full one) never takes this long; a waiting CLI says who holds it
  };
}

export function digestsOf(state: State): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, app] of state.apps) out[id] = appDigest(app);
  return out;
}

/** The inventory must exist before anything runs Ansible against it: say which setting names it. */
export async function requireInventory(config: Config): Promise<void> {
  const st = await fs.stat(config.inventory_dir).catch(() => null);
  if (!st?.isDirectory()) {
    throw new RproxyError('ERR_CONFIG_INVALID', `the inventory ${config.inventory_dir} does not exist: pass --inventory DIR, or set inventory_dir in the config file (${config.source ?? 'none: --config FILE or PAAS_RPROXY_CONFIG'})`);
  }
}

/** The proxies group's hosts in inventory order: hosts.yml parsed directly, else `ansible-inventory --list`. */
export async function proxiesOf(config: Config): Promise<string[]> {
  await requireInventory(config);
  const f = await inventoryFile(config.inventory_dir);
  if (f) return groupHosts(await fs.readFile(f, 'utf8'), config.proxies_group, f);
  const out = await new Promise<string>((resolve, reject) => {
    execFile('ansible-inventory', ['-i', config.inventory_dir, '--list'], { maxBuffer: 64 << 20 }, (e, stdout) => (e ? reject(e) : resolve(stdout)));
  });
  const j = JSON.parse(out) as Record<string, { hosts?: string[]; children?: string[] }>;
  const seen: string[] = [];
  const walk = (g: string, depth: number) => {
    const n = j[g];
    if (!n || depth > 50) return;
    for (const h of n.hosts ?? []) if (!seen.includes(h)) seen.push(h);
    for (const c of n.children ?? []) walk(c, depth + 1);
  };
  walk(config.proxies_group, 0);
  return seen;
}

export function runnerPorts(config: Config, store?: StateStore): RunnerPorts {
  return {
    // From the listener's store (in memory, re-read only when another process wrote), else from index.json
    // alone (no app file parsed: 10,000 apps cost ~1 MiB of JSON). loadState when there is no index yet or an
    // older layout is still around: it migrates, so every targeted run the runner starts finds the current
    // layout (site.yml migrates on full runs only).
    digests: async () => {
      if (store) { await store.refresh(); return digestsOf(store.state); }
      const index = (await pendingMigration(config)).length === 0 ? await readIndexDigests(config) : null;
      return index ?? digestsOf(await loadState(config));
    },
    // hosts not onboarded yet (issue 5: in the group, not yet in <state_dir>/fleet.json) get no routes runs
    proxies: async () => fleetProxies(config, await proxiesOf(config)),
  };
}

/** A change marker of the inventory's hosts.yml (for a Runner that triggers VRRP runs itself; unused by default). */
export async function inventoryMarker(config: Config): Promise<string | null> {
  const f = await inventoryFile(config.inventory_dir);
  if (!f) return null;
  return createHash('sha256').update(await fs.readFile(f)).digest('hex');
}

export interface SyncNowOptions {
  /** structured log sink; default: none */
  log?: Log;
  /** full run for every proxy (all apps, stale files removed) instead of what changed */
  full?: boolean;
  signal?: AbortSignal;
  /** who ran it, for the status file ("sync", "apply --sync") */
  by?: string;
}

/**
 * Runs the targeted playbook for what each proxy lacks since its last successful run (routing tag, proxies
 * only, one run at a time across processes) and records the per-host applied digests. Resolves with the
 * result when every proxy is up to date; throws RproxyError ERR_PLAYBOOK_FAILED (exit 4) naming the failing
 * host(s) and task(s) otherwise. For `paas-rproxy sync` and `paas-rproxy apply --sync`.
 */
export async function syncNow(config: Config, opts: SyncNowOptions = {}): Promise<SyncResult> {
  const res = await syncRecorded(config, opts);
  if (!res.ok) throw syncError(res);
  return res;
}

/** One sync pass recorded in the status file; the result also when a proxy failed (`sync --json` prints it). */
export async function syncRecorded(config: Config, opts: SyncNowOptions = {}): Promise<SyncResult> {
  const log: Log = opts.log ?? (() => undefined);
  const by = opts.by ?? 'sync';
  const res = await syncPass(runnerSettings(config), runnerPorts(config), log, {
    trigger: by, full: opts.full ?? false, ...(opts.signal ? { signal: opts.signal } : {}),
  });
  try {
    await updateStatus(config.state_dir, (s) => {
      for (const r of res.runs) recordRun(s, r, by);
      s.pendingApps = res.lagging;
    });
  } catch { /* the status file is informative only */ }
  return res;
}

/** ERR_PLAYBOOK_FAILED (exit 4) naming the failing host(s) and task(s) of a pass that left proxies behind. */
export function syncError(res: SyncResult): RproxyError {
  const errors = res.runs.filter((r) => r.error).map((r) => r.error as string);
  return new RproxyError('ERR_PLAYBOOK_FAILED', errors.length ? errors.join('\n') : `proxies still lacking apps: ${Object.keys(res.lagging).join(', ')}`);
}

export function formatSyncResult(res: SyncResult): string {
  if (res.runs.length === 0) return 'nothing to do: every proxy has the current routes\n';
  const lines: string[] = [];
  for (const r of res.runs) {
    lines.push(`run ${r.kind} on ${r.hosts.join(',')}: ${r.result} in ${(r.durationMs / 1000).toFixed(2)} s (${r.apps ? `${r.apps.length} app(s)` : 'all apps'})`);
    lines.push(`  command: ${r.command}`);
    for (const h of r.perHost) lines.push(`  ${h.host}: ${h.outcome}${h.task ? ` in task "${h.task}"` : ''}${h.message ? `: ${h.message}` : ''}`);
  }
  return lines.join('\n') + '\n';
}
