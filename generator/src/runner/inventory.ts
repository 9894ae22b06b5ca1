// The proxies group of the operator's inventory, as the runner reads it: hosts.yml parsed directly (groupHosts,
// pure), else `ansible-inventory --list`.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import yaml from 'js-yaml';
import type { Config } from '../config.js';
import { RproxyError } from '../errors.js';

/** Pure: the hosts of a group from an Ansible YAML inventory document (hosts.yml), children included, in order. */
export function groupHosts(doc: unknown, group: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const groups = new Map<string, Record<string, unknown>>();
  const index = (name: string, node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const g = node as Record<string, unknown>;
    if (!groups.has(name)) groups.set(name, g);
    const children = g.children;
    if (children && typeof children === 'object') for (const [c, n] of Object.entries(children as object)) index(c, n);
  };
  if (doc && typeof doc === 'object') for (const [name, node] of Object.entries(doc as object)) index(name, node);
  const walk = (name: string, depth: number): void => {
    const g = groups.get(name);
    if (!g || depth > 50) return;
    if (g.hosts && typeof g.hosts === 'object') for (const h of Object.keys(g.hosts as object)) if (!seen.has(h)) { seen.add(h); out.push(h); }
    if (g.children && typeof g.children === 'object') for (const c of Object.keys(g.children as object)) walk(c, depth + 1);
  };
  walk(group, 0);
  return out;
}

/** The inventory must exist before anything runs Ansible against it: say which setting names it. */
export async function requireInventory(config: Config): Promise<void> {
  const st = await fs.stat(config.inventory_dir).catch(() => null);
  if (!st?.isDirectory()) {
    throw new RproxyError('ERR_CONFIG_INVALID', `the inventory ${config.inventory_dir} does not exist: pass --inventory DIR, or set inventory_dir in the config file (${config.source ?? 'none: --config FILE or PAAS_RPROXY_CONFIG'})`);
  }
}

async function inventoryFile(config: Config): Promise<string | null> {
  for (const n of ['hosts.yml', 'hosts.yaml']) {
    const f = path.join(config.inventory_dir, n);
    try { await fs.access(f); return f; } catch { /* next */ }
  }
  return null;
}

/** The proxies group's hosts in inventory order: hosts.yml parsed directly, else `ansible-inventory --list`. */
export async function proxiesOf(config: Config): Promise<string[]> {
  await requireInventory(config);
  const f = await inventoryFile(config);
  if (f) return groupHosts(yaml.load(await fs.readFile(f, 'utf8')), config.proxies_group);
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
