/** Where the routing state lives under the inventory (schema: generator/src/vars/README.md). */
import { join } from 'node:path';
import type { Config } from '../config.js';

export const VARS_FILE_NAME = 'rproxy_routes.json';
/** Schema 1 (YAML with !unsafe tags): still read, replaced by the JSON file at the first store open or write. */
export const LEGACY_VARS_FILE_NAME = 'rproxy_routes.yml';
// Hidden on purpose: Ansible parses every non-hidden entry of an inventory directory as an inventory source
// (thousands of warnings and a slow start); it skips names starting with a dot.
export const TLS_DIR_NAME = '.rproxy_tls';

export const varsFilePath = (c: Config): string => join(c.inventory_dir, 'group_vars', c.proxies_group, VARS_FILE_NAME);
export const legacyVarsFilePath = (c: Config): string => join(c.inventory_dir, 'group_vars', c.proxies_group, LEGACY_VARS_FILE_NAME);
export const tlsRoot = (c: Config): string => join(c.inventory_dir, TLS_DIR_NAME);
/** relative to inventory_dir, as written into the vars */
export const tlsRelPath = (appId: string, alias: string, ext: 'crt' | 'key'): string => `${TLS_DIR_NAME}/${appId}/${alias}.${ext}`;
export const lockPath = (c: Config): string => join(c.state_dir, 'state.lock');
export const rejectsPath = (c: Config): string => join(c.state_dir, 'rejects.jsonl');
