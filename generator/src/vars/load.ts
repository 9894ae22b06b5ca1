/**
 * loadState: rebuilds the routing state from the vars file and the TLS files — they are the source of truth.
 * Every value is checked again with the SPI rules, so a hand-edited file cannot smuggle anything through.
 */
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import yaml from 'js-yaml';
import type { Config } from '../config.js';
import { RproxyError } from '../errors.js';
import * as f from '../spi/fields.js';
import { appId, compareEndpoints, emptyState, type AppState, type Endpoint, type State, type TlsEntry } from '../state/types.js';
import { indexAliases } from '../state/reduce.js';
import { lockPath, varsFilePath } from './paths.js';
import { withLock, type LockOptions } from '../io/lock.js';
import { SCHEMA_VERSION } from './emit.js';

const UnsafeStr = new yaml.Type('!unsafe', { kind: 'scalar', construct: (d: string) => d });
const VARS_SCHEMA = yaml.CORE_SCHEMA.extend([UnsafeStr]);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses the vars text (pure apart from reading TLS files through `readTls`). */
export async function parseVars(text: string, file: string, readTls: (rel: string) => Promise<string>): Promise<State> {
  const corrupt = (what: string) => new RproxyError('ERR_STATE_CORRUPT', `${file}: ${what}. Fix or remove the file (then replay the SPI stream with "paas-rproxy apply").`);
  let doc: unknown;
  try {
    doc = yaml.load(text, { schema: VARS_SCHEMA, filename: file });
  } catch (e) {
    throw corrupt(`not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (!isObj(doc)) throw corrupt('not a mapping');
  if (doc.nginx_rproxy_routes_schema !== SCHEMA_VERSION) throw corrupt(`nginx_rproxy_routes_schema is not ${SCHEMA_VERSION}`);
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
  const aliases = arr('aliases').map((a) => f.hostName('alias', a)).sort();
  const endpoints: Endpoint[] = arr('endpoints').map((e) => {
    if (!isObj(e)) throw new f.FieldError('endpoint is not a mapping');
    return {
      address: f.ipAddress(e.address), port: f.port(e.port), gear_id: f.token('gear_id', e.gear_id),
      port_name: f.token('port_name', e.port_name), protocols: f.tokenList('protocols', e.protocols),
      types: f.tokenList('types', e.types), mappings: f.mappings(e.mappings),
    };
  }).sort(compareEndpoints);
  const tls: TlsEntry[] = [];
  for (const t of arr('tls')) {
    if (!isObj(t)) throw new f.FieldError('tls entry is not a mapping');
    const alias = f.hostName('alias', t.alias);
    if (!aliases.includes(alias)) throw new f.FieldError(`tls alias ${alias} is not one of the aliases`);
    const certFile = f.string('cert_file', t.cert_file);
    const keyFile = f.string('key_file', t.key_file);
    tls.push({ alias, cert: await readTls(certFile), key: await readTls(keyFile) });
  }
  tls.sort((a, b) => (a.alias < b.alias ? -1 : 1));
  return { id, app_name, namespace, scalable: f.boolean('scalable', raw.scalable), ha: f.boolean('ha', raw.ha), aliases, endpoints, tls };
}

/** Reads the state of `config`'s inventory; a missing vars file is the empty state. Also the file's sha256. */
export async function readState(config: Config): Promise<{ state: State; digest: string | null }> {
  const file = varsFilePath(config);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: emptyState(), digest: null };
    throw new RproxyError('ERR_IO', `cannot read ${file}: ${(e as Error).message}`);
  }
  const readTls = async (rel: string): Promise<string> => {
    if (rel.includes('..') || rel.startsWith('/')) throw new f.FieldError(`TLS path ${JSON.stringify(rel)} is outside the inventory`);
    try {
      return await readFile(join(config.inventory_dir, rel), 'utf8');
    } catch (e) {
      throw new RproxyError('ERR_STATE_CORRUPT', `${file} refers to ${rel}, which cannot be read (${(e as NodeJS.ErrnoException).code}). Remove the tls entry or restore the file.`);
    }
  };
  return { state: await parseVars(text, file, readTls), digest: createHash('sha256').update(text).digest('hex') };
}

/**
 * The state as on disk, read under the state lock so it is a consistent snapshot (a writer replaces TLS files
 * and the vars file in steps). Never call it while holding the state lock yourself: use readState there.
 */
export async function loadState(config: Config, lockOptions: LockOptions = {}): Promise<State> {
  return withLock(lockPath(config), async () => (await readState(config)).state, lockOptions);
}
