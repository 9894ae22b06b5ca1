/**
 * A digest of what the VRRP layout is computed from, as far as the inventory's files show it: the proxies
 * group's hosts in order with their keepalived_vrrp_* / ansible_host vars, the keepalived_vrrp_* vars of
 * the group and of `all` in hosts.yml, and the files under group_vars/{all,<group>} (except the routing
 * state, which changes with every app event). A change → the watcher asks for a VRRP run.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { allHosts, groupHosts, groupVars, inventoryFile } from '../runner/inventory.js';

/** the routing state file (core writes it; YAML or JSON): not a VRRP input */
const ROUTING_STATE = /^rproxy_routes\.(ya?ml|json)$/;

const pick = (o: Record<string, unknown>, re: RegExp) => Object.fromEntries(Object.entries(o).filter(([k]) => re.test(k)).sort(([a], [b]) => (a < b ? -1 : 1)));

async function filesUnder(p: string): Promise<string[]> {
  let st;
  try { st = await fs.stat(p); } catch { return []; }
  if (st.isFile()) return [p];
  if (!st.isDirectory()) return [];
  const out: string[] = [];
  for (const e of (await fs.readdir(p)).sort()) {
    if (e.startsWith('.')) continue;
    out.push(...(await filesUnder(path.join(p, e))));
  }
  return out;
}

/** Pure part: the digest of hosts.yml's VRRP-relevant content plus the given group_vars file contents. */
export function vrrpKeyOf(hostsYml: string, group: string, groupVarFiles: Array<{ path: string; text: string }>): string {
  const hosts = allHosts(hostsYml);
  const members = groupHosts(hostsYml, group).map((h) => [h, pick(hosts.get(h) ?? {}, /^(keepalived_vrrp_|ansible_host$)/)]);
  const doc = {
    members,
    group: pick(groupVars(hostsYml, group), /^keepalived_vrrp_/),
    all: pick(groupVars(hostsYml, 'all'), /^keepalived_vrrp_/),
    files: groupVarFiles.map((f) => [f.path, createHash('sha256').update(f.text).digest('hex')]),
  };
  return createHash('sha256').update(JSON.stringify(doc)).digest('hex');
}

export async function vrrpInputsKey(config: Config, hostsYmlText?: string): Promise<string> {
  const file = hostsYmlText === undefined ? await inventoryFile(config.inventory_dir) : null;
  const text = hostsYmlText ?? await fs.readFile(file ?? path.join(config.inventory_dir, 'hosts.yml'), 'utf8');
  const files: Array<{ path: string; text: string }> = [];
  for (const g of ['all', config.proxies_group]) {
    for (const base of [path.join(config.inventory_dir, 'group_vars', g), ...['.yml', '.yaml', '.json'].map((x) => path.join(config.inventory_dir, 'group_vars', g + x))]) {
      for (const f of await filesUnder(base)) {
        if (ROUTING_STATE.test(path.basename(f))) continue;
        files.push({ path: path.relative(config.inventory_dir, f), text: await fs.readFile(f, 'utf8') });
      }
    }
  }
  return vrrpKeyOf(text, config.proxies_group, files);
}
