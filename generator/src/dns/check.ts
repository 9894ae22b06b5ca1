/**
 * Questions to live DNS. `paas-rproxy dns --check-aliases`: does every alias of the routing state resolve to the
 * VIPs? Aliases live in the application owners' own domains, so a wrong one can only be reported. The verdict
 * (classify) is pure; the questions go through a Resolver with a timeout and a bounded number in flight.
 * `--if-changed`: what a server answers for the wildcard now (currentWildcard).
 */
import { Resolver } from 'node:dns/promises';
import { canonicalIp } from './records.js';

/**
 * ok: every address is a VIP and every VIP is there. partial: only VIPs, but not all of them (reaches the proxies;
 * fewer VIPs to spread over: reported, not a failure). elsewhere: some address is not a VIP (those clients miss
 * the proxies). unresolved: no A/AAAA record (NXDOMAIN or no data). error: the question got no answer (timeout,
 * SERVFAIL, refused): unknown.
 */
export type AliasStatus = 'ok' | 'partial' | 'elsewhere' | 'unresolved' | 'error';
export const PROBLEMS: ReadonlySet<AliasStatus> = new Set(['elsewhere', 'unresolved', 'error']);

export interface AliasCheck {
  alias: string;
  app: string;
  status: AliasStatus;
  /** what it resolves to (A and AAAA, canonical, sorted) */
  addresses: string[];
  /** addresses that are not VIPs */
  foreign: string[];
  /** VIPs it does not resolve to */
  missing: string[];
  /** the resolver's error codes, when a question failed */
  errors: string[];
}

/** The outcome of one question: addresses, or the resolver's error code. */
export type Answer = { addresses: string[] } | { code: string };

/** No such name / no record of that type: an answer, not a failure. */
const NO_RECORD = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN', 'NODATA']);

export function classify(alias: string, app: string, answers: { a: Answer; aaaa: Answer }, vips: ReadonlySet<string>): AliasCheck {
  const addresses = new Set<string>();
  const errors: string[] = [];
  for (const [type, ans] of [['A', answers.a], ['AAAA', answers.aaaa]] as const) {
    if ('addresses' in ans) for (const a of ans.addresses) addresses.add(canonicalIp(a)?.address ?? a);
    else if (!NO_RECORD.has(ans.code)) errors.push(`${type} ${ans.code}`);
  }
  const list = [...addresses].sort();
  const foreign = list.filter((a) => !vips.has(a));
  const missing = [...vips].filter((v) => !addresses.has(v)).sort();
  const status: AliasStatus = foreign.length > 0 ? 'elsewhere'
    : errors.length > 0 ? 'error'
      : list.length === 0 ? 'unresolved'
        : missing.length > 0 ? 'partial' : 'ok';
  return { alias, app, status, addresses: list, foreign, missing, errors };
}

export interface Lookup {
  (name: string, type: 'A' | 'AAAA'): Promise<string[]>;
}

export interface ResolverOptions {
  /** name servers "IP" or "IP:PORT" ("[v6]:PORT"); empty: the system's (/etc/resolv.conf) */
  servers: readonly string[];
  /** per attempt */
  timeoutMs: number;
  tries: number;
}

/** Questions through c-ares (node:dns Resolver): CNAME chains are followed; each question is bounded in time. */
export function resolverLookup(o: ResolverOptions): { lookup: Lookup; close: () => void } {
  const r = new Resolver({ timeout: o.timeoutMs, tries: o.tries });
  if (o.servers.length > 0) r.setServers([...o.servers]);
  return {
    lookup: (name, type) => (type === 'A' ? r.resolve4(name) : r.resolve6(name)),
    close: () => r.cancel(),
  };
}

async function ask(lookup: Lookup, name: string, type: 'A' | 'AAAA'): Promise<Answer> {
  try {
    return { addresses: await lookup(name, type) };
  } catch (e) {
    return { code: String((e as NodeJS.ErrnoException).code ?? (e as Error).message) };
  }
}

/** Checks every alias, at most `concurrency` aliases in flight (two questions each). Results in input order. */
export async function checkAliases(
  aliases: ReadonlyArray<{ alias: string; app: string }>, vips: readonly string[], lookup: Lookup, concurrency: number,
): Promise<AliasCheck[]> {
  const vipSet = new Set(vips.map((v) => canonicalIp(v)?.address ?? v));
  const out: AliasCheck[] = new Array(aliases.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < aliases.length; i = next++) {
      const { alias, app } = aliases[i]!;
      const [a, aaaa] = await Promise.all([ask(lookup, alias, 'A'), ask(lookup, alias, 'AAAA')]);
      out[i] = classify(alias, app, { a, aaaa }, vipSet);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, aliases.length)) }, worker));
  return out;
}

/** The wildcard's current answers at one server: {A: [...], AAAA: [...]} with TTLs, for `--if-changed`. */
export async function currentWildcard(domain: string, o: ResolverOptions): Promise<Array<{ type: 'A' | 'AAAA'; address: string; ttl: number }>> {
  const r = new Resolver({ timeout: o.timeoutMs, tries: o.tries });
  r.setServers([...o.servers]);
  const name = `*.${domain}`;
  const out: Array<{ type: 'A' | 'AAAA'; address: string; ttl: number }> = [];
  try {
    for (const type of ['A', 'AAAA'] as const) {
      try {
        const rs = type === 'A' ? await r.resolve4(name, { ttl: true }) : await r.resolve6(name, { ttl: true });
        for (const x of rs) out.push({ type, address: canonicalIp(x.address)?.address ?? x.address, ttl: x.ttl });
      } catch (e) {
        const code = String((e as NodeJS.ErrnoException).code ?? '');
        if (!NO_RECORD.has(code)) throw Object.assign(new Error(`${type} ${name} at ${o.servers.join(', ')}: ${code || (e as Error).message}`), { code });
      }
    }
  } finally {
    r.cancel();
  }
  return out;
}
