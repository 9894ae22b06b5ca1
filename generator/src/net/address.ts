/**
 * IP addresses (pure): the one parser of the project. Text is parsed to bytes, printed back in one canonical
 * form, and classified, so two spellings of one address are one address and no spelling of a forbidden address
 * slips through a text comparison.
 *
 * - IPv4: exactly four decimal parts 0-255 without leading zeros ("010.0.0.1" is octal to some parsers and
 *   decimal to others, so it is refused rather than guessed).
 * - IPv6: RFC 4291 text forms (`::` once, 1-4 hex digits per group, a dotted IPv4 tail); no zone id, no brackets.
 *   Canonical text is RFC 5952 (lowercase, no leading zeros, the longest run of two or more zero groups as `::`).
 * - An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, any spelling) IS the IPv4 address: its canonical form is the
 *   dotted quad, so "198.51.100.7" and "::ffff:c633:6407" are the same endpoint.
 */

export interface IpAddress {
  family: 4 | 6;
  /** 4 bytes (IPv4, also for IPv4-mapped input) or 16 bytes */
  bytes: Uint8Array;
  /** the canonical text */
  text: string;
}

/** What an address is, for the callers that must refuse some kinds. `unicast` is everything else. */
export type AddressKind =
  | 'unspecified' // 0.0.0.0/8 ("this network"), ::
  | 'loopback' // 127.0.0.0/8, ::1
  | 'link-local' // 169.254.0.0/16 (cloud metadata lives there), fe80::/10
  | 'multicast' // 224.0.0.0/4, ff00::/8
  | 'broadcast' // 255.255.255.255
  | 'reserved' // 240.0.0.0/4 (class E)
  | 'ipv4-compatible' // ::a.b.c.d, deprecated by RFC 4291 (a unicast IPv4 inside)
  | 'unicast';

/** Longest IPv6 text: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255". Longer input is refused before any work. */
const MAX_TEXT = 45;

function parseIpv4Bytes(s: string): Uint8Array | null {
  if (s.length < 7 || s.length > 15) return null;
  const out = new Uint8Array(4);
  let part = 0;
  let value = -1; // -1: no digit yet in this part
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46; /* end acts as a final '.' */
    if (c === 46) {
      if (value < 0 || part > 3) return null;
      out[part++] = value;
      value = -1;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return null; // leading zero
      value = (value < 0 ? 0 : value) * 10 + (c - 48);
      if (++digits > 3 || value > 255) return null;
    } else {
      return null;
    }
  }
  return part === 4 ? out : null;
}

function parseIpv6Bytes(s: string): Uint8Array | null {
  if (s.length < 2) return null;
  const dbl = s.indexOf('::');
  if (dbl !== -1 && s.indexOf('::', dbl + 1) !== -1) return null;
  const parseGroups = (part: string, allowV4Tail: boolean): number[] | null => {
    if (part === '') return [];
    const groups = part.split(':');
    const out: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (allowV4Tail && i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIpv4Bytes(g);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        continue;
      }
      if (g.length < 1 || g.length > 4) return null;
      let v = 0;
      for (let j = 0; j < g.length; j++) {
        const c = g.charCodeAt(j);
        const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
        if (d < 0) return null;
        v = v * 16 + d;
      }
      out.push(v);
    }
    return out;
  };
  let groups: number[];
  if (dbl === -1) {
    const g = parseGroups(s, true);
    if (!g || g.length !== 8) return null;
    groups = g;
  } else {
    const head = parseGroups(s.slice(0, dbl), false);
    const tail = parseGroups(s.slice(dbl + 2), true);
    if (!head || !tail || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => { out[2 * i] = g >> 8; out[2 * i + 1] = g & 255; });
  return out;
}

const isMapped = (b: Uint8Array): boolean => b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;

function ipv4Text(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** RFC 5952 text of 16 bytes. */
function ipv6Text(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1;
  let bestLen = 1; // a single zero group is never compressed
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/**
 * Parses an IP literal; null when `s` is not one (whatever its length: long input is refused at once).
 * `mappedAsIpv6`: keep an IPv4-mapped address as the IPv6 address it is written as (DNS: an AAAA record's value
 * stays an AAAA value), instead of the IPv4 endpoint it reaches.
 */
export function parseIp(s: string, opts: { mappedAsIpv6?: boolean } = {}): IpAddress | null {
  if (s.length > MAX_TEXT) return null;
  const v4 = parseIpv4Bytes(s);
  if (v4) return { family: 4, bytes: v4, text: ipv4Text(v4) };
  if (!s.includes(':')) return null;
  const v6 = parseIpv6Bytes(s);
  if (!v6) return null;
  if (isMapped(v6) && !opts.mappedAsIpv6) {
    const b = v6.slice(12);
    return { family: 4, bytes: b, text: ipv4Text(b) };
  }
  return { family: 6, bytes: v6, text: ipv6Text(v6) };
}

function ipv4Kind(b: Uint8Array): AddressKind {
  const [a, b1] = [b[0]!, b[1]!];
  if (a === 0) return 'unspecified';
  if (a === 127) return 'loopback';
  if (a === 169 && b1 === 254) return 'link-local';
  if (a >= 224 && a <= 239) return 'multicast';
  if (b.every((x) => x === 255)) return 'broadcast';
  if (a >= 240) return 'reserved';
  return 'unicast';
}

/**
 * IPv6 prefixes that carry an IPv4 address which the packets end up at (or are translated to): the kind of the
 * embedded address decides, so 127.0.0.1 is refused in each of these spellings too.
 */
function embeddedIpv4(b: Uint8Array): Uint8Array | null {
  const zero = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  // IPv4-compatible ::a.b.c.d (not :: or ::1 themselves) and IPv4-translated ::ffff:0:a.b.c.d (RFC 2765)
  if (zero(0, 12) || (zero(0, 8) && b[8] === 0xff && b[9] === 0xff && b[10] === 0 && b[11] === 0)) return b.subarray(12);
  // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052), and the local-use 64:ff9b:1::/48 (RFC 8215) used as a /96
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && (zero(4, 12) || (b[4] === 0 && b[5] === 1 && zero(6, 12)))) return b.subarray(12);
  // 6to4 2002:AABB:CCDD::/48 (RFC 3056)
  if (b[0] === 0x20 && b[1] === 0x02) return b.subarray(2, 6);
  return null;
}

export function addressKind(a: IpAddress): AddressKind {
  const b = a.bytes;
  if (a.family === 4) return ipv4Kind(b);
  if (b.every((x) => x === 0)) return 'unspecified';
  if (b.subarray(0, 15).every((x) => x === 0) && b[15] === 1) return 'loopback';
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return 'link-local';
  if (b[0] === 0xff) return 'multicast';
  const v4 = embeddedIpv4(b);
  if (v4) {
    const k = ipv4Kind(v4);
    if (k !== 'unicast') return k;
    if (b.subarray(0, 12).every((x) => x === 0)) return 'ipv4-compatible';
  }
  return 'unicast';
}

export interface Cidr {
  family: 4 | 6;
  /** network bytes (host bits zero) */
  bytes: Uint8Array;
  prefix: number;
  /** canonical text "<address>/<prefix>" */
  text: string;
}

/**
 * Parses "<address>/<prefix>". Host bits must be zero (a typo such as 10.1.0.0/8 is refused with the network it
 * probably meant, never widened silently). An IPv4-mapped network (::ffff:0:0/96 and longer) is its IPv4 network.
 * Returns the reason as a string when `s` is not a network.
 */
export function parseCidr(s: string): Cidr | string {
  const slash = s.indexOf('/');
  if (slash < 0 || s.length > MAX_TEXT + 4) return 'is not ADDRESS/PREFIX';
  const addrText = s.slice(0, slash);
  const prefixText = s.slice(slash + 1);
  if (!/^(?:0|[1-9][0-9]{0,2})$/.test(prefixText)) return 'has no valid prefix length';
  let prefix = Number(prefixText);
  const a = parseIp(addrText);
  if (!a) return 'is not ADDRESS/PREFIX';
  let bytes = a.bytes;
  if (a.family === 4 && addrText.includes(':')) {
    if (prefix < 96) return 'is an IPv4-mapped network shorter than /96 (write the IPv4 network)';
    prefix -= 96;
  }
  const bits = bytes.length * 8;
  if (prefix > bits) return `has a prefix longer than /${bits}`;
  const net = maskBytes(bytes, prefix);
  if (!net.every((x, i) => x === bytes[i])) {
    const text = a.family === 4 ? ipv4Text(net) : ipv6Text(net);
    return `has host bits set (the network is ${text}/${prefix})`;
  }
  bytes = net;
  return { family: a.family, bytes, prefix, text: `${a.text}/${prefix}` };
}

function maskBytes(b: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - 8 * i));
    out[i] = b[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

export function cidrContains(net: Cidr, a: IpAddress): boolean {
  if (net.family !== a.family) return false;
  const m = maskBytes(a.bytes, net.prefix);
  return m.every((x, i) => x === net.bytes[i]);
}

/**
 * For an IPv4 network of at most /30: whether `a` is its network or its broadcast address (neither is a host).
 * Longer prefixes (/31 point-to-point, /32) have no such addresses.
 */
export function isNetworkOrBroadcast(net: Cidr, a: IpAddress): boolean {
  if (net.family !== 4 || a.family !== 4 || net.prefix > 30 || !cidrContains(net, a)) return false;
  const hostBits = (b: Uint8Array) => {
    let all0 = true;
    let all1 = true;
    for (let i = 0; i < 4; i++) {
      const keep = Math.max(0, Math.min(8, net.prefix - 8 * i));
      const hostMask = ~(0xff << (8 - keep)) & 0xff;
      if ((b[i]! & hostMask) !== 0) all0 = false;
      if ((b[i]! & hostMask) !== hostMask) all1 = false;
    }
    return all0 || all1;
  };
  return hostBits(a.bytes);
}

/** "[v6]:port" or "v4:port" of a canonical address text. */
export const hostPort = (text: string, port: number): string => (text.includes(':') ? `[${text}]:${port}` : `${text}:${port}`);
