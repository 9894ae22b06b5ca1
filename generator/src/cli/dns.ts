/**
 * `paas-rproxy dns`: the cloud domain's records (`*.<cloud_domain>` → every VIP) as a BIND zone file or an nsupdate
 * batch; `--check-aliases`: the aliases that do not resolve to the VIPs. The VIPs come from --vip, else dns.vips of
 * the config, else keepalived_vrrp_vips of the inventory's proxies group (as Ansible sees it: ansible-inventory).
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { configFromArgv, type Config, type GlobalArgs } from '../config.js';
import { RproxyError } from '../errors.js';
import { loadState } from '../vars/load.js';
import { proxiesOf } from '../runner/core.js';
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
}

/** --ns NAME or NAME=ADDRESS[,ADDRESS...] */
export function parseNs(spec: string): NameServer {
  const eq = spec.indexOf('=');
  if (eq < 0) return { name: spec, addresses: [] };
  return { name: spec.slice(0, eq), addresses: spec.slice(eq + 1).split(',').map((a) => a.trim()).filter((a) => a !== '') };
}

/** The VIPs: --vip, else dns.vips, else keepalived_vrrp_vips of the first host of the proxies group. */
export async function vipsFor(config: Config, flags: string[] | undefined): Promise<{ vips: unknown[]; source: string }> {
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

function settingsFor(config: Config, domain: string, argv: DnsArgs): DnsSettings {
  const d = config.dns;
  const defaults = DEFAULT_DNS_SETTINGS(domain);
  return {
    ttl: argv.ttl ?? d.ttl,
    nameservers: argv.ns && argv.ns.length > 0 ? argv.ns.map(parseNs) : d.nameservers,
    soa: { ...d.soa, email: argv['soa-email'] ?? (d.soa.email || defaults.soa.email) },
  };
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

async function runCheckAliases(config: Config, argv: DnsArgs): Promise<void> {
  const { vips } = await vipsFor(config, argv.vip);
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

async function runRender(config: Config, argv: DnsArgs): Promise<void> {
  const domain = argv.domain ?? config.cloud_domain;
  const { vips } = await vipsFor(config, argv.vip);
  const settings = settingsFor(config, domain, argv);
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
      .example('$0 dns > /etc/bind/paas-rproxy/db.apps.example.com', 'the zone, VIPs from the inventory, SOA/NS from the config')
      .example('$0 dns --format nsupdate --server 192.0.2.53 | nsupdate -k /etc/paas-rproxy/tsig.key', 'update the operator\'s DNS server (RFC 2136, TSIG)')
      .example('$0 dns --check-aliases', 'list the aliases that do not resolve to the VIPs')
      .epilog('Exit codes: 0 ok, 2 bad settings (the message names the value), 5 aliases not on the VIPs (--check-aliases) or a DNS server that does not answer (--if-changed).') as Argv<DnsArgs>,
  handler: async (argv: ArgumentsCamelCase<DnsArgs>) => {
    const config = await configFromArgv(argv);
    if (argv['check-aliases']) await runCheckAliases(config, argv);
    else await runRender(config, argv);
  },
};
