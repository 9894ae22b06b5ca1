/**
 * Moves the routing state of an older layout into the current one (<state_dir>/routes/index.json + apps/, paths.ts):
 * - paas-rproxy 0.1 kept it in the operator's inventory: <inventory>/group_vars/<proxies>/rproxy_routes.json (or
 *   the schema-1 rproxy_routes.yml) and its TLS material <inventory>/.rproxy_tls/;
 * - until issue 10 it was one file, <state_dir>/routes/rproxy_routes.json (schema 2), its TLS material already
 *   where it stays (routes/tls/).
 *
 * Crash-safe and idempotent, under the state lock (the caller holds it): the old files are parsed with the same
 * checks as the state itself, the new files written (TLS, app files, then the index, atomically), and only then
 * the old ones removed. Interrupted in between, the next run finds the index and only removes the old files (the
 * new state wins). The app digests do not change, so no proxy is re-synced because of the move.
 */
import { stat } from 'node:fs/promises';
import type { Config } from '../config.js';
import { removePath } from '../io/atomic.js';
import { emptyState } from '../state/types.js';
import { parseVars, readText, tlsReader } from './load.js';
import { writeState } from './write.js';
import { indexFilePath, inventoryTlsRoot, inventoryVarsFiles, routesDir, singleFilePath } from './paths.js';

export interface MigrationResult {
  /** the file the state came from (null when nothing was moved: none found, or the index already existed) */
  from: string | null;
  /** apps moved (0 when nothing was found or the state dir already had the state) */
  apps: number;
  /** old files removed (inventory files, the single file) */
  removed: string[];
}

const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

/** What a migration would do, without changing anything (`paas-rproxy migrate --check`, check mode). */
export async function pendingMigration(config: Config): Promise<string[]> {
  const { json, yaml } = inventoryVarsFiles(config);
  const found: string[] = [];
  for (const p of [json, yaml, inventoryTlsRoot(config), singleFilePath(config)]) if (await exists(p)) found.push(p);
  return found;
}

/** Brings any older layout into index.json + apps/. Call under the state lock. */
export async function migrateState(config: Config): Promise<MigrationResult> {
  const old = await pendingMigration(config);
  if (old.length === 0) return { from: null, apps: 0, removed: [] };
  const { json, yaml } = inventoryVarsFiles(config);
  const single = singleFilePath(config);
  let from: string | null = null;
  let apps = 0;
  if (!(await exists(indexFilePath(config)))) {
    // The newest layout that exists is the state: the single file (it was migrated from the inventory once),
    // then the inventory's JSON (when both JSON and YAML exist, a schema-1 -> 2 conversion was interrupted).
    const sources: [string, string][] = [[single, routesDir(config)], [json, config.inventory_dir], [yaml, config.inventory_dir]];
    for (const [file, base] of sources) {
      const text = await readText(file);
      if (text === null) continue;
      const state = await parseVars(text, file, tlsReader(base, file));
      await writeState(config, emptyState(), state, null);
      from = file;
      apps = state.apps.size;
      break;
    }
  }
  for (const p of old) await removePath(p);
  return { from, apps, removed: old };
}
