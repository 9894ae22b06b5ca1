/**
 * readState: rebuilds the routing state from its files — they are the source of truth. Every value is checked
 * again with the SPI rules, so a hand-edited file cannot smuggle anything through. Reads
 * <state_dir>/routes/index.json and apps/<id>.json (schema 3). The single file of schema 2 and the inventory
 * layout of older versions (JSON, or the schema-1 YAML) are parsed by parseVars for the migration (vars/migrate.ts).
 */
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import yaml from 'js-yaml';
import type { Config } from '../config.js';
import { RproxyError } from '../errors.js';
import * as f from '../spi/fields.js';
import { appId, compareEndpoints, emptyState, endpointKey, type AppState, type Endpoint, type State, type TlsEntry } from '../state/types.js';
import { indexAliases } from '../state/reduce.js';
import { appFilePath, appsDir, indexFilePath, routesDir } from './paths.js';
import { INDEX_APPS_KEY, SCHEMA_KEY, SCHEMA_VERSION, SINGLE_FILE_SCHEMA, UNSAFE_KEY } from './emit.js';

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
    return { schema: SINGLE_FILE_SCHEMA, doc: JSON.parse(text, unwrapUnsafe) };
  } catch (e) {
    if (e instanceof FormatError) throw e;
    const m = (e as Error).message.split('\n')[0] ?? '';
    throw new FormatError(`not valid JSON${lineOf(text, m)}: ${m}`);
  }
}

/** Parses a single-file state (schema 2 JSON, or schema 1 YAML) (pure apart from reading TLS files through `readTls`); the format follows `file`'s extension. */
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

/** What is on disk, as the writer needs it to write only what changed (vars/write.ts). */
export interface DiskState {
  /** app id -> sha256 of its apps/<id>.json as on disk */
  files: Map<string, string>;
  /** sha256 of index.json (null: none) */
  indexSha: string | null;
  /** names in apps/ that the index does not name (left by an interrupted write): removed by the next write */
  strays: string[];
  /**
   * index.json's app entries as last written (ids sorted, id -> its rendered line), kept by the writer so a batch
   * re-renders only the entries it changed (vars/write.ts). Absent: rebuilt from the state at the next write.
   */
  index?: IndexEntries;
}

/** The app entries of index.json: `ids` sorted as written, `lines` the text of each entry (emit.ts indexEntry). */
export interface IndexEntries { ids: string[]; lines: Map<string, string> }

export const emptyDisk = (): DiskState => ({ files: new Map(), indexSha: null, strays: [] });

export interface ReadResult {
  state: State;
  /** null when there is no index.json (no apps yet) */
  disk: DiskState | null;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
/** An app id as it may appear in a file name: the reducer's ids are `<app_name>-<namespace>`, both [a-z0-9]+. */
const APP_ID_RE = /^[a-z0-9]{1,32}-[a-z0-9]{1,16}$/;

/** index.json parsed and checked: app id -> digest. Throws ERR_STATE_CORRUPT naming the file. */
function parseIndex(text: string, file: string): Map<string, string> {
  const corrupt = (what: string) => new RproxyError('ERR_STATE_CORRUPT', `${file}: ${what}. Fix or remove the routes directory (then replay the SPI stream with "paas-rproxy apply").`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    const m = (e as Error).message.split('\n')[0] ?? '';
    throw corrupt(`not valid JSON${lineOf(text, m)}: ${m}`);
  }
  if (!isObj(doc)) throw corrupt('not a mapping');
  if (doc[SCHEMA_KEY] !== SCHEMA_VERSION) throw corrupt(`${SCHEMA_KEY} is not ${SCHEMA_VERSION}`);
  const apps = doc[INDEX_APPS_KEY];
  if (!isObj(apps)) throw corrupt(`${INDEX_APPS_KEY} is not a mapping`);
  const out = new Map<string, string>();
  for (const [id, d] of Object.entries(apps)) {
    if (!APP_ID_RE.test(id)) throw corrupt(`${JSON.stringify(id.slice(0, 80))} is not an app id`);
    if (typeof d !== 'string' || !/^[0-9a-f]{64}$/.test(d)) throw corrupt(`app ${id}: the digest is not a sha256`);
    out.set(id, d);
  }
  return out;
}

/**
 * The app digests of the index (appDigest of each app, what the runner compares per proxy) without reading any
 * app file; null when there is no index (no state yet, or one still to migrate). index.json is replaced
 * atomically, so no lock is needed.
 */
export async function readIndexDigests(config: Config): Promise<Record<string, string> | null> {
  const file = indexFilePath(config);
  const text = await readText(file);
  if (text === null) return null;
  return Object.fromEntries(parseIndex(text, file));
}

/**
 * The unsafe wrappers of a parsed app file replaced by their strings. For a small document this walk is ~4x faster
 * than JSON.parse with a reviver (10,000 app files at a store's open: ~0.2 s instead of ~0.8 s here).
 */
function unwrapTree(v: unknown): unknown {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = unwrapTree(v[i]);
    return v;
  }
  if (!isObj(v)) return v;
  if (Object.hasOwn(v, UNSAFE_KEY)) return unwrapUnsafe('', v);
  for (const k of Object.keys(v)) v[k] = unwrapTree(v[k]);
  return v;
}

function decodeAppFile(text: string): unknown {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    const m = (e as Error).message.split('\n')[0] ?? '';
    throw new FormatError(`not valid JSON${lineOf(text, m)}: ${m}`);
  }
  return unwrapTree(doc);
}

/** One apps/<id>.json: the app's entry (schema 3), TLS material read through `readTls`. */
export async function parseAppFile(id: string, text: string, file: string, readTls: (rel: string) => Promise<string>): Promise<AppState> {
  try {
    return await parseApp(id, decodeAppFile(text), readTls);
  } catch (e) {
    if (e instanceof FormatError || e instanceof f.FieldError) {
      throw new RproxyError('ERR_STATE_CORRUPT', `${file}: ${e.message}. Fix or remove the app (remove it from index.json and the file), then replay its events with "paas-rproxy apply".`);
    }
    throw e;
  }
}

/**
 * readText, synchronously: reading 10,000 small app files through the promise API costs four thread-pool round
 * trips each (open, fstat, read, close: ~1.5 ms per file here); synchronously it is ~20 µs.
 */
function readTextSync(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new RproxyError('ERR_IO', `cannot read ${file}: ${(e as Error).message}`);
  }
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

/**
 * Reads the state of `config`: the apps index.json names, each from apps/<id>.json (a named file that is missing
 * is ERR_STATE_CORRUPT: the writer never lets that happen); files the index does not name are ignored (reported
 * as strays). No index.json: the empty state. Call under the state lock.
 */
export async function readState(config: Config): Promise<ReadResult> {
  const indexFile = indexFilePath(config);
  const text = await readText(indexFile);
  if (text === null) return { state: emptyState(), disk: null };
  const index = parseIndex(text, indexFile);
  const state = emptyState();
  const files = new Map<string, string>();
  for (const id of index.keys()) {
    const file = appFilePath(config, id);
    const body = readTextSync(file);
    if (body === null) throw new RproxyError('ERR_STATE_CORRUPT', `${indexFile} names app ${id} but ${file} is missing. Restore the file, or remove the app from ${indexFile} and replay its events with "paas-rproxy apply".`);
    state.apps.set(id, await parseAppFile(id, body, file, tlsReader(routesDir(config), file)));
    files.set(id, sha256(body));
  }
  state.aliasOwner = indexAliases(state.apps.values());
  const names = await readdir(appsDir(config)).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [] as string[];
    throw new RproxyError('ERR_IO', `cannot list ${appsDir(config)}: ${e.message}`);
  });
  const strays = names.filter((n) => !(n.endsWith('.json') && index.has(n.slice(0, -5))));
  return { state, disk: { files, indexSha: sha256(text), strays } };
}
