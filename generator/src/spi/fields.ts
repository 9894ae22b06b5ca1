/**
 * Field rules of the Routing SPI (ARCHITECTURE.md). Every rule returns the checked value or throws a
 * FieldError whose text completes "<action>: ..." for the operator.
 */
import { isIP } from 'node:net';
import type { Mapping } from './types.js';

export class FieldError extends Error {}

const quote = (v: unknown): string => {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return JSON.stringify(s.length > 80 ? s.slice(0, 80) + '…' : s);
};
const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : typeof v === 'string' ? 'a string' : `a ${typeof v}`); // never the value: it may be a secret

export function string(field: string, v: unknown): string {
  if (typeof v !== 'string') throw new FieldError(`${field} must be a string, got ${typeName(v)}`);
  return v;
}

const APP = /^[a-z0-9]{1,32}$/;
const NAMESPACE = /^[a-z0-9]{1,16}$/;
export function appName(v: unknown): string {
  const s = string('app_name', v);
  if (!APP.test(s)) throw new FieldError(`app_name ${quote(s)} must be 1-32 lowercase letters or digits`);
  return s;
}
export function namespace(v: unknown): string {
  const s = string('namespace', v);
  if (!NAMESPACE.test(s)) throw new FieldError(`namespace ${quote(s)} must be 1-16 lowercase letters or digits`);
  return s;
}

/** Ruby's nil is false for the app flags (an old app may carry `ha: nil`); anything else must be a boolean. */
export function boolean(field: string, v: unknown): boolean {
  if (v === null) return false;
  if (typeof v !== 'boolean') throw new FieldError(`${field} must be true or false, got ${typeName(v)}`);
  return v;
}

/** Gear ids (Mongo ObjectIds / UUIDs) and port names: short safe tokens. */
const TOKEN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export function token(field: string, v: unknown): string {
  const s = string(field, v);
  if (!TOKEN.test(s)) throw new FieldError(`${field} ${quote(s)} must be 1-64 letters, digits, "_", "." or "-"`);
  return s;
}

/** protocols / types: lists of lowercase tokens ("http", "ws", "web_framework"). */
const LIST_TOKEN = /^[a-z0-9][a-z0-9_.+-]{0,31}$/;
export function tokenList(field: string, v: unknown): string[] {
  if (!Array.isArray(v)) throw new FieldError(`${field} must be a list, got ${typeName(v)}`);
  if (v.length > 32) throw new FieldError(`${field} has more than 32 entries`);
  const out = v.map((x) => {
    const s = string(`${field} entry`, x);
    if (!LIST_TOKEN.test(s)) throw new FieldError(`${field} entry ${quote(s)} must be a lowercase name (letters, digits, "_", ".", "+", "-")`);
    return s;
  });
  return intern([...new Set(out)].sort());
}

/**
 * Shares equal small lists (protocols, types, mappings) between endpoints: 10,000 apps use a handful of distinct
 * ones. Lists are treated as immutable everywhere. Bounded, so hostile variety cannot grow it without limit.
 */
const internPool = new Map<string, readonly unknown[]>();
function intern<T>(list: T[]): T[] {
  const key = JSON.stringify(list);
  const hit = internPool.get(key);
  if (hit) return hit as T[];
  if (internPool.size < 4096 && key.length < 4096) internPool.set(key, Object.freeze(list));
  return list;
}

export function ipAddress(v: unknown): string {
  const s = string('public_address', v);
  // node accepts IPv6 zone ids ("fe80::1%eth0"): no gear address has one, and nginx would not parse it
  if (isIP(s) === 0 || s.includes('%')) throw new FieldError(`public_address ${quote(s)} is not an IP address`);
  const a = s.toLowerCase();
  // A gear never listens on the proxy itself: such a backend would expose the proxy's own local services.
  const v4 = isIP(a) === 4 ? a : /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a)?.[1];
  const firstOctet = v4 ? Number(v4.split('.')[0]) : -1;
  if (firstOctet === 127 || firstOctet === 0 || /^(?:0*:)*:?0*1?$/.test(a)) {
    throw new FieldError(`public_address ${quote(s)} is a loopback or unspecified address, never a gear's`);
  }
  return a;
}

export function port(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw new FieldError(`public_port ${quote(v)} is not a port number (an integer 1-65535)`);
  }
  return v;
}

/**
 * DNS host name, lowercased. Wildcards are rejected: OpenShift never sends them, and a `*` would end up in file
 * names and nginx server_name matching rules. A trailing dot, IP-like names (numeric last label) too.
 */
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export function hostName(field: string, v: unknown): string {
  const raw = string(field, v);
  const s = raw.toLowerCase();
  const no = (why: string) => new FieldError(`${field} ${quote(raw)} is not a DNS host name (${why})`);
  if (s.length === 0) throw no('empty');
  if (s.length > 253) throw no('longer than 253 characters');
  if (s.includes('*')) throw no('wildcards are not accepted');
  if (s.includes('..')) throw no('empty label ".."');
  if (!/^[a-z0-9.-]+$/.test(s)) throw new FieldError(`${field} ${quote(raw)} is not a DNS host name`);
  const labels = s.split('.');
  if (labels.length < 2) throw no('needs at least two labels');
  for (const l of labels) {
    if (l.length > 63) throw no('a label is longer than 63 characters');
    if (!LABEL.test(l)) throw new FieldError(`${field} ${quote(raw)} is not a DNS host name`);
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) throw no('the last label is numeric');
  return s;
}

/**
 * Path mappings: '' or an absolute URI path made of characters that are inert in nginx config
 * (no whitespace, quotes, ';', '{', '}', '$', '\', '#', control characters).
 */
const PATH = /^(?:|\/[A-Za-z0-9._~!&()*+,=:@%\/-]{0,1023})$/;
export function mappings(v: unknown): Mapping[] {
  if (!Array.isArray(v)) throw new FieldError(`mappings must be a list, got ${typeName(v)}`);
  if (v.length > 64) throw new FieldError('mappings has more than 64 entries');
  const out = v.map((m, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new FieldError(`mappings[${i}] must be a mapping {frontend, backend}`);
    const fields = normalizeKeys(m as Record<string, unknown>, `mappings[${i}]`);
    for (const k of Object.keys(fields)) if (k !== 'frontend' && k !== 'backend') throw new FieldError(`mappings[${i}] has unknown field "${k}"`);
    const path = (name: 'frontend' | 'backend'): string => {
      if (!(name in fields)) throw new FieldError(`mappings[${i}] is missing ${name}`);
      const s = string(`mappings[${i}].${name}`, fields[name]);
      if (!PATH.test(s)) throw new FieldError(`mappings[${i}].${name} ${quote(s)} must be empty or a URI path starting with "/" without spaces, quotes, ";", "{", "}", "$" or "#"`);
      return s;
    };
    return { frontend: path('frontend'), backend: path('backend') };
  });
  const seen = new Set<string>();
  return intern(out
    .filter((m) => (seen.has(m.frontend + '\0' + m.backend) ? false : (seen.add(m.frontend + '\0' + m.backend), true)))
    .sort((a, b) => (a.frontend < b.frontend ? -1 : a.frontend > b.frontend ? 1 : a.backend < b.backend ? -1 : a.backend > b.backend ? 1 : 0)));
}

/** Psych symbol keys arrive as ":name"; plain keys are accepted too, but never both spellings of one field. */
export function normalizeKeys(obj: Record<string, unknown>, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const [k, v] of Object.entries(obj)) {
    const name = k.startsWith(':') ? k.slice(1) : k;
    if (name in out) throw new FieldError(`${where ? where + ' ' : ''}field "${name}" is given twice`);
    out[name] = v;
  }
  return out;
}
