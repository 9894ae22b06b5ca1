/**
 * Where the routing state lives: under the controller's state directory, never in the operator's inventory
 * (schema and layout: generator/src/vars/README.md). Ansible reads it from there in one place, the
 * nginx_rproxy_routes action plugin (nginx_rproxy_state_dir, fed by the inventory-wide rproxy_state_dir that the
 * runner also passes with -e). The names come from io/statedir.ts, the one owner of the state directory's paths;
 * these take a Config.
 */
import { join } from 'node:path';
import type { Config } from '../config.js';
import * as stateDir from '../io/statedir.js';

export const routesDir = (c: Config): string => stateDir.routesDir(c.state_dir);
export const indexFilePath = (c: Config): string => stateDir.routesIndexFile(c.state_dir);
export const appsDir = (c: Config): string => stateDir.routesAppsDir(c.state_dir);
/** `id` must be a checked app id (`[a-z0-9]+-[a-z0-9]+`): it becomes a file name */
export const appFilePath = (c: Config, id: string): string => join(appsDir(c), `${id}.json`);
/** The single-file state of schema 2 (before the per-app files), converted on the first run (vars/migrate.ts). */
export const singleFilePath = (c: Config): string => stateDir.routesSingleFile(c.state_dir);
export const tlsRoot = (c: Config): string => stateDir.routesTlsDir(c.state_dir);
/** relative to routesDir, as written into the vars */
export const tlsRelPath = (appId: string, alias: string, ext: 'crt' | 'key'): string => `${stateDir.ROUTES_TLS_DIR_NAME}/${appId}/${alias}.${ext}`;
export const lockPath = (c: Config): string => stateDir.stateLockFile(c.state_dir);
export const rejectsPath = (c: Config): string => stateDir.rejectsFile(c.state_dir);
export const rejectsRotatedPath = (c: Config): string => stateDir.rejectsRotatedFile(c.state_dir);

// The layout of paas-rproxy 0.1 (before issue 8): the state inside the operator's inventory. Read once by the
// migration (vars/migrate.ts), which moves it here and removes it.
export const INVENTORY_VARS_JSON = 'rproxy_routes.json';
/** schema 1 (YAML with !unsafe tags) */
export const INVENTORY_VARS_YAML = 'rproxy_routes.yml';
export const INVENTORY_TLS_DIR_NAME = '.rproxy_tls';
export const inventoryVarsFiles = (c: Config): { json: string; yaml: string } => {
  const d = join(c.inventory_dir, 'group_vars', c.proxies_group);
  return { json: join(d, INVENTORY_VARS_JSON), yaml: join(d, INVENTORY_VARS_YAML) };
};
export const inventoryTlsRoot = (c: Config): string => join(c.inventory_dir, INVENTORY_TLS_DIR_NAME);
