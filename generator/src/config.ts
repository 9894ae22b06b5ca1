/**
 * The configuration: one YAML file (see config.example.yml), embedded defaults, environment and CLI overrides.
 * Unknown keys anywhere are an error naming the key path, so a typo never silently falls back to a default.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { RproxyError } from './errors.js';
import { parseCidr } from './net/address.js';
import type { AppLimits } from './state/types.js';

/** A STOMP broker; tls: STOMP over TLS (ActiveMQ's stomp+ssl connector), the certificate verified against stomp.ca_file. */
export interface StompBroker { host: string; port: number; tls?: boolean }
export interface Config {
  /** Absolute path of the file the config came from, or null for the embedded defaults. */
  source: string | null;
  cloud_domain: string;
  routed_types: string[];
  inventory_dir: string;
  proxies_group: string;
  brokers_group: string;
  state_dir: string;
  max_body_bytes: number;
  /** gear addresses must be inside one of these networks (canonical CIDR text); [] = any unicast address */
  gear_networks: string[];
  /** refuse add_ssl with an expired / not yet valid certificate or one whose names do not cover the alias */
  tls_require_valid: boolean;
  limits: AppLimits;
  /** warm: keep a warm Ansible controller (ansible/warm_controller.py) as the listener's child; runs fall back to cold */
  ansible: { playbook: string; command: string; extra_args: string[]; warm: boolean };
  runner: { quiet_ms: number; max_wait_ms: number; burst_quiet_ms: number; retry_initial_ms: number; retry_max_ms: number; reconcile_interval_s: number };
  stomp: { brokers: StompBroker[]; login: string; passcode: string; destination: string; client_id: string; heartbeat_ms: number; ca_file: string | null };
  metrics: { listen: string };
  dns: DnsConfig;
}

/** `paas-rproxy dns` settings (config.example.yml); values are checked again where they are used (dns/records.ts). */
export interface DnsConfig {
  /** VIPs of *.<cloud_domain>; empty: keepalived_vrrp_vips of the proxies group in the inventory */
  vips: string[];
  ttl: number;
  nameservers: Array<{ name: string; addresses: string[] }>;
  soa: { email: string; refresh: number; retry: number; expire: number; negative_ttl: number };
  check: { resolvers: string[]; concurrency: number; timeout_ms: number };
}

/** Root of the installed package (holds package.json), found from this module's location (src or dist). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(resolve(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

/**
 * The production places, used without a config file (never the current directory): the listener's config, the
 * operator's inventory and the controller's state (routing state, TLS material, locks, status, rejects log).
 */
export const DEFAULT_CONFIG_FILE = '/etc/paas-rproxy/config.yml';
export const DEFAULT_INVENTORY_DIR = '/etc/paas-rproxy/inventory';
export const DEFAULT_STATE_DIR = '/var/lib/paas-rproxy';

export function defaultConfig(): Config {
  return {
    source: null,
    cloud_domain: 'apps.example.com',
    routed_types: ['web_framework'],
    inventory_dir: DEFAULT_INVENTORY_DIR,
    proxies_group: 'proxies',
    brokers_group: 'brokers',
    state_dir: DEFAULT_STATE_DIR,
    max_body_bytes: 1048576,
    gear_networks: [],
    tls_require_valid: true,
    limits: { endpoints_per_app: 1000, aliases_per_app: 2000, tls_aliases_per_app: 100, mappings_per_app: 256 },
    ansible: { playbook: resolve(packageRoot(), 'ansible/site.yml'), command: 'ansible-playbook', extra_args: [], warm: true },
    runner: { quiet_ms: 0, max_wait_ms: 1500, burst_quiet_ms: 250, retry_initial_ms: 1000, retry_max_ms: 60000, reconcile_interval_s: 0 },
    stomp: {
      brokers: [{ host: '127.0.0.1', port: 61613 }],
      login: 'routinginfo',
      passcode: 'routinginfopasswd',
      destination: '/queue/paas-rproxy.routinginfo',
      client_id: 'paas-rproxy',
      heartbeat_ms: 10000,
      ca_file: null,
    },
    metrics: { listen: '127.0.0.1:9464' },
    dns: {
      vips: [],
      ttl: 300,
      nameservers: [],
      // '' = hostmaster@<cloud_domain>
      soa: { email: '', refresh: 3600, retry: 900, expire: 1209600, negative_ttl: 300 },
      check: { resolvers: [], concurrency: 16, timeout_ms: 2000 },
    },
  };
}

// --- schema: each leaf says how to check (and convert) a value; nested objects are sub-schemas ---
type Leaf = (v: unknown, path: string, base: string) => unknown;
interface Schema { [key: string]: Leaf | Schema }

const bad = (path: string, want: string, v: unknown): never => {
  throw new RproxyError('ERR_CONFIG_INVALID', `config: ${path} must be ${want} (got ${JSON.stringify(v)})`);
};
const str: Leaf = (v, p) => (typeof v === 'string' && v.length > 0 ? v : bad(p, 'a non-empty string', v));
const anyStr: Leaf = (v, p) => (typeof v === 'string' ? v : bad(p, 'a string', v));
const path: Leaf = (v, p, base) => resolve(base, str(v, p, base) as string);
const int = (min: number, max: number): Leaf => (v, p) =>
  Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? v : bad(p, `an integer ${min}..${max}`, v);
const bool: Leaf = (v, p) => (typeof v === 'boolean' ? v : bad(p, 'true or false', v));
const cidrList: Leaf = (v, p) => {
  if (!Array.isArray(v)) return bad(p, 'a list of networks (ADDRESS/PREFIX)', v);
  return v.map((x, i) => {
    const c = typeof x === 'string' ? parseCidr(x) : 'is not a string';
    if (typeof c === 'string') throw new RproxyError('ERR_CONFIG_INVALID', `config: ${p}[${i}] ${JSON.stringify(x)} ${c}`);
    return c.text;
  });
};
const strList: Leaf = (v, p) =>
  Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : bad(p, 'a list of strings', v);
const token = /^[A-Za-z0-9_.-]+$/;
const tokenList: Leaf = (v, p) =>
  Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string' && token.test(x)) ? v : bad(p, 'a non-empty list of names', v);
const domain: Leaf = (v, p) =>
  typeof v === 'string' && /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/.test(v)
    ? v : bad(p, 'a lowercase DNS domain', v);
const hostPort: Leaf = (v, p) => (typeof v === 'string' && /^[^\s]+:\d{1,5}$/.test(v) ? v : bad(p, 'HOST:PORT', v));
const brokers: Leaf = (v, p) => {
  if (!Array.isArray(v) || v.length === 0) return bad(p, 'a non-empty list of {host, port}', v);
  return v.map((b, i) => {
    const bp = `${p}[${i}]`;
    if (!isPlainObject(b)) return bad(bp, 'a mapping {host, port}', b);
    for (const k of Object.keys(b)) if (k !== 'host' && k !== 'port' && k !== 'tls') unknownKey(`${bp}.${k}`);
    const out: StompBroker = { host: str(b.host, `${bp}.host`, '') as string, port: int(1, 65535)(b.port, `${bp}.port`, '') as number };
    if (b.tls !== undefined) out.tls = typeof b.tls === 'boolean' ? b.tls : bad(`${bp}.tls`, 'true or false', b.tls);
    return out;
  });
};

const nameservers: Leaf = (v, p) => {
  if (!Array.isArray(v)) return bad(p, 'a list of {name, addresses}', v);
  return v.map((n, i) => {
    const np = `${p}[${i}]`;
    if (!isPlainObject(n)) return bad(np, 'a mapping {name, addresses}', n);
    for (const k of Object.keys(n)) if (k !== 'name' && k !== 'addresses') unknownKey(`${np}.${k}`);
    return { name: str(n.name, `${np}.name`, ''), addresses: n.addresses === undefined ? [] : strList(n.addresses, `${np}.addresses`, '') };
  });
};

const SCHEMA: Schema = {
  cloud_domain: domain,
  routed_types: tokenList,
  inventory_dir: path,
  proxies_group: str,
  brokers_group: str,
  state_dir: path,
  max_body_bytes: int(1024, 64 * 1048576),
  gear_networks: cidrList,
  tls_require_valid: bool,
  limits: {
    endpoints_per_app: int(1, 1_000_000), aliases_per_app: int(1, 1_000_000), tls_aliases_per_app: int(0, 1_000_000),
    mappings_per_app: int(0, 1_000_000),
  },
  ansible: { playbook: path, command: str, extra_args: strList, warm: bool },
  runner: {
    quiet_ms: int(0, 3_600_000), max_wait_ms: int(0, 3_600_000), burst_quiet_ms: int(0, 3_600_000), retry_initial_ms: int(1, 3_600_000),
    retry_max_ms: int(1, 86_400_000), reconcile_interval_s: int(0, 86_400),
  },
  stomp: {
    brokers, login: anyStr, passcode: anyStr, destination: str, client_id: str, heartbeat_ms: int(0, 3_600_000),
    ca_file: (v, p, base) => (v === null ? null : path(v, p, base)),
  },
  metrics: { listen: hostPort },
  dns: {
    vips: strList, ttl: int(1, 604800), nameservers,
    soa: { email: anyStr, refresh: int(1, 2147483647), retry: int(1, 2147483647), expire: int(1, 2147483647), negative_ttl: int(0, 86400) },
    check: { resolvers: strList, concurrency: int(1, 256), timeout_ms: int(100, 60_000) },
  },
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function unknownKey(keyPath: string): never {
  throw new RproxyError('ERR_CONFIG_UNKNOWN_KEY', `config: unknown key "${keyPath}" (see config.example.yml for the valid keys)`);
}

/** Checks `input` against `schema` and merges it over `target` (mutated). */
function merge(target: Record<string, unknown>, input: Record<string, unknown>, schema: Schema, base: string, prefix: string): void {
  for (const [k, v] of Object.entries(input)) {
    const keyPath = prefix ? `${prefix}.${k}` : k;
    const rule = schema[k];
    if (rule === undefined) unknownKey(keyPath);
    if (typeof rule === 'function') {
      target[k] = rule(v, keyPath, base);
    } else {
      if (v === null) continue; // an empty section ("runner:") keeps the defaults
      if (!isPlainObject(v)) bad(keyPath, 'a mapping', v);
      merge(target[k] as Record<string, unknown>, v as Record<string, unknown>, rule as Schema, base, keyPath);
    }
  }
}

/** Parses and checks a config text; relative paths resolve against `baseDir`. Pure. */
export function parseConfig(text: string, baseDir: string, source: string | null = null): Config {
  let doc: unknown;
  try {
    doc = yaml.load(text, { schema: yaml.CORE_SCHEMA, filename: source ?? 'config' });
  } catch (e) {
    throw new RproxyError('ERR_CONFIG_INVALID', `config: not valid YAML: ${(e as Error).message}`);
  }
  const cfg = defaultConfig();
  cfg.source = source;
  if (doc === null || doc === undefined) return cfg;
  if (!isPlainObject(doc)) throw new RproxyError('ERR_CONFIG_INVALID', 'config: the file must be a YAML mapping');
  merge(cfg as unknown as Record<string, unknown>, doc, SCHEMA, baseDir, '');
  return cfg;
}

export interface LoadConfigOptions {
  /** --config FILE */
  file?: string | undefined;
  /** environment (default process.env): PAAS_RPROXY_CONFIG, PAAS_RPROXY_STOMP_LOGIN, PAAS_RPROXY_STOMP_PASSCODE */
  env?: NodeJS.ProcessEnv | undefined;
  /** --inventory DIR (relative to cwd) */
  inventory?: string | undefined;
  /** --state-dir DIR (relative to cwd) */
  stateDir?: string | undefined;
  /** the file used when neither --config nor $PAAS_RPROXY_CONFIG names one, if it exists (tests pass their own) */
  defaultFile?: string | undefined;
}

/**
 * --config FILE, else $PAAS_RPROXY_CONFIG, else /etc/paas-rproxy/config.yml when it exists, else the embedded
 * defaults (production paths); then env, --inventory and --state-dir overrides.
 */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<Config> {
  const env = opts.env ?? process.env;
  const fallback = opts.defaultFile ?? DEFAULT_CONFIG_FILE;
  const file = opts.file ?? (env.PAAS_RPROXY_CONFIG || undefined) ?? (existsSync(fallback) ? fallback : undefined);
  let cfg: Config;
  if (file !== undefined) {
    const abs = resolve(file);
    let text: string;
    try {
      text = await readFile(abs, 'utf8');
    } catch (e) {
      throw new RproxyError('ERR_CONFIG_NOT_FOUND', `config: cannot read ${abs}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    cfg = parseConfig(text, dirname(abs), abs);
  } else {
    cfg = defaultConfig();
  }
  if (env.PAAS_RPROXY_STOMP_LOGIN) cfg.stomp.login = env.PAAS_RPROXY_STOMP_LOGIN;
  if (env.PAAS_RPROXY_STOMP_PASSCODE) cfg.stomp.passcode = env.PAAS_RPROXY_STOMP_PASSCODE;
  if (opts.inventory !== undefined) cfg.inventory_dir = isAbsolute(opts.inventory) ? opts.inventory : resolve(opts.inventory);
  if (opts.stateDir !== undefined) cfg.state_dir = isAbsolute(opts.stateDir) ? opts.stateDir : resolve(opts.stateDir);
  return cfg;
}

/** The global CLI options every command gets (declared once in cli/main.ts). */
export interface GlobalArgs {
  config?: string | undefined;
  inventory?: string | undefined;
  stateDir?: string | undefined;
}

/** Config for a CLI command: --config / $PAAS_RPROXY_CONFIG / /etc/paas-rproxy/config.yml / defaults, then --inventory, --state-dir. */
export function configFromArgv(argv: GlobalArgs, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  return loadConfig({ file: argv.config, inventory: argv.inventory, stateDir: argv.stateDir, env });
}
