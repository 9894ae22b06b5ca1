/**
 * Who holds which VIP right now (ip -o addr over SSH on every proxy), and waiting until the holders are
 * the ones the VRRP layout plans. The planned masters come from the same pure function the playbook uses.
 */
import { computeVrrpLayout, type VrrpVipInput } from '../layout/vrrp.js';
import type { Connection } from './connection.js';
import { connectSsh, type SshSession } from './ssh.js';

/** The VIP addresses (no prefix) of keepalived_vrrp_vips entries ("A/P", "A", {address}). */
export function vipAddresses(vips: unknown): string[] {
  if (!Array.isArray(vips)) return [];
  return vips.map((v) => (typeof v === 'string' ? v : typeof v === 'object' && v && 'address' in v ? String((v as VrrpVipInput).address) : ''))
    .filter((v) => v !== '')
    .map((v) => v.split('/')[0] as string);
}

/** Planned master per VIP address for `hosts` (inventory order). */
export function plannedMasters(hosts: string[], vips: unknown, routerIdBase?: unknown): Record<string, string> {
  const list = Array.isArray(vips) ? (vips as Array<VrrpVipInput | string>) : [];
  const layout = computeVrrpLayout({
    hosts: hosts.map((name) => ({ name })), vips: list,
    ...(typeof routerIdBase === 'number' ? { router_id_base: routerIdBase } : {}),
  });
  const out: Record<string, string> = {};
  for (const v of layout.vips) out[v.vip.split('/')[0] as string] = v.master;
  return out;
}

/** Pure: the VIPs present in `ip -o addr show` output. */
export function vipsInIpAddr(out: string, vips: readonly string[]): string[] {
  return vips.filter((v) => new RegExp(`\\sinet6?\\s${v.replace(/[.:]/g, '\\$&')}/`).test(out));
}

export class VipWatch {
  private sessions = new Map<string, SshSession>();
  constructor(private readonly conns: Connection[]) {}

  private async session(c: Connection): Promise<SshSession> {
    let s = this.sessions.get(c.host);
    if (!s) { s = await connectSsh(c, { readyTimeoutMs: 5000 }); this.sessions.set(c.host, s); }
    return s;
  }

  /** host -> VIPs it holds (a host that cannot be asked maps to null). */
  async holders(vips: readonly string[]): Promise<Record<string, string[] | null>> {
    const out: Record<string, string[] | null> = {};
    await Promise.all(this.conns.map(async (c) => {
      try {
        const r = await (await this.session(c)).exec('ip -o addr show', { timeoutMs: 5000 });
        out[c.host] = r.code === 0 ? vipsInIpAddr(r.stdout, vips) : null;
      } catch {
        this.sessions.get(c.host)?.dispose();
        this.sessions.delete(c.host);
        out[c.host] = null;
      }
    }));
    return out;
  }

  /**
   * Polls until every VIP is held by exactly its planned host (and by no other), or timeoutMs passes.
   * Resolves with the last observation and whether it matched.
   */
  async waitFor(planned: Record<string, string>, timeoutMs: number, intervalMs = 250): Promise<{ ok: boolean; byVip: Record<string, string[]>; waitedMs: number }> {
    const vips = Object.keys(planned);
    const t0 = Date.now();
    for (;;) {
      const h = await this.holders(vips);
      const byVip: Record<string, string[]> = {};
      for (const v of vips) byVip[v] = [];
      for (const [host, held] of Object.entries(h)) for (const v of held ?? []) byVip[v]?.push(host);
      const ok = vips.every((v) => byVip[v]?.length === 1 && byVip[v]?.[0] === planned[v]);
      if (ok || Date.now() - t0 > timeoutMs) return { ok, byVip, waitedMs: Date.now() - t0 };
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  dispose(): void {
    for (const s of this.sessions.values()) s.dispose();
    this.sessions.clear();
  }
}

export function formatHolders(byVip: Record<string, string[]>): string {
  return Object.entries(byVip).map(([v, hs]) => `${v}→${hs.length ? hs.join('+') : 'nobody'}`).join(' ');
}
