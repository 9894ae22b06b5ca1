/**
 * The cloud domain's DNS records, pure: `*.<domain>` → every VIP (active/active: resolvers rotate the RRset over
 * the VIPs, every proxy masters some of them), IPv4 VIPs as A and IPv6 VIPs as AAAA records; for a zone file also
 * the SOA, the NS records and the addresses of in-zone name servers. Every value is checked here: the renderers
 * print values as they are (Handlebars with noEscape), so nothing unchecked may reach them.
 */
import { createHash } from 'node:crypto';
import { RproxyError } from '../errors.js';
import { parseIp } from '../net/address.js';
import { FieldError, hostName } from '../spi/fields.js';

export interface NameServer {
  /** host name of the server (absolute, without the trailing dot) */
  name: string;
  /** its addresses: required when the name lies inside the domain (they become the zone's address records) */
  addresses: readonly string[];
}

export interface SoaSettings {
  /** mailbox of the zone's administrator, user@domain (becomes the SOA RNAME) */
  email: string;
  refresh: number;
  retry: number;
  expire: number;
  /** negative caching TTL (the SOA MINIMUM field, RFC 2308) */
  negative_ttl: number;
}

export interface DnsSettings {
  ttl: number;
  nameservers: readonly NameServer[];
  soa: SoaSettings;
}

export interface AddressRecord { type: 'A' | 'AAAA'; address: string }
/** An address record of an in-zone name server; `owner` is relative to the domain ("ns1"). */
export interface GlueRecord extends AddressRecord { owner: string }

/** What `*.<domain>` resolves to: the published records of both output formats. */
export interface WildcardRecords {
  domain: string;
  ttl: number;
  /** A records first, then AAAA; each sorted, so the VIPs' order in the inventory does not matter */
  records: AddressRecord[];
}

export interface ZoneRecords extends WildcardRecords {
  /** name server host names, absolute without the trailing dot */
  nameservers: string[];
  glue: GlueRecord[];
  soa: { mname: string; rname: string; refresh: number; retry: number; expire: number; negative_ttl: number };
  /** sha256 of everything published except the serial: equal digests = equal zones */
  digest: string;
}

export const DEFAULT_DNS_SETTINGS = (domain: string): DnsSettings => ({
  ttl: 300,
  nameservers: [],
  soa: { email: `hostmaster@${domain}`, refresh: 3600, retry: 900, expire: 1209600, negative_ttl: 300 },
});

const invalid = (msg: string): RproxyError => new RproxyError('ERR_DNS_INVALID', msg);

function dnsName(what: string, v: unknown): string {
  try {
    return hostName(what, typeof v === 'string' ? v.replace(/\.$/, '') : v);
  } catch (e) {
    if (e instanceof FieldError) throw invalid(e.message);
    throw e;
  }
}

/** An integer in [min, max] or an error naming the setting. */
export function intSetting(what: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(`${what} must be an integer ${min}..${max} (got ${JSON.stringify(v)})`);
  }
  return v;
}

/**
 * The canonical text of an IP literal (IPv4 dotted quad; IPv6 per RFC 5952), as resolvers print it, so the
 * VIPs and resolved addresses compare as strings. Returns null for anything that is not an IP literal
 * (IPv6 zone ids included).
 */
export function canonicalIp(s: string): { family: 4 | 6; address: string } | null {
  const ip = parseIp(s, { mappedAsIpv6: true });
  return ip ? { family: ip.family, address: ip.text } : null;
}

/** Addresses that can never be a service address clients are sent to. */
function unusable(ip: { family: 4 | 6; address: string }): string | null {
  if (ip.family === 4) {
    const [a, b] = ip.address.split('.').map(Number) as [number, number];
    if (a === 0) return 'an unspecified ("this network") address';
    if (a === 127) return 'a loopback address';
    if (a >= 224) return 'a multicast or reserved address';
    if (a === 169 && b === 254) return 'a link-local address';
    return null;
  }
  if (ip.address === '::') return 'the unspecified address';
  if (ip.address === '::1') return 'the loopback address';
  if (/^ff/.test(ip.address)) return 'a multicast address';
  if (/^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(ip.address)) return 'an IPv4-mapped address (give the IPv4 address itself)';
  if (/^fe[89ab]/.test(ip.address)) return 'a link-local address';
  return null;
}

/**
 * VIP addresses of keepalived_vrrp_vips entries ("ADDRESS", "ADDRESS/PREFIX" or {address: ...}), canonical,
 * checked: an IP literal usable as a service address, each VIP once.
 */
export function vipRecords(vips: readonly unknown[]): AddressRecord[] {
  if (!Array.isArray(vips) || vips.length === 0) {
    throw invalid('no VIPs: set keepalived_vrrp_vips in the inventory (proxies group), dns.vips in the config, or pass --vip');
  }
  if (vips.length > 256) throw invalid(`${vips.length} VIPs: at most 256 are supported`);
  const seen = new Set<string>();
  const out: AddressRecord[] = [];
  for (const v of vips) {
    const raw = typeof v === 'string' ? v
      : typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { address?: unknown }).address === 'string' ? (v as { address: string }).address
        : null;
    if (raw === null) throw invalid(`VIP ${JSON.stringify(v)} is neither "ADDRESS[/PREFIX]" nor {address: ...}`);
    const [addr, prefix, ...rest] = raw.trim().split('/');
    const ip = canonicalIp(addr ?? '');
    if (!ip || rest.length > 0 || (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= (ip.family === 4 ? 32 : 128)))) {
      throw invalid(`VIP ${JSON.stringify(raw)} is not an IP address (optionally /prefix)`);
    }
    const why = unusable(ip);
    if (why) throw invalid(`VIP ${JSON.stringify(raw)} is ${why}: clients cannot be sent there`);
    if (seen.has(ip.address)) throw invalid(`VIP ${ip.address} is listed twice`);
    seen.add(ip.address);
    out.push({ type: ip.family === 4 ? 'A' : 'AAAA', address: ip.address });
  }
  return sortRecords(out);
}

function ipSortKey(r: AddressRecord): string {
  if (r.type === 'A') return '4' + r.address.split('.').map((o) => o.padStart(3, '0')).join('.');
  const b = parseIp(r.address, { mappedAsIpv6: true })?.bytes ?? new Uint8Array(16);
  return '6' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function sortRecords<T extends AddressRecord>(rs: T[]): T[] {
  return rs.map((r) => [ipSortKey(r), r] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
}

/** `*.<domain>` → every VIP, with the TTL. Used by both formats (zone file, nsupdate batch). */
export function wildcardRecords(domain: string, vips: readonly unknown[], ttl: number): WildcardRecords {
  return {
    domain: dnsName('domain', domain),
    ttl: intSetting('ttl', ttl, 1, 604800),
    records: vipRecords(vips),
  };
}

/** user@example.com → user.example.com (dots in the user part escaped, RFC 1035 §8). */
export function soaRname(email: string): string {
  const m = /^([a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*)@(.+)$/i.exec(typeof email === 'string' ? email : '');
  if (!m || !m[1] || !m[2] || m[1].length > 63) {
    throw invalid(`soa email ${JSON.stringify(email)} is not a mailbox like hostmaster@example.com`);
  }
  return `${m[1].toLowerCase().replace(/\./g, '\\.')}.${dnsName('soa email domain', m[2])}`;
}

/** The whole zone: SOA, NS, in-zone name server addresses, and the wildcard records. */
export function zoneRecords(domain: string, vips: readonly unknown[], settings: DnsSettings): ZoneRecords {
  const w = wildcardRecords(domain, vips, settings.ttl);
  if (!Array.isArray(settings.nameservers) || settings.nameservers.length === 0) {
    throw invalid('a zone needs at least one name server: set dns.nameservers in the config (or pass --ns NAME[=ADDRESS,...])');
  }
  if (settings.nameservers.length > 32) throw invalid('at most 32 name servers');
  const nameservers: string[] = [];
  const glue: GlueRecord[] = [];
  for (const ns of settings.nameservers) {
    const name = dnsName('name server', ns?.name);
    if (nameservers.includes(name)) throw invalid(`name server ${name} is listed twice`);
    nameservers.push(name);
    const addresses = Array.isArray(ns.addresses) ? ns.addresses : [];
    const inZone = name.endsWith(`.${w.domain}`);
    if (inZone && addresses.length === 0) {
      throw invalid(`name server ${name} lies inside ${w.domain}: give its address (--ns ${name}=ADDRESS, or addresses: in dns.nameservers)`);
    }
    if (!inZone && addresses.length > 0) {
      throw invalid(`name server ${name} lies outside ${w.domain}: its addresses belong to its own zone, not to this one (drop them)`);
    }
    const owner = name.slice(0, -(w.domain.length + 1));
    const own: GlueRecord[] = [];
    for (const a of addresses) {
      const ip = typeof a === 'string' ? canonicalIp(a) : null;
      if (!ip) throw invalid(`address ${JSON.stringify(a)} of name server ${name} is not an IP address`);
      const why = unusable(ip);
      if (why) throw invalid(`address ${a} of name server ${name} is ${why}`);
      if (own.some((g) => g.address === ip.address)) throw invalid(`address ${ip.address} of name server ${name} is listed twice`);
      own.push({ owner, type: ip.family === 4 ? 'A' : 'AAAA', address: ip.address });
    }
    glue.push(...sortRecords(own));
  }
  const s = settings.soa;
  const soa = {
    mname: nameservers[0] as string,
    rname: soaRname(s?.email),
    refresh: intSetting('soa refresh', s?.refresh, 1, 2147483647),
    retry: intSetting('soa retry', s?.retry, 1, 2147483647),
    expire: intSetting('soa expire', s?.expire, 1, 2147483647),
    negative_ttl: intSetting('soa negative_ttl', s?.negative_ttl, 0, 86400),
  };
  const digest = createHash('sha256').update(JSON.stringify({ ...w, nameservers, glue, soa })).digest('hex');
  return { ...w, nameservers, glue, soa, digest };
}

// ------------------------------------------------------------------------------------------------------ serial
/**
 * The SOA serial: YYYYMMDDnn (RFC 1912 §2.2), kept with the digest of the records it was given to. Unchanged
 * records keep their serial (a re-render is byte-identical, so Ansible reports no change and no secondary
 * transfers anything); changed records get today's first serial, or the previous one + 1 when that is not
 * greater (RFC 1982 serial arithmetic, so a serial near 2^32 wraps correctly).
 */
export interface SerialRecord { serial: number; digest: string }

export const SERIAL_MAX = 0xffffffff;

export function dateSerial(now: Date): number {
  return Number(now.toISOString().slice(0, 10).replace(/-/g, '')) * 100;
}

/** RFC 1982: a is greater than b in 32-bit serial number arithmetic. */
export function serialGreater(a: number, b: number): boolean {
  const d = (a - b + 2 ** 32) % 2 ** 32;
  return d !== 0 && d < 2 ** 31;
}

export function nextSerial(prev: SerialRecord | null, digest: string, now: Date): number {
  if (prev && prev.digest === digest) return prev.serial;
  const today = dateSerial(now);
  if (!prev || serialGreater(today, prev.serial)) return today;
  return (prev.serial + 1) % 2 ** 32;
}

/** Does a server's current answer for the wildcard (type, address, TTL) equal the records, TTL included? */
export function sameWildcard(want: WildcardRecords, current: ReadonlyArray<AddressRecord & { ttl: number }>): boolean {
  const key = (r: AddressRecord) => `${r.type} ${r.address}`;
  const have = new Set(current.map(key));
  return have.size === current.length && current.length === want.records.length &&
    want.records.every((r) => have.has(key(r))) && current.every((r) => r.ttl === want.ttl);
}
