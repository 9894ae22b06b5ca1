/**
 * Round-trip edits of an Ansible YAML inventory (hosts.yml) with the `yaml` package: the operator's
 * comments, key order, quoting and layout survive; only the edited node changes. Pure (text in, text out).
 * Reading (groups, hosts, vars) is runner/inventory.ts's, the one inventory reader.
 */
import { parseDocument, stringify, isMap, isPair, YAMLMap, Scalar, type Document, type Pair } from 'yaml';
import { RproxyError } from '../errors.js';
import { TO_STRING, groupHosts, groupNames, keyOf, parse } from '../runner/inventory.js';

export { allHosts, groupHosts, groupVars } from '../runner/inventory.js';

/** The mapping node of a group, created (under all.children, or top level without `all`) when absent. */
function ensureGroup(doc: Document.Parsed, group: string): YAMLMap {
  const defs = groupNames(doc).get(group) ?? [];
  const def = defs.find((g) => g.node !== null) ?? defs[0];
  if (def) {
    if (def.node) return def.node;
    const node = new YAMLMap();
    def.pair.value = node; // "proxies:" with a null value
    return node;
  }
  if (!isMap(doc.contents)) doc.contents = new YAMLMap() as never;
  const root = doc.contents as unknown as YAMLMap;
  const all = root.get('all', true);
  let parent: YAMLMap = root;
  if (isMap(all)) {
    const children: unknown = all.get('children', true);
    if (isMap(children)) parent = children;
    else { parent = new YAMLMap(); all.set('children', parent); }
  }
  const node = new YAMLMap();
  parent.set(group, node);
  return node;
}

export interface AddHostOptions {
  /** host vars of the new entry, in this order (e.g. {ansible_host: '198.51.100.13'}) */
  vars?: Record<string, unknown>;
  /** a comment line put above the new host entry */
  comment?: string;
}

function lineStart(text: string, pos: number): number {
  return text.lastIndexOf('\n', pos - 1) + 1;
}

/** End of a pair's text: after its value (or key) and the rest of that line, newline included. */
function pairEnd(text: string, p: Pair): number {
  const k = (p.key as { range?: number[] } | null)?.range;
  const v = (p.value as { range?: number[] } | null)?.range;
  let end = Math.max(k?.[2] ?? 0, v?.[2] ?? 0);
  if (end > 0 && text[end - 1] !== '\n') {
    const nl = text.indexOf('\n', end);
    end = nl < 0 ? text.length : nl + 1;
  }
  return end;
}

/** A block-style `hosts` mapping with at least one host, whose source ranges are known (surgical edits). */
function blockHosts(g: YAMLMap | null): YAMLMap | null {
  const hosts = g?.get('hosts', true);
  if (!isMap(hosts) || hosts.flow || hosts.items.length === 0) return null;
  return hosts.items.every((p) => isPair(p) && (p.key as { range?: number[] } | null)?.range) ? hosts : null;
}

function renderHost(host: string, opts: AddHostOptions, indent: string, step: number): string {
  const entry = opts.vars && Object.keys(opts.vars).length > 0 ? { [host]: opts.vars } : { [host]: null };
  const body = stringify(entry, { lineWidth: 0, indent: step, nullStr: '' })
    .replace(/:\s*$/m, (m) => (m.includes('\n') ? ':\n' : ':')); // "rp3: " -> "rp3:"
  const lines = body.replace(/\n$/, '').split('\n').map((l) => (l ? indent + l : l));
  const comment = opts.comment ? opts.comment.split('\n').map((l) => `${indent}# ${l}`) : [];
  return [...comment, ...lines].join('\n') + '\n';
}

/**
 * Appends `host` at the END of the group's `hosts` (inventory order = VRRP layout order: appending moves
 * the fewest VIP masters). Throws when the host is already in the group. The new lines are inserted after
 * the group's last host; every other byte of the file stays as it was.
 */
export function addHostToGroup(text: string, group: string, host: string, opts: AddHostOptions = {}, file = 'hosts.yml'): string {
  const doc = parse(text, file);
  if (groupHosts(text, group, file).includes(host)) {
    throw new RproxyError('ERR_INPUT', `inventory ${file}: ${host} is already in group ${group}`);
  }
  const defs = groupNames(doc).get(group) ?? [];
  const def = defs.find((g) => blockHosts(g.node) !== null);
  const hosts = def ? blockHosts(def.node) : null;
  if (hosts) {
    const items = hosts.items as Pair[];
    const first = items[0] as Pair;
    const last = items[items.length - 1] as Pair;
    const k0 = (first.key as { range: number[] }).range[0] as number;
    const indent = ' '.repeat(k0 - lineStart(text, k0));
    // indentation step of host vars, from an existing host with vars (default 2)
    let step = 2;
    for (const p of items) {
      if (isMap(p.value) && !p.value.flow && p.value.items[0]) {
        const r = ((p.value.items[0] as Pair).key as { range?: number[] } | null)?.range;
        if (r) { step = Math.max(1, r[0]! - lineStart(text, r[0]!) - indent.length); break; }
      }
    }
    let at = pairEnd(text, last);
    let prefix = '';
    if (at >= text.length && !text.endsWith('\n')) prefix = '\n';
    at = Math.min(at, text.length);
    return text.slice(0, at) + prefix + renderHost(host, opts, indent, step) + text.slice(at);
  }
  // no block hosts mapping to extend (group missing, "hosts:" empty or in flow style): edit the document
  const g = ensureGroup(doc, group);
  const found: unknown = g.get('hosts', true);
  let h: YAMLMap;
  if (isMap(found)) h = found;
  else {
    h = new YAMLMap();
    if (g.has('hosts')) g.set('hosts', h);
    else g.items.unshift(doc.createPair('hosts', h) as Pair<unknown, unknown>);
  }
  if (h.items.length === 0) h.flow = false;
  const vars = opts.vars && Object.keys(opts.vars).length > 0 ? doc.createNode(opts.vars) : null;
  const key = new Scalar(host);
  if (opts.comment) key.commentBefore = opts.comment.split('\n').map((l) => ` ${l}`).join('\n');
  h.items.push(doc.createPair(key, vars) as Pair<unknown, unknown>);
  return doc.toString(TO_STRING);
}

/**
 * Removes `host` from the group's own `hosts` (every definition of the group): its lines and the comment
 * lines directly above it (same indentation) go; every other byte stays. An emptied `hosts:` becomes
 * `hosts: {}` so the group keeps its place. Throws when the host is not a direct member of the group.
 */
export function removeHostFromGroup(text: string, group: string, host: string, file = 'hosts.yml'): string {
  const doc = parse(text, file);
  const edits: Array<{ from: number; to: number; insert: string }> = [];
  let found = false;
  let fallback = false;
  for (const g of groupNames(doc).get(group) ?? []) {
    const hostsPair = g.node?.items.find((p) => isPair(p) && keyOf(p) === 'hosts') as Pair | undefined;
    const hosts = hostsPair && isMap(hostsPair.value) ? hostsPair.value : null;
    if (!hosts) continue;
    const i = hosts.items.findIndex((p) => isPair(p) && keyOf(p) === host);
    if (i < 0) continue;
    found = true;
    const p = hosts.items[i] as Pair;
    const kr = (p.key as { range?: number[] } | null)?.range;
    if (!blockHosts(g.node) || !kr) { fallback = true; continue; }
    let from = lineStart(text, kr[0]!);
    const indent = kr[0]! - from;
    // comment lines right above the entry, at its indentation, belong to it
    for (;;) {
      if (from === 0) break;
      const prev = lineStart(text, from - 1);
      const line = text.slice(prev, from - 1);
      if (/^\s*#/.test(line) && line.length - line.trimStart().length === indent) from = prev;
      else break;
    }
    const to = pairEnd(text, p);
    edits.push({ from, to, insert: '' });
    if (hosts.items.length === 1) {
      // "hosts:" would be left without a value: make it an empty mapping
      const hk = (hostsPair!.key as { range?: number[] }).range;
      const colon = hk ? text.indexOf(':', hk[1]!) : -1;
      if (colon >= 0) edits.push({ from: colon + 1, to: colon + 1, insert: ' {}' });
    }
  }
  if (!found) {
    throw new RproxyError('ERR_INPUT', `inventory ${file}: ${host} is not a host of group ${group} (only hosts listed directly under ${group}.hosts can be removed)`);
  }
  if (fallback) {
    for (const g of groupNames(doc).get(group) ?? []) {
      const hosts = g.node?.get('hosts', true);
      if (!isMap(hosts)) continue;
      const i = hosts.items.findIndex((p) => isPair(p) && keyOf(p) === host);
      if (i >= 0) hosts.items.splice(i, 1);
      if (hosts.items.length === 0) hosts.flow = true;
    }
    return doc.toString(TO_STRING);
  }
  let out = text;
  for (const e of edits.sort((a, b) => b.from - a.from)) out = out.slice(0, e.from) + e.insert + out.slice(e.to);
  return out;
}

/** Sets (or replaces) one of a group's `vars` (used by tests and tools; keeps the other vars and comments). */
export function setGroupVar(text: string, group: string, key: string, value: unknown, file = 'hosts.yml'): string {
  const doc = parse(text, file);
  const g = ensureGroup(doc, group);
  const found: unknown = g.get('vars', true);
  let vars: YAMLMap;
  if (isMap(found)) vars = found;
  else { vars = new YAMLMap(); g.set('vars', vars); }
  vars.set(key, doc.createNode(value));
  return doc.toString(TO_STRING);
}

/** An inventory with `host` in `group` only (for a second `-i` source: the host is not in the real inventory yet). */
export function overlayInventory(groupsToHosts: Record<string, Array<{ name: string; vars?: Record<string, unknown> }>>): string {
  const children: Record<string, unknown> = {};
  for (const [group, hosts] of Object.entries(groupsToHosts)) {
    const h: Record<string, unknown> = {};
    for (const x of hosts) h[x.name] = x.vars && Object.keys(x.vars).length ? x.vars : null;
    children[group] = { hosts: h };
  }
  const doc = parseDocument('{}');
  doc.contents = doc.createNode({ all: { children } }) as never;
  return `# temporary inventory source written by paas-rproxy onboard/offboard\n${doc.toString(TO_STRING)}`;
}
