/**
 * loadState: rebuilds the routing state from the vars file and the TLS files — they are the source of truth.
 * Every value is checked again with the SPI rules, so a hand-edited file cannot smuggle anything through.
 * Reads <state_dir>/routes/rproxy_routes.json (schema 2). The inventory layout of older versions (JSON, or the
 * schema-1 YAML) is parsed by the same code for the migration (vars/migrate.ts).
 */
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import yaml from 'js-yaml';
import type { Config } from '../config.js';
import { RproxyError } from '../errors.js';
import * as f from '../spi/fields.js';
import { appId, compareEndpoints, emptyState, endpointKey, type AppState, type Endpoint, type State, type TlsEntry } from '../state/types.js';
import { indexAliases } from '../state/reduce.js';
import { routesDir, varsFilePath } from './paths.js';
import { SCHEMA_VERSION, UNSAFE_KEY } from './emit.js';

/** Schema of the legacy YAML file (rproxy_routes.yml, strings tagged !unsafe). */
export const LEGACY_SCHEMA_VERSION = 1;
const UnsafeStr = new yaml.Type('!unsafe', { kind: 'scalar', construct: (d: string) => d });
const VARS_SCHEMA = yaml.CORE_SCHEMA.extend([UnsafeStr]);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

class FormatError extends Error {}

/**
 * JSON.parse reviver: `{"__ansible_unsafe": "s"}` → "s" (a plain string is accepted too: the next write wraps
 * it). Unwrapping while parsing keeps one tree in memory instead of two (10,000 apps: ~40 MiB less peak RSS).
 */
function unwrapUnsafe(_key: string, v: unknown): unknown {
  if (!isObj(v) || !Object.hasOwn(v, UNSAFE_KEY)) return v;
  const s = v[UNSAFE_KEY];
  if (typeof s !== 'string' || Object.keys(v).length !== 1) throw new FormatError(`a ${UNSAFE_KEY} object must hold exactly one string`);
  return s;
}

const lineOf = (text: string, msg: string): string => {
  const pos = /at position (\d+)/.exec(msg);
  if (!pos) return '';
  const before = text.slice(0, Number(pos[1]));
  return ` (line ${before.split('\n').length})`;
};

/** The document of a vars file: JSON (schema 2), or the legacy YAML (schema 1) when `file` ends in .yml. */
function decode(text: string, file: string): { schema: number; doc: unknown } {
  if (file.endsWith('.yml') || file.endsWith('.yaml')) {
    try {
      return { schema: LEGACY_SCHEMA_VERSION, doc: yaml.load(text, { schema: VARS_SCHEMA, filename: file }) };
    } catch (e) {
      throw new FormatError(`not valid YAML (${(e as Error).message.split('\n')[0]})`);
    }
  }
  try {
    return { schema: SCHEMA_VERSION, doc: JSON.parse(text, unwrapUnsafe) };
  } catch (e) {
    if (e instanceof FormatError) throw e;
    const m = (e as Error).message.split('\n')[0] ?? '';
    throw new FormatError(`not valid JSON${lineOf(text, m)}: ${m}`);
  }
}

/** Parses the vars text (pure apart from reading TLS files through `readTls`); the format follows `file`'s extension. */
export async function parseVars(text: string, file: string, readTls: (rel: string) => Promise<string>): Promise<State> {
  const corrupt = (what: string) => new RproxyError('ERR_STATE_CORRUPT', `${file}: ${what}. Fix or remove the file (then replay the SPI stream with "paas-rproxy apply").`);
  let decoded;
  try {
    decoded = decode(text, file);
  } catch (e) {
    if (e instanceof FormatError) throw corrupt(e.message);
    throw e;
  }
  const { schema, doc } = decoded;
  if (!isObj(doc)) throw corrupt('not a mapping');
  if (doc.nginx_rproxy_routes_schema !== schema) throw corrupt(`nginx_rproxy_routes_schema is not ${schema}`);
  const apps = doc.nginx_rproxy_apps;
  if (!isObj(apps)) throw corrupt('nginx_rproxy_apps is not a mapping');
  const state = emptyState();
  for (const [id, raw] of Object.entries(apps)) {
    try {
      const app = await parseApp(id, raw, readTls);
      state.apps.set(id, app);
    } catch (e) {
      if (e instanceof f.FieldError) throw corrupt(`app ${id}: ${e.message}`);
      throw e;
    }
  }
  state.aliasOwner = indexAliases(state.apps.values());
  return state;
}

async function parseApp(id: string, raw: unknown, readTls: (rel: string) => Promise<string>): Promise<AppState> {
  if (!isObj(raw)) throw new f.FieldError('entry is not a mapping');
  const app_name = f.appName(raw.app_name);
  const namespace = f.namespace(raw.namespace);
  if (appId(app_name, namespace) !== id) throw new f.FieldError(`key does not match app_name-namespace`);
  const arr = (name: string): unknown[] => {
    const v = raw[name];
    if (!Array.isArray(v)) throw new f.FieldError(`${name} is not a list`);
    return v;
  };
  const aliases = [...new Set(arr('aliases').map((a) => f.hostName('alias', a)))].sort();
  const aliasSet = new Set(aliases);
  // Addresses are canonicalized (a file written before they were keeps loading): two spellings of one address
  // become one endpoint, the first in endpoint order.
  const seen = new Set<string>();
  const endpoints: Endpoint[] = arr('endpoints').map((e) => {
    if (!isObj(e)) throw new f.FieldError('endpoint is not a mapping');
    return {
      address: f.ipAddress(e.address, {}, 'address'), port: f.port(e.port), gear_id: f.token('gear_id', e.gear_id),
      port_name: f.token('port_name', e.port_name), protocols: f.tokenList('protocols', e.protocols),
      types: f.tokenList('types', e.types), mappings: f.mappings(e.mappings),
    };
  }).sort(compareEndpoints).filter((e) => (seen.has(endpointKey(e)) ? false : (seen.add(endpointKey(e)), true)));
  const tls: TlsEntry[] = [];
  for (const t of arr('tls')) {
    if (!isObj(t)) throw new f.FieldError('tls entry is not a mapping');
    const alias = f.hostName('alias', t.alias);
    if (!aliasSet.has(alias)) throw new f.FieldError(`tls alias ${alias} is not one of the aliases`);
    const certFile = f.string('cert_file', t.cert_file);
    const keyFile = f.string('key_file', t.key_file);
    tls.push({ alias, cert: await readTls(certFile), key: await readTls(keyFile) });
  }
  tls.sort((a, b) => (a.alias < b.alias ? -1 : 1));
  return { id, app_name, namespace, scalable: f.boolean('scalable', raw.scalable), ha: f.boolean('ha', raw.ha), aliases, endpoints, tls };
}

export interface ReadResult {
  state: State;
  /** sha256 of rproxy_routes.json (null when there is none: no apps yet) */
  digest: string | null;
}

export async function readText(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new RproxyError('ERR_IO', `cannot read ${file}: ${(e as Error).message}`);
  }
}

/** Reads TLS files named relative to `base`; the path must stay inside it. */
export function tlsReader(base: string, source: string): (rel: string) => Promise<string> {
  return async (rel: string): Promise<string> => {
    if (rel.split('/').includes('..') || rel.startsWith('/')) throw new f.FieldError(`TLS path ${JSON.stringify(rel)} is outside ${base}`);
    try {
      return await readFile(join(base, rel), 'utf8');
    } catch (e) {
      throw new RproxyError('ERR_STATE_CORRUPT', `${source} refers to ${rel}, which cannot be read (${(e as NodeJS.ErrnoException).code}). Remove the tls entry or restore the file.`);
    }
  };
}

/** Reads the state of `config`: <state_dir>/routes/rproxy_routes.json, or the empty state when there is none. Call under the state lock. */
export async function readState(config: Config): Promise<ReadResult> {
  const file = varsFilePath(config);
  const text = await readText(file);
  if (text === null) return { state: emptyState(), digest: null };
  const state = await parseVars(text, file, tlsReader(routesDir(config), file));
  return { state, digest: createHash('sha256').update(text).digest('hex') };
}
