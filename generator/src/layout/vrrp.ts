/**
 * VRRP layout: which proxy masters which VIP, every host's priority per VIP, router ids and the
 * tracking weight. Pure (no I/O); the keepalived_vrrp role only prints the result.
 *
 * Addresses: the inventory hands the raw keepalived_vrrp_address / ansible_host; this module decides
 * (vrrpAddress): an ansible_host that is not an IP address is not used, and is an error when unicast
 * VRRP is requested (keepalived would otherwise print `unicast_src_ip None`).
 *
 * Rules (unit-tested in test/unit/layout/):
 * - every VIP has exactly one master (the host with the highest base priority);
 * - masters are spread evenly: per host, the number of mastered VIPs differs by at most one;
 * - priorities are distinct per VIP and within 1..254 (255 = address owner, which tracking cannot lower);
 * - the nginx tracking weight (negative) drops a failed host below every healthy host of every VIP,
 *   so a proxy whose nginx is dead hands over all the VIPs it masters; failed hosts keep distinct
 *   priorities among themselves;
 * - virtual_router_id is unique per VIP;
 * - incremental: the layout of hosts[0..n] is the layout of hosts[0..n-1] rebalanced by moving the
 *   fewest masters possible (floor(K / (n + 1)) VIPs go to the appended host). Host order is the
 *   inventory order, so appending a proxy to the inventory moves the fewest VIPs.
 * - backups are rotated: the VIPs one host masters have different first backups, so a failed
 *   proxy's load spreads over the others.
 * - the hold weight: while a proxy is stale (it missed routing changes; the runner decides, see
 *   runner/vrrphold.ts), every other proxy adds its instance's hold_weight (master +4 -> 254, backups
 *   +53 -> 253, 252, ...): their order is kept, and the first four of every VIP outrank any stale
 *   proxy (at most 250), so a stale proxy cannot re-master a VIP until it has been caught up.
 */
import { RproxyError, type ErrorCode } from '../errors.js';
import { parseIp } from '../net/address.js';

export interface VrrpHostInput {
  /** inventory host name */
  name: string;
  /** explicit VRRP address (keepalived_vrrp_address): must be an IP address when given */
  address?: string | null;
  /** the host's ansible_host, raw: used as the VRRP address when `address` is not given and it is an IP
   *  address. A name (DNS, ssh alias) is not used; with unicast it is an error naming the host. */
  ansible_host?: string | null;
}

export interface VrrpVipInput {
  /** VIP address, optionally with a prefix length (198.51.100.201/24) */
  address: string;
  /** virtual_router_id override (1..255); default router_id_base + position (1-based) */
  router_id?: number | null;
}

export interface VrrpLayoutInput {
  hosts: VrrpHostInput[];
  vips: Array<VrrpVipInput | string>;
  /** default ids are router_id_base + 1 .. router_id_base + K */
  router_id_base?: number;
  /** unicast VRRP (keepalived_vrrp_unicast): every host then needs an IP address (unicast_src_ip/peers) */
  unicast?: boolean;
}

export interface VrrpInstance {
  /** keepalived vrrp_instance name, identical on every host */
  name: string;
  vip: string;
  virtual_router_id: number;
  /** this host's base priority for the VIP */
  priority: number;
  /** true when this host masters the VIP while every proxy is healthy */
  master: boolean;
  /** 0 = master, 1 = first backup, ... */
  rank: number;
  master_host: string;
  /** this host's address (unicast_src_ip), null if unknown */
  unicast_src_ip: string | null;
  /** the other hosts' addresses (unicast_peer), inventory order */
  unicast_peers: string[];
  /** track_file weight of the hold file (1 while another proxy is stale): lifts this host above every
   *  stale proxy and keeps the order of the others (held priority = 254 - rank, capped at 254) */
  hold_weight: number;
}

export interface VrrpVipLayout {
  vip: string;
  name: string;
  virtual_router_id: number;
  master: string;
  /** host name -> base priority */
  priorities: Record<string, number>;
}

export interface VrrpLayout {
  schema: 1;
  /** vrrp_script weight for the nginx health check (negative) */
  track_weight: number;
  vips: VrrpVipLayout[];
  /** host name -> that host's instances, in VIP order */
  hosts: Record<string, { address: string | null; instances: VrrpInstance[] }>;
}

export const MASTER_PRIORITY = 250;
export const BACKUP_TOP_PRIORITY = 200;
/** priorities while another proxy is stale: master 254, first backup 253, ... (255 = address owner) */
export const HELD_MASTER_PRIORITY = 254;
export const HELD_BACKUP_TOP_PRIORITY = 253;

/** The hold weight of an instance of the given rank (0 = planned master). */
export function holdWeight(rank: number): number {
  return rank === 0 ? HELD_MASTER_PRIORITY - MASTER_PRIORITY : HELD_BACKUP_TOP_PRIORITY - BACKUP_TOP_PRIORITY;
}
export const MAX_HOSTS = 64; // keeps every failed priority >= 1 and distinct
export const DEFAULT_ROUTER_ID_BASE = 50;

/** A layout that cannot be computed from its inputs (code ERR_VRRP_*: the inputs to fix). */
export class VrrpLayoutError extends RproxyError {
  override readonly name = 'VrrpLayoutError';
  constructor(code: Extract<ErrorCode, `ERR_VRRP_${string}`>, message: string) {
    super(code, message);
  }
}

const HOST_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$/;
/** An IPv4 or IPv6 literal (net/address.ts, the project's one address parser). */
const isIp = (s: string): boolean => parseIp(s) !== null;

const describe = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(v));

/**
 * The VRRP address of one host. An explicit `address` must be an IP address. Otherwise `ansible_host` is used
 * when it is an IP address; a name is not used (null) — unless unicast is requested, where every host needs an
 * IP address and a missing or non-IP one is an error naming the host.
 */
export function vrrpAddress(h: VrrpHostInput, unicast: boolean): string | null {
  const fix = 'set keepalived_vrrp_address (or ansible_host) to its IP address';
  if (h.address !== undefined && h.address !== null && h.address !== '') {
    if (typeof h.address !== 'string' || !isIp(h.address)) {
      throw new VrrpLayoutError('ERR_VRRP_BAD_HOST', `host "${h.name}": address ${describe(h.address)} is not an IP address`);
    }
    return h.address;
  }
  const a = h.ansible_host;
  if (a !== undefined && a !== null && typeof a !== 'string') {
    throw new VrrpLayoutError('ERR_VRRP_BAD_HOST', `host "${h.name}": ansible_host ${describe(a)} is not a string`);
  }
  if (a && isIp(a)) return a;
  if (unicast) {
    throw new VrrpLayoutError('ERR_VRRP_UNICAST_ADDRESS', a
      ? `host "${h.name}": unicast VRRP needs an IP address, but ansible_host is ${JSON.stringify(a)}: ${fix}`
      : `host "${h.name}": unicast VRRP needs an IP address, and the host has none: ${fix}`);
  }
  return null;
}

function checkVip(address: string): void {
  const [ip, prefix, ...rest] = address.split('/');
  const a = ip === undefined ? null : parseIp(ip);
  const badPrefix =
    prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (ip?.includes(':') ? 128 : 32));
  if (a === null || badPrefix || rest.length > 0) {
    throw new VrrpLayoutError('ERR_VRRP_BAD_VIP', `VIP "${address}" is not an IP address (optionally /prefix)`);
  }
}

/**
 * Master assignment, built incrementally in inventory order: result[v] = index of the master host.
 * Appending host n moves exactly floor(K / (n + 1)) VIPs to it, always from the hosts that master
 * the most (ties: the earliest host), each time the donor's last VIP.
 */
export function assignMasters(hostCount: number, vipCount: number): number[] {
  const masters: number[] = new Array<number>(vipCount).fill(0);
  for (let n = 1; n < hostCount; n++) {
    const take = Math.floor(vipCount / (n + 1));
    for (let t = 0; t < take; t++) {
      const counts = new Array<number>(n).fill(0);
      for (const m of masters) counts[m] = (counts[m] ?? 0) + 1;
      let donor = 0;
      for (let h = 1; h < n; h++) if ((counts[h] ?? 0) > (counts[donor] ?? 0)) donor = h;
      const v = masters.lastIndexOf(donor);
      masters[v] = n;
    }
  }
  return masters;
}

function vipAddress(v: VrrpVipInput | string): string {
  return typeof v === 'string' ? v : v.address;
}

export function computeVrrpLayout(input: VrrpLayoutInput): VrrpLayout {
  const vips = input.vips.map((v) => (typeof v === 'string' ? { address: v } : v));
  const base = input.router_id_base ?? DEFAULT_ROUTER_ID_BASE;
  if (input.hosts.length === 0) throw new VrrpLayoutError('ERR_VRRP_NO_HOSTS', 'the proxies group has no hosts');
  if (input.hosts.length > MAX_HOSTS) {
    throw new VrrpLayoutError('ERR_VRRP_TOO_MANY_HOSTS', `at most ${MAX_HOSTS} proxies are supported, got ${input.hosts.length}`);
  }
  if (vips.length === 0) throw new VrrpLayoutError('ERR_VRRP_NO_VIPS', 'no VIPs configured (keepalived_vrrp_vips)');
  if (!Number.isInteger(base) || base < 0 || base > 254) {
    throw new VrrpLayoutError('ERR_VRRP_BAD_ROUTER_ID', `router_id_base must be an integer in 0..254, got ${String(base)}`);
  }
  const unicast = input.unicast ?? false;
  if (typeof unicast !== 'boolean') throw new VrrpLayoutError('ERR_VRRP_BAD_INPUT', `unicast must be true or false, got ${describe(unicast)}`);
  const seenHosts = new Set<string>();
  const seenAddr = new Set<string>();
  const addresses: Array<string | null> = [];
  for (const h of input.hosts) {
    if (typeof h.name !== 'string' || !HOST_NAME_RE.test(h.name)) {
      throw new VrrpLayoutError('ERR_VRRP_BAD_HOST', `host name ${JSON.stringify(h.name)} is not a valid inventory host name`);
    }
    if (seenHosts.has(h.name)) throw new VrrpLayoutError('ERR_VRRP_DUPLICATE_HOST', `host "${h.name}" is listed twice`);
    seenHosts.add(h.name);
    const address = vrrpAddress(h, unicast);
    if (address !== null) {
      if (seenAddr.has(address)) {
        throw new VrrpLayoutError('ERR_VRRP_DUPLICATE_HOST', `host "${h.name}": address ${address} is used twice`);
      }
      seenAddr.add(address);
    }
    addresses.push(address);
  }
  const hosts = input.hosts.map((h, i) => ({ name: h.name, address: addresses[i] ?? null }));
  const seenVip = new Set<string>();
  const seenId = new Set<number>();
  const ids: number[] = [];
  vips.forEach((v, i) => {
    checkVip(v.address);
    const ip = v.address.split('/')[0] ?? v.address;
    if (seenVip.has(ip)) throw new VrrpLayoutError('ERR_VRRP_DUPLICATE_VIP', `VIP ${ip} is listed twice`);
    seenVip.add(ip);
    const id = v.router_id ?? base + i + 1;
    if (!Number.isInteger(id) || id < 1 || id > 255) {
      throw new VrrpLayoutError('ERR_VRRP_BAD_ROUTER_ID', `VIP ${v.address}: virtual_router_id ${String(id)} is not in 1..255`);
    }
    if (seenId.has(id)) throw new VrrpLayoutError('ERR_VRRP_BAD_ROUTER_ID', `VIP ${v.address}: virtual_router_id ${id} is used twice`);
    seenId.add(id);
    ids.push(id);
  });

  const n = hosts.length;
  const masters = assignMasters(n, vips.length);
  const lowestBackup = BACKUP_TOP_PRIORITY - Math.max(0, n - 2);
  // Master minus |weight| ends below the lowest healthy backup.
  const trackWeight = n === 1 ? -(MASTER_PRIORITY - 1) : -(MASTER_PRIORITY - lowestBackup + 1);

  const nthOfMaster = new Map<number, number>();
  const out: VrrpLayout = { schema: 1, track_weight: trackWeight, vips: [], hosts: {} };
  for (const h of hosts) out.hosts[h.name] = { address: h.address, instances: [] };

  vips.forEach((v, i) => {
    const m = masters[i] ?? 0;
    const j = nthOfMaster.get(m) ?? 0;
    nthOfMaster.set(m, j + 1);
    // others in cyclic order after the master, rotated by j so the master's VIPs get different first backups
    const others: number[] = [];
    for (let t = 1; t < n; t++) others.push((m + t) % n);
    const rot = others.length > 0 ? j % others.length : 0;
    const order = [m, ...others.slice(rot), ...others.slice(0, rot)];
    const id = ids[i] ?? 0;
    const name = `RPROXY_VIP_${id}`;
    const priorities: Record<string, number> = {};
    const rankOf = new Map<number, number>();
    order.forEach((h, rank) => {
      rankOf.set(h, rank);
      const host = hosts[h];
      if (host) priorities[host.name] = rank === 0 ? MASTER_PRIORITY : BACKUP_TOP_PRIORITY - (rank - 1);
    });
    const masterName = hosts[m]?.name ?? '';
    out.vips.push({ vip: vipAddress(v), name, virtual_router_id: id, master: masterName, priorities });
    hosts.forEach((h, hi) => {
      const rank = rankOf.get(hi) ?? 0;
      out.hosts[h.name]?.instances.push({
        name,
        vip: v.address,
        virtual_router_id: id,
        priority: priorities[h.name] ?? 0,
        master: rank === 0,
        rank,
        master_host: masterName,
        unicast_src_ip: h.address,
        unicast_peers: hosts.filter((o) => o.name !== h.name && o.address !== null).map((o) => o.address as string),
        hold_weight: holdWeight(rank),
      });
    });
  });
  return out;
}
