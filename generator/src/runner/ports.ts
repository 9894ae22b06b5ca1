// The runner bound to a Config: its settings, and its ports (digests from the routing state, proxies from the
// inventory minus hosts not onboarded yet). Low-level pieces only: the callers compose them (the listener,
// `paas-rproxy sync` and `apply --sync` in cli/sync.ts, onboarding's catch-up).
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { packageRoot, type Config } from '../config.js';
import { appDigest } from '../vars/digest.js';
import { loadState, type StateStore } from '../vars/store.js';
import { readIndexDigests } from '../vars/load.js';
import { pendingMigration } from '../vars/migrate.js';
import type { State } from '../state/types.js';
import type { DigestView } from './pending.js';
import { fleetProxies } from '../status/fleet.js';
import { proxiesOf } from './inventory.js';
import type { RunnerPorts, RunnerSettings } from './runner.js';

export function runnerSettings(config: Config): RunnerSettings {
  return {
    stateDir: config.state_dir,
    playbook: {
      command: config.ansible.command, playbook: config.ansible.playbook, inventoryDir: config.inventory_dir,
      stateDir: config.state_dir, extraArgs: config.ansible.extra_args, routesPlaybook: routesPlaybookFor(config.ansible.playbook),
    },
    quietMs: config.runner.quiet_ms,
    maxWaitMs: config.runner.max_wait_ms,
    burstQuietMs: config.runner.burst_quiet_ms,
    retryInitialMs: config.runner.retry_initial_ms,
    retryMaxMs: config.runner.retry_max_ms,
    reconcileIntervalS: config.runner.reconcile_interval_s,
    lockTimeoutMs: 30 * 60 * 1000, // a run (even a full one) never takes this long; a waiting CLI says who holds it
  };
}

/**
 * The shipped ansible/routes.yml, when the configured playbook is the shipped site.yml (runner/command.ts). A
 * playbook of the operator's own keeps its targeted runs on itself: a routes.yml that happens to lie beside it
 * is not known to run the routes task, and an ok recap would record apps as applied.
 */
function routesPlaybookFor(playbook: string): string | undefined {
  const real = (p: string): string | null => { try { return realpathSync(p); } catch { return null; } };
  const shipped = path.join(packageRoot(), 'ansible');
  const routes = path.join(shipped, 'routes.yml');
  const site = real(playbook);
  return site !== null && site === real(path.join(shipped, 'site.yml')) && existsSync(routes) ? routes : undefined;
}

export function digestsOf(state: State): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, app] of state.apps) out[id] = appDigest(app);
  return out;
}

/**
 * The digests of the store's current state as a live view: no object of 10,000 keys per pass (appDigest is cached
 * per immutable app object). It follows the store's commits: read it synchronously.
 */
export function storeDigests(store: StateStore): DigestView {
  return {
    get size() { return store.state.apps.size; },
    get: (id) => { const app = store.state.apps.get(id); return app === undefined ? undefined : appDigest(app); },
    keys: () => store.state.apps.keys(),
  };
}

export function runnerPorts(config: Config, store?: StateStore): RunnerPorts {
  return {
    // the listener: a live view of its store, re-read first if another process wrote
    ...(store ? { view: async () => { await store.refresh(); return storeDigests(store); } } : {}),
    // From the listener's store (in memory, re-read only when another process wrote), else from index.json
    // alone (no app file parsed: 10,000 apps cost ~1 MiB of JSON). loadState when there is no index yet or an
    // older layout is still around: it migrates, so every targeted run the runner starts finds the current
    // layout (site.yml migrates on full runs only).
    digests: async () => {
      if (store) { await store.refresh(); return digestsOf(store.state); }
      const index = (await pendingMigration(config)).length === 0 ? await readIndexDigests(config) : null;
      return index ?? digestsOf(await loadState(config));
    },
    // hosts not onboarded yet (in the group, not yet in <state_dir>/fleet.json) get no routes runs
    proxies: async () => fleetProxies(config, await proxiesOf(config)),
  };
}
