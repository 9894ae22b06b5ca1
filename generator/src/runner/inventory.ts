/**
 * The one inventory reader: the YAML inventory file (hosts.yml) of the inventory directory, parsed with the
 * `yaml` package (the same parse onboard/inventory.ts edits round-trip). Pure except inventoryFile().
 *
 * Groups are found wherever Ansible's YAML inventory allows them: a top-level key, or a key of any group's
 * `children` mapping (`all.children.proxies`, nested groups, ...). Hosts are keys of a group's `hosts`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parseDocument, isMap, isScalar, isPair, type YAMLMap, type Document, type Pair } from 'yaml';
import { execFile } from 'node:child_process';
import type { Config } from '../config.js';
import { RproxyError } from '../errors.js';

/** <inventory_dir>/hosts.yml (or .yaml); null when there is neither. */
export async function inventoryFile(inventoryDir: string): Promise<string | null> {
  for (const n of ['hosts.yml', 'hosts.yaml']) {
    const f = path.join(inventoryDir, n);
    try { await fs.access(f); return f; } catch { /* next */ }
  }
  return null;
}

/** Same output as input for an unchanged document (checked in the unit tests). */
export const TO_STRING = { lineWidth: 0 } as const;

export function parse(text: string, file: string): Document.Parsed {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new RproxyError('ERR_CONFIG_INVALID', `inventory ${file}: not valid YAML: ${doc.errors[0]?.message ?? ''}`);
  }
  if (doc.contents !== null && !isMap(doc.contents)) {
    throw new RproxyError('ERR_CONFIG_INVALID', `inventory ${file}: the document must be a mapping of groups (all: ...)`);
  }
  return doc;
}

export function keyOf(p: Pair): string {
  return isScalar(p.key) ? String(p.key.value) : String(p.key);
}

export interface GroupRef { name: string; node: YAMLMap | null; parent: YAMLMap; pair: Pair }

/** Every group definition in the document (a group may be defined in several places), in document order. */
function groupDefs(doc: Document.Parsed): GroupRef[] {
  const out: GroupRef[] = [];
  const visit = (parent: YAMLMap, depth: number): void => {
    if (depth > 50) return;
    for (const p of parent.items) {
      if (!isPair(p)) continue;
      const name = keyOf(p);
      const node = isMap(p.value) ? p.value : null;
      out.push({ name, node, parent, pair: p });
      const children = node?.get('children', true);
      if (isMap(children)) visit(children, depth + 1);
    }
  };
  if (isMap(doc.contents)) visit(doc.contents, 0);
  return out;
}

export function groupNames(doc: Document.Parsed): Map<string, GroupRef[]> {
  const m = new Map<string, GroupRef[]>();
  for (const g of groupDefs(doc)) m.set(g.name, [...(m.get(g.name) ?? []), g]);
  return m;
}

/** Host names of a group (its own hosts, then its children's, recursively), in document order, unique. */
export function groupHosts(text: string, group: string, file = 'hosts.yml'): string[] {
  const doc = parse(text, file);
  const groups = groupNames(doc);
  const out: string[] = [];
  const walk = (name: string, depth: number): void => {
    if (depth > 50) return;
    for (const g of groups.get(name) ?? []) {
      const hosts = g.node?.get('hosts', true);
      if (isMap(hosts)) for (const p of hosts.items) if (isPair(p) && !out.includes(keyOf(p))) out.push(keyOf(p));
      const children = g.node?.get('children', true);
      if (isMap(children)) for (const p of children.items) if (isPair(p)) walk(keyOf(p), depth + 1);
    }
  };
  walk(group, 0);
  return out;
}

/** Every host name defined anywhere in the inventory with its host vars (merged over definitions). */
export function allHosts(text: string, file = 'hosts.yml'): Map<string, Record<string, unknown>> {
  const doc = parse(text, file);
  const out = new Map<string, Record<string, unknown>>();
  for (const g of groupDefs(doc)) {
    const hosts = g.node?.get('hosts', true);
    if (!isMap(hosts)) continue;
    for (const p of hosts.items) {
      if (!isPair(p)) continue;
      const vars = isMap(p.value) ? (p.value.toJSON() as Record<string, unknown>) : {};
      out.set(keyOf(p), { ...(out.get(keyOf(p)) ?? {}), ...vars });
    }
  }
  return out;
}

/** A group's own `vars:` (plain JS), merged over its definitions. */
export function groupVars(text: string, group: string, file = 'hosts.yml'): Record<string, unknown> {
  const doc = parse(text, file);
  let vars: Record<string, unknown> = {};
  for (const g of groupNames(doc).get(group) ?? []) {
    const v = g.node?.get('vars', true);
    if (isMap(v)) vars = { ...vars, ...(v.toJSON() as Record<string, unknown>) };
  }
  return vars;
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
