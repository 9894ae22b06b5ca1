/**
 * Moves the routing state of an older installation out of the operator's inventory into the state directory.
 * Up to paas-rproxy 0.1 the state was <inventory>/group_vars/<proxies>/rproxy_routes.json (or the schema-1
 * rproxy_routes.yml) and its TLS material <inventory>/.rproxy_tls/; now it is <state_dir>/routes/ (paths.ts).
 *
 * Crash-safe and idempotent, under the state lock (the caller holds it): the old files are parsed with the same
 * checks as the state itself, the new files written (TLS first, then the vars, atomically), and only then the old
 * ones removed. Interrupted between the two steps, the next run finds the new state and only removes the old files.
 * The app digests do not change, so no proxy is re-synced because of the move.
 */
import { stat } from 'node:fs/promises';
import type { Config } from '../config.js';
import { removePath } from '../io/atomic.js';
import { emptyState } from '../state/types.js';
import { parseVars, readText, tlsReader } from './load.js';
import { writeState } from './write.js';
import { inventoryTlsRoot, inventoryVarsFiles, varsFilePath } from './paths.js';

export interface MigrationResult {
  /** what was found in the inventory: 'none', or the file the state came from */
  from: string | null;
  /** apps moved (0 when nothing was found or the state dir already had the state) */
  apps: number;
  /** old files removed from the inventory */
  removed: string[];
}

const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

/** What a migration would do, without changing anything (`paas-rproxy migrate --check`, check mode). */
export async function pendingMigration(config: Config): Promise<string[]> {
  const { json, yaml } = inventoryVarsFiles(config);
  const found: string[] = [];
  for (const p of [json, yaml, inventoryTlsRoot(config)]) if (await exists(p)) found.push(p);
  return found;
}

/** Moves an inventory-held state into <state_dir>/routes. Call under the state lock. */
export async function migrateFromInventory(config: Config): Promise<MigrationResult> {
  const old = await pendingMigration(config);
  if (old.length === 0) return { from: null, apps: 0, removed: [] };
  const { json, yaml } = inventoryVarsFiles(config);
  let from: string | null = null;
  let apps = 0;
  if ((await readText(varsFilePath(config))) === null) {
    // JSON first: when both exist, a schema-1 -> 2 conversion was interrupted and the JSON is the state
    for (const file of [json, yaml]) {
      const text = await readText(file);
      if (text === null) continue;
      const state = await parseVars(text, file, tlsReader(config.inventory_dir, file));
      await writeState(config, emptyState(), state, null);
      from = file;
      apps = state.apps.size;
      break;
    }
  }
  for (const p of old) await removePath(p);
  return { from, apps, removed: old };
}
