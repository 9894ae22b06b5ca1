/**
 * `paas-rproxy dns`: the cloud domain's records (`*.<cloud_domain>` → every VIP) as a BIND zone file or an nsupdate
 * batch; `--check-aliases`: the aliases that do not resolve to the VIPs. The VIPs come from --vip, else dns.vips of
 * the config, else keepalived_vrrp_vips of the inventory's proxies group (as Ansible sees it: ansible-inventory).
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { configFromArgv, type Config, type GlobalArgs } from '../config.js';
import { RproxyError } from '../errors.js';
import { loadState } from '../vars/store.js';
import { proxiesOf } from '../runner/inventory.js';
import { hostVars } from '../onboard/connection.js';
import {
  DEFAULT_DNS_SETTINGS, sameWildcard, vipRecords, wildcardRecords, zoneRecords, type DnsSettings, type NameServer,
} from '../dns/records.js';
import { renderNsupdate, renderZone } from '../dns/render.js';
import { zoneSerial } from '../dns/serial.js';
import { PROBLEMS, checkAliases, currentWildcard, resolverLookup, type AliasCheck } from '../dns/check.js';

export interface DnsArgs extends GlobalArgs {
  format: 'zone' | 'nsupdate';
  domain?: string;
  vip?: string[];
  ttl?: number;
  ns?: string[];
  'soa-email'?: string;
  serial?: number;
  server?: string;
  port: number;
  zone?: string;
  'if-changed': boolean;
  'check-aliases': boolean;
  resolver?: string[];
  concurrency?: number;
  'timeout-ms'?: number;
  json: boolean;
  stdin: boolean;
}

/** --stdin: settings as one JSON document (how the rproxy_dns role passes the inventory's values). */
export interface StdinSettings {
  vips?: unknown[];
  nameservers?: NameServer[];
  soa?: Partial<DnsSettings['soa']>;
}

/** Parses the --stdin document (pure): unknown keys are errors, values are checked where they are used. */
export function parseStdinSettings(text: string): StdinSettings {
  const bad = (msg: string) => new RproxyError('ERR_DNS_INVALID', `stdin: ${msg}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw bad(`not a JSON document: ${(e as Error).message}`);
  }
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObj(doc)) throw bad('must be a JSON object {"vips", "nameservers", "soa"}');
  for (const k of Object.keys(doc)) if (!['vips', 'nameservers', 'soa'].includes(k)) throw bad(`unknown key "${k}" (known: vips, nameservers, soa)`);
  const out: StdinSettings = {};
  if (doc.vips !== undefined && doc.vips !== null) {
    if (!Array.isArray(doc.vips)) throw bad('"vips" must be a list');
    out.vips = doc.vips;
  }
  if (doc.nameservers !== undefined && doc.nameservers !== null) {
    if (!Array.isArray(doc.nameservers)) throw bad('"nameservers" must be a list of {name, addresses}');
    out.nameservers = doc.nameservers.map((n, i) => {
      if (!isObj(n) || typeof n.name !== 'string') throw bad(`nameservers[${i}] must be {name, addresses}`);
      for (const k of Object.keys(n)) if (k !== 'name' && k !== 'addresses') throw bad(`unknown key nameservers[${i}].${k}`);
      const addresses = n.addresses ?? [];
      if (!Array.isArray(addresses)) throw bad(`nameservers[${i}].addresses must be a list`);
      return { name: n.name, addresses: addresses as string[] };
    });
  }
  if (doc.soa !== undefined && doc.soa !== null) {
    if (!isObj(doc.soa)) throw bad('"soa" must be an object');
    for (const k of Object.keys(doc.soa)) if (!['email', 'refresh', 'retry', 'expire', 'negative_ttl'].includes(k)) throw bad(`unknown key soa.${k}`);
    out.soa = doc.soa as NonNullable<StdinSettings['soa']>;
  }
  return out;
}

/** --ns NAME or NAME=ADDRESS[,ADDRESS...] */
export function parseNs(spec: string): NameServer {
  const eq = spec.indexOf('=');
  if (eq < 0) return { name: spec, addresses: [] };
  return { name: spec.slice(0, eq), addresses: spec.slice(eq + 1).split(',').map((a) => a.trim()).filter((a) => a !== '') };
}

/** The VIPs: --vip, else dns.vips, else keepalived_vrrp_vips of the first host of the proxies group. */
export async function vipsFor(config: Config, flags: unknown[] | undefined): Promise<{ vips: unknown[]; source: string }> {
  if (flags && flags.length > 0) return { vips: flags, source: '--vip' };
  if (config.dns.vips.length > 0) return { vips: config.dns.vips, source: 'dns.vips of the config' };
  const hosts = await proxiesOf(config).catch((e: Error) => {
    throw new RproxyError('ERR_CONFIG_INVALID', `cannot read the ${config.proxies_group} group of the inventory ${config.inventory_dir}: ${e.message} (or pass --vip)`);
  });
  const first = hosts[0];
  if (first === undefined) {
    throw new RproxyError('ERR_DNS_INVALID', `the ${config.proxies_group} group of the inventory ${config.inventory_dir} has no hosts, so no keepalived_vrrp_vips: pass --vip or set dns.vips`);
  }
  const vars = await hostVars(config, first);
  const vips = vars.keepalived_vrrp_vips;
  if (!Array.isArray(vips) || vips.length === 0) {
    throw new RproxyError('ERR_DNS_INVALID', `keepalived_vrrp_vips is not set for ${first} (group ${config.proxies_group}) in ${config.inventory_dir}: set it there, set dns.vips, or pass --vip`);
  }
  return { vips, source: `keepalived_vrrp_vips of ${first} in ${config.inventory_dir}` };
}

/** Flags over --stdin over the config over the defaults. */
function settingsFor(config: Config, domain: string, argv: DnsArgs, given: StdinSettings): DnsSettings {
  const d = config.dns;
  const soa = { ...d.soa, ...given.soa };
  return {
    ttl: argv.ttl ?? d.ttl,
    nameservers: argv.ns && argv.ns.length > 0 ? argv.ns.map(parseNs) : given.nameservers ?? d.nameservers,
    soa: { ...soa, email: argv['soa-email'] ?? (soa.email || DEFAULT_DNS_SETTINGS(domain).soa.email) },
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin) {
    size += (c as Buffer).length;
    if (size > 1 << 20) throw new RproxyError('ERR_DNS_INVALID', 'stdin: larger than 1 MiB');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function formatChecks(results: AliasCheck[], vips: string[], resolvers: string[]): string {
  const out = [`checked ${results.length} alias(es) against the VIPs ${vips.join(' ')} (resolver: ${resolvers.length ? resolvers.join(' ') : 'the system\'s'})`];
  for (const r of results) {
    if (r.status === 'ok') continue;
    const what = r.status === 'elsewhere' ? `${r.addresses.join(' ')}: not VIPs: ${r.foreign.join(' ')}`
      : r.status === 'partial' ? `${r.addresses.join(' ')}: only some VIPs (missing ${r.missing.join(' ')}); works, spreads over fewer VIPs`
        : r.status === 'unresolved' ? 'no A/AAAA record'
          : `no answer (${r.errors.join(', ')})`;
    out.push(`${r.status.toUpperCase().padEnd(10)} ${r.alias} (app ${r.app}): ${what}`);
  }
  const count = (s: string) => results.filter((r) => r.status === s).length;
  out.push(['ok', 'partial', 'elsewhere', 'unresolved', 'error'].map((s) => `${count(s)} ${s}`).join(', '));
  return out.join('\n') + '\n';
}

async function runCheckAliases(config: Config, argv: DnsArgs, given: StdinSettings): Promise<void> {
  const { vips } = await vipsFor(config, argv.vip ?? given.vips);
  const vipAddresses = vipRecords(vips).map((r) => r.address);
  const state = await loadState(config);
  const aliases = [...state.apps.values()].flatMap((a) => a.aliases.map((alias) => ({ alias, app: a.id })))
    .sort((x, y) => (x.alias < y.alias ? -1 : x.alias > y.alias ? 1 : 0));
  const servers = argv.resolver && argv.resolver.length > 0 ? argv.resolver : config.dns.check.resolvers;
  const { lookup, close } = resolverLookup({ servers, timeoutMs: argv['timeout-ms'] ?? config.dns.check.timeout_ms, tries: 2 });
  let results: AliasCheck[];
  try {
    results = await checkAliases(aliases, vipAddresses, lookup, argv.concurrency ?? config.dns.check.concurrency);
  } finally {
    close();
  }
  const problems = results.filter((r) => PROBLEMS.has(r.status));
  process.stdout.write(argv.json
    ? JSON.stringify({ vips: vipAddresses, resolvers: servers, ok: problems.length === 0, aliases: results }, null, 2) + '\n'
    : formatChecks(results, vipAddresses, servers));
  if (problems.length > 0) {
    throw new RproxyError('ERR_DNS_CHECK_FAILED', `${problems.length} of ${results.length} alias(es) do not resolve to the VIPs: ${problems.map((p) => `${p.alias} (${p.status})`).join(', ')}. Their owners must point them at the VIPs (a CNAME to the application's name in ${config.cloud_domain} does).`);
  }
}

async function runRender(config: Config, argv: DnsArgs, given: StdinSettings): Promise<void> {
  const domain = argv.domain ?? config.cloud_domain;
  const { vips } = await vipsFor(config, argv.vip ?? given.vips);
  const settings = settingsFor(config, domain, argv, given);
  if (argv.format === 'zone') {
    if (argv['if-changed']) throw new RproxyError('ERR_USAGE', '--if-changed goes with --format nsupdate (a zone file is compared by whoever installs it)');
    const records = zoneRecords(domain, vips, settings);
    const serial = argv.serial ?? await zoneSerial(config, records.domain, records.digest);
    process.stdout.write(renderZone(records, serial));
    return;
  }
  const records = wildcardRecords(domain, vips, settings.ttl);
  const target = { server: argv.server ?? null, port: argv.port, zone: argv.zone ?? records.domain };
  const batch = renderNsupdate(records, target); // checks the target before anything is asked
  if (argv['if-changed']) {
    if (target.server === null) throw new RproxyError('ERR_USAGE', '--if-changed needs --server (the server whose answers are compared)');
    const server = target.server.includes(':') ? `[${target.server}]:${target.port}` : `${target.server}:${target.port}`;
    const current = await currentWildcard(records.domain, { servers: [server], timeoutMs: argv['timeout-ms'] ?? config.dns.check.timeout_ms, tries: 2 })
      .catch((e: Error) => {
        throw new RproxyError('ERR_DNS_QUERY_FAILED', `cannot ask ${server} for *.${records.domain}: ${e.message}`);
      });
    if (sameWildcard(records, current)) return;
  }
  process.stdout.write(batch);
}

export const command: CommandModule<GlobalArgs, DnsArgs> = {
  command: 'dns',
  describe: 'Print the cloud domain\'s records (*.<domain> → every VIP) as a BIND zone or an nsupdate batch; --check-aliases checks the aliases',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('format', { choices: ['zone', 'nsupdate'] as const, default: 'zone' as const, describe: 'zone: a BIND zone file (SOA, NS, records); nsupdate: a batch for nsupdate(1) replacing the wildcard\'s A/AAAA records' })
      .option('domain', { type: 'string', requiresArg: true, describe: 'the cloud domain (default: cloud_domain of the config)' })
      .option('vip', { type: 'string', array: true, requiresArg: true, describe: 'a VIP ADDRESS[/PREFIX], repeat per VIP (default: dns.vips of the config, else keepalived_vrrp_vips of the inventory\'s proxies group)' })
      .option('ttl', { type: 'number', requiresArg: true, describe: 'TTL of the records in seconds (default: dns.ttl, 300)' })
      .option('ns', { type: 'string', array: true, requiresArg: true, describe: 'zone: a name server NAME[=ADDRESS,...] (addresses only for names inside the domain), repeat; the first is the SOA primary (default: dns.nameservers)' })
      .option('soa-email', { type: 'string', requiresArg: true, describe: 'zone: the administrator\'s mailbox (default: dns.soa.email, else hostmaster@<domain>)' })
      .option('serial', { type: 'number', requiresArg: true, describe: 'zone: use this SOA serial instead of the one kept in <state_dir>/dns.json (which is then not touched)' })
      .option('server', { type: 'string', requiresArg: true, describe: 'nsupdate: the server to update (IP address); without it nsupdate finds the zone\'s primary' })
      .option('port', { type: 'number', default: 53, requiresArg: true, describe: 'nsupdate: the server\'s port' })
      .option('zone', { type: 'string', requiresArg: true, describe: 'nsupdate: the zone to update, when the cloud domain lies inside a bigger zone of the server (default: the domain)' })
      .option('if-changed', { type: 'boolean', default: false, describe: 'nsupdate: print nothing when --server already answers exactly these records (with this TTL)' })
      .option('check-aliases', { type: 'boolean', default: false, describe: 'resolve every alias of the routing state and list those that do not point at the VIPs (exit 5 when any)' })
      .option('resolver', { type: 'string', array: true, requiresArg: true, describe: '--check-aliases: ask this name server IP[:PORT] (repeat; default: dns.check.resolvers, else the system\'s resolv.conf)' })
      .option('concurrency', { type: 'number', requiresArg: true, describe: '--check-aliases: aliases checked at once (default: dns.check.concurrency, 16)' })
      .option('timeout-ms', { type: 'number', requiresArg: true, describe: 'per DNS question and attempt, 2 attempts (default: dns.check.timeout_ms, 2000)' })
      .option('json', { type: 'boolean', default: false, describe: '--check-aliases: machine-readable output' })
      .option('stdin', { type: 'boolean', default: false, describe: 'read settings as JSON from stdin: {"vips": [...], "nameservers": [{name, addresses}], "soa": {email, refresh, retry, expire, negative_ttl}} (flags still win)' })
      .example('$0 dns > /etc/bind/paas-rproxy/db.apps.example.com', 'the zone, VIPs from the inventory, SOA/NS from the config')
      .example('$0 dns --format nsupdate --server 192.0.2.53 | nsupdate -k /etc/paas-rproxy/tsig.key', 'update the operator\'s DNS server (RFC 2136, TSIG)')
      .example('$0 dns --check-aliases', 'list the aliases that do not resolve to the VIPs')
      .epilog('Exit codes: 0 ok, 2 bad settings (the message names the value), 5 aliases not on the VIPs (--check-aliases) or a DNS server that does not answer (--if-changed).') as Argv<DnsArgs>,
  handler: async (argv: ArgumentsCamelCase<DnsArgs>) => {
    const config = await configFromArgv(argv);
    const given = argv.stdin ? parseStdinSettings(await readStdin()) : {};
    if (argv['check-aliases']) await runCheckAliases(config, argv, given);
    else await runRender(config, argv, given);
  },
};
