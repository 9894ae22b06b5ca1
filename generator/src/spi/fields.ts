/**
 * Field rules of the Routing SPI (each action as the plug-in sends it: test/fixtures/spi/samples.yml). Every
 * rule returns the checked value or throws a FieldError whose text completes "<action>: ..." for the operator.
 * Every value a reason echoes goes through `echoString`: bounded length, and runs that look like encoded key
 * bytes masked.
 */
import { domainToASCII, domainToUnicode } from 'node:url';
import { addressKind, cidrContains, isNetworkOrBroadcast, parseIp, type Cidr } from '../net/address.js';
import { isPrivateKeyMaterial } from '../tls/pem.js';
import type { Mapping } from './types.js';

export class FieldError extends Error {
  /** ERR_SPI_TOO_LARGE: refused for what the whole message costs, not for this document's values */
  constructor(message: string, readonly code: 'ERR_SPI_INVALID' | 'ERR_SPI_TOO_LARGE' = 'ERR_SPI_INVALID') {
    super(message);
  }
}

/** Longest part of a value a reason (or the rejects log) echoes. */
export const ECHO_MAX = 64;
/** A run of base64/hex-alphabet characters this long, with letters and digits, is masked in echoes. */
const ENCODED_RUN = 16;

const isRunChar = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 || c === 47 || c === 61 || c === 45 || c === 95;

/** Characters that separate the groups of encoded bytes as tools print them: `openssl pkey -text` (colon hex), wrapped base64. */
const isSeparator = (c: number): boolean => c === 58 || c === 46 || c === 44 || c === 59 || c === 32 || c === 9 || c === 10 || c === 13;
/** Letters and digits a span of short separated runs may hold before it is masked (an IPv6 address has at most 32). */
const SEPARATED_RUN = 33;

/** End of the run of run characters starting at `i`. */
function runEnd(s: string, i: number): number {
  let j = i;
  while (j < s.length && isRunChar(s.charCodeAt(j))) j++;
  return j;
}

/**
 * Masks what looks like encoded bytes: each run of base64/hex characters that is long and mixes letters and digits,
 * and each span of short such runs joined by separators (`2e:f3:29:…`, base64 cut in groups) whose letters and
 * digits, taken together, are many and hex- or base64-like (hex letters only, or both cases, with digits).
 */
export function maskEncodedRuns(s: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    if (!isRunChar(s.charCodeAt(i))) {
      out += s[i];
      i++;
      continue;
    }
    let j = runEnd(s, i);
    if (j - i >= ENCODED_RUN) {
      out += maskRun(s.slice(i, j));
      i = j;
      continue;
    }
    // a span of short runs and separators; it ends before a long run
    let end = j;
    for (;;) {
      let k = end;
      while (k < s.length && isSeparator(s.charCodeAt(k))) k++;
      const next = runEnd(s, k);
      if (k === end || next === k || next - k >= ENCODED_RUN) break;
      end = next;
    }
    j = end;
    let alnum = 0;
    let digit = false;
    let upper = false;
    let lower = false;
    let hex = true;
    for (let k = i; k < j; k++) {
      const c = s.charCodeAt(k);
      if (c >= 48 && c <= 57) { digit = true; alnum++; }
      else if (c >= 65 && c <= 90) { upper = true; alnum++; hex &&= c <= 70; }
      else if (c >= 97 && c <= 122) { lower = true; alnum++; hex &&= c <= 102; }
    }
    out += alnum >= SEPARATED_RUN && digit && ((upper && lower) || (hex && (upper || lower))) ? '[…]' : s.slice(i, j);
    i = j;
  }
  return out;
}

/** A run (no separators): masked when it is long and mixes letters and digits. */
function maskRun(run: string): string {
  let digit = false;
  let letter = false;
  for (let k = 0; k < run.length; k++) {
    const c = run.charCodeAt(k);
    if (c >= 48 && c <= 57) digit = true;
    else if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) letter = true;
  }
  return digit && letter ? '[…]' : run;
}

/**
 * At most `max` characters of a string from the input, encoded-looking runs masked. Only a prefix is examined,
 * and a run (or a span of separated runs) cut by that prefix is dropped whole (its length, hence its masking, is
 * unknown). The final cut may split a kept run: it was judged whole, so a piece of it says no more than it.
 */
export function echoText(s: string, max = ECHO_MAX): string {
  const cut = s.length > 4 * max;
  const masked = maskEncodedRuns(cut ? dropTrailingRun(s.slice(0, 4 * max)) : s);
  return !cut && masked.length <= max ? masked : masked.slice(0, max) + '…';
}

/** A string value as a reason may show it: JSON-quoted `echoText`. */
export const echoString = (s: string): string => JSON.stringify(echoText(s));

function dropTrailingRun(s: string): string {
  let end = s.length;
  while (end > 0 && isRunChar(s.charCodeAt(end - 1))) end--;
  // and the span of short separated runs the cut run may belong to
  for (;;) {
    let sep = end;
    while (sep > 0 && isSeparator(s.charCodeAt(sep - 1))) sep--;
    let run = sep;
    while (run > 0 && isRunChar(s.charCodeAt(run - 1))) run--;
    if (sep === end || run === sep || sep - run >= ENCODED_RUN) break;
    end = run;
  }
  return s.slice(0, end);
}

/** Any value as a reason may show it: scalars quoted (bounded), lists and mappings by their type only. */
export const quote = (v: unknown): string =>
  typeof v === 'string' ? echoString(v)
    : typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined ? JSON.stringify(String(v))
      : `(${typeName(v)})`;
export const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'a list' : v instanceof Uint8Array ? 'binary data' : typeof v === 'object' ? 'a mapping' : typeof v === 'string' ? 'a string' : `a ${typeof v}`); // never the value: it may be a secret

/** Values stored outside the key files must not be private keys in disguise (hex, base64...). */
function noKeyMaterial(field: string, s: string, candidates: readonly string[] = [s]): void {
  for (const c of candidates) {
    if (c.length >= 40 && isPrivateKeyMaterial(c)) throw new FieldError(`${field} holds private key material, which is only accepted in private_key`);
  }
}

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
  noKeyMaterial(field, s);
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

/** What gear addresses may be, besides unicast (config gear_networks: empty = any unicast address). */
export interface AddressPolicy {
  gearNetworks?: readonly Cidr[] | undefined;
}

const KIND_REASON: Record<string, string> = {
  unspecified: 'is a loopback or unspecified address, never a gear\'s',
  loopback: 'is a loopback or unspecified address, never a gear\'s',
  'link-local': 'is a link-local address (169.254.0.0/16, fe80::/10: neighbours and cloud metadata), never a gear\'s',
  multicast: 'is a multicast address, never a gear\'s',
  broadcast: 'is the broadcast address, never a gear\'s',
  reserved: 'is a reserved address (240.0.0.0/4), never a gear\'s',
  'ipv4-compatible': 'is an IPv4-compatible IPv6 address (deprecated by RFC 4291): send the IPv4 address',
};

/**
 * A gear address: an IP literal in any spelling, returned in its canonical text (net/address.ts), so the same
 * address is always the same endpoint. Refused in every spelling (IPv4-mapped and -compatible IPv6 included):
 * loopback, unspecified, link-local, multicast, broadcast, reserved; and, with gear networks, anything outside
 * them (or their network / broadcast address).
 */
export function ipAddress(v: unknown, policy: AddressPolicy = {}, field = 'public_address'): string {
  const s = string(field, v);
  const a = parseIp(s);
  if (!a) throw new FieldError(`${field} ${quote(s)} is not an IP address`);
  const is = a.text === s ? '' : ` (${a.text})`;
  const kind = addressKind(a);
  if (kind !== 'unicast') throw new FieldError(`${field} ${quote(s)}${is} ${KIND_REASON[kind]}`);
  const nets = policy.gearNetworks;
  if (nets && nets.length > 0) {
    const net = nets.find((n) => cidrContains(n, a));
    if (!net) {
      const list = nets.slice(0, 4).map((n) => n.text).join(', ') + (nets.length > 4 ? ', …' : '');
      throw new FieldError(`${field} ${quote(s)}${is} is outside gear_networks (${list})`);
    }
    if (isNetworkOrBroadcast(net, a)) throw new FieldError(`${field} ${quote(s)}${is} is the network or broadcast address of gear network ${net.text}`);
  }
  return a.text;
}

export function port(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw new FieldError(`public_port ${quote(v)} is not a port number (an integer 1-65535)`);
  }
  return v;
}

/**
 * DNS host name, lowercased. Checked as ASCII before any case folding (KELVIN SIGN U+212A lowercases to "k");
 * internationalized names are accepted in their punycode form (`xn--` labels that decode and re-encode to
 * themselves). Wildcards are rejected: OpenShift never sends them, and a `*` would end up in file names and
 * nginx server_name matching rules. A trailing dot, IP-like names (numeric last label) too.
 */
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ASCII_HOST = /^[A-Za-z0-9.-]+$/;
export function hostName(field: string, v: unknown): string {
  const raw = string(field, v);
  const no = (why: string) => new FieldError(`${field} ${quote(raw)} is not a DNS host name (${why})`);
  if (raw.length === 0) throw no('empty');
  if (raw.length > 253) throw no('longer than 253 characters');
  if (raw.includes('*')) throw no('wildcards are not accepted');
  if (raw.includes('..')) throw no('empty label ".."');
  if (!ASCII_HOST.test(raw)) {
    for (let i = 0; i < raw.length; i++) {
      if (raw.charCodeAt(i) > 127) throw no('not ASCII: send an internationalized name in its punycode form, xn--…');
    }
    throw new FieldError(`${field} ${quote(raw)} is not a DNS host name`);
  }
  const s = raw.toLowerCase();
  const labels = s.split('.');
  if (labels.length < 2) throw no('needs at least two labels');
  for (const l of labels) {
    if (l.length > 63) throw no('a label is longer than 63 characters');
    if (!LABEL.test(l)) throw new FieldError(`${field} ${quote(raw)} is not a DNS host name`);
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) throw no('the last label is numeric');
  if (s.includes('xn--')) {
    const unicode = domainToUnicode(s);
    if (unicode === '' || domainToASCII(unicode) !== s) throw no('a label starting with "xn--" is not valid punycode');
  }
  if (s.length >= 80) noKeyMaterial(field, s, [s.replace(/[.-]/g, '')]);
  return s;
}

/**
 * Longest alias that can have a certificate: its certificate and key files are named `<alias>.crt` / `<alias>.key`
 * (generator/src/vars/paths.ts, and on the proxies), and a file name has at most 255 bytes.
 */
export const MAX_TLS_ALIAS = 251;

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
    for (const k of Object.keys(fields)) if (k !== 'frontend' && k !== 'backend') throw new FieldError(`mappings[${i}] has unknown field ${echoString(k)}`);
    const path = (name: 'frontend' | 'backend'): string => {
      if (!(name in fields)) throw new FieldError(`mappings[${i}] is missing ${name}`);
      const s = string(`mappings[${i}].${name}`, fields[name]);
      if (!PATH.test(s)) throw new FieldError(`mappings[${i}].${name} ${quote(s)} must be empty or a URI path starting with "/" without spaces, quotes, ";", "{", "}", "$" or "#"`);
      if (s.length >= 40) noKeyMaterial(`mappings[${i}].${name}`, s, [s, s.slice(1), ...s.split('/').filter((p) => p.length >= 40)]);
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
    if (name in out) throw new FieldError(`${where ? where + ' ' : ''}field ${echoString(name)} is given twice`);
    out[name] = v;
  }
  return out;
}

/**
 * Whether `s` is a valid value of SPI field `field` (Psych colon stripped), as the event would store it. The
 * rejects log keeps such values verbatim (they are what a vars file may hold anyway); anything else it shows
 * only through `echoString`.
 */
export function passesFieldRule(field: string, s: string): boolean {
  const ok = (check: () => unknown): boolean => {
    try {
      check();
      return true;
    } catch {
      return false;
    }
  };
  switch (field) {
    case 'action': return /^:?[a-z_]{1,32}$/.test(s);
    case 'app_name': return APP.test(s);
    case 'namespace': return NAMESPACE.test(s);
    case 'gear_id': case 'public_port_name': case 'port_name': return ok(() => token(field, s));
    case 'public_address': case 'address': return parseIp(s) !== null;
    case 'public_port': case 'port': return /^[0-9]{1,5}$/.test(s);
    case 'scalable': case 'ha': return /^(?:true|false|~|null|)$/.test(s);
    case 'alias': return ok(() => hostName(field, s));
    case 'frontend': case 'backend': return PATH.test(s) && ok(() => noKeyMaterial(field, s, [s, s.slice(1)]));
    case 'protocols': case 'types': return LIST_TOKEN.test(s);
    default: return false;
  }
}
