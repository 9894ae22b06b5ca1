/**
 * Where the routing state lives: under the controller's state directory, never in the operator's inventory
 * (schema and layout: generator/src/vars/README.md). Ansible reads it from there in one place, the
 * nginx_rproxy_routes action plugin (nginx_rproxy_state_dir, fed by the inventory-wide rproxy_state_dir that the
 * runner also passes with -e).
 */
import { join } from 'node:path';
import type { Config } from '../config.js';

/** <state_dir>/routes: the routing state and its TLS material (what the proxies serve). */
export const ROUTES_DIR_NAME = 'routes';
/** the commit point of the state: schema, app ids and their digests (vars/README.md) */
export const INDEX_FILE_NAME = 'index.json';
/** one file per app: apps/<id>.json */
export const APPS_DIR_NAME = 'apps';
export const TLS_DIR_NAME = 'tls';
/** The single-file state of schema 2 (before issue 10), converted on the first run (vars/migrate.ts). */
export const SINGLE_FILE_NAME = 'rproxy_routes.json';

export const routesDir = (c: Config): string => join(c.state_dir, ROUTES_DIR_NAME);
export const indexFilePath = (c: Config): string => join(routesDir(c), INDEX_FILE_NAME);
export const appsDir = (c: Config): string => join(routesDir(c), APPS_DIR_NAME);
/** `id` must be a checked app id (`[a-z0-9]+-[a-z0-9]+`): it becomes a file name */
export const appFilePath = (c: Config, id: string): string => join(appsDir(c), `${id}.json`);
export const singleFilePath = (c: Config): string => join(routesDir(c), SINGLE_FILE_NAME);
export const tlsRoot = (c: Config): string => join(routesDir(c), TLS_DIR_NAME);
/** relative to routesDir, as written into the vars */
export const tlsRelPath = (appId: string, alias: string, ext: 'crt' | 'key'): string => `${TLS_DIR_NAME}/${appId}/${alias}.${ext}`;
export const lockPath = (c: Config): string => join(c.state_dir, 'state.lock');
export const rejectsPath = (c: Config): string => join(c.state_dir, 'rejects.jsonl');

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
