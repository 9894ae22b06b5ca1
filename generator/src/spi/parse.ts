/**
 * SPI intake (pure): a YAML stream as Psych writes it → one ParsedDoc per document, each standing alone.
 */
import { iterateYamlDocuments } from './split.js';
import { loadSpiDocument } from './load.js';
import * as f from './fields.js';
import { FieldError } from './fields.js';
import { checkCertAndKey, type TlsBudget } from '../tls/pem.js';
import type { Cidr } from '../net/address.js';
import { collectSecrets, loggedMax, redactDocument, redactUnparsed, scrubReason } from './redact.js';
import { SPI_ACTIONS, type ParsedDoc, type SpiAction, type SpiEvent, type SpiRejection } from './types.js';

export interface ParseOptions {
  /** size cap of one document (one SPI message), checked before parsing */
  maxBodyBytes: number;
  /**
   * Optional cap of the whole text (a STOMP body), checked before splitting: over it, the text is one
   * ERR_SPI_TOO_LARGE rejection. Replays of files leave it unset (only each document is capped).
   */
  maxTextBytes?: number;
  /** gear addresses must be inside one of these networks (config gear_networks); absent or empty: any unicast */
  gearNetworks?: readonly Cidr[];
  /**
   * Optional budget of the add_ssl checks of the whole text (the listener: tls/pem.ts MESSAGE_TLS_BUDGET per STOMP
   * message). Replays of files leave it unset (each key is still bounded by MAX_KDF_ITERATIONS).
   */
  tlsBudgetPerText?: Readonly<TlsBudget>;
  /**
   * Optional cap of the documents in the text (a STOMP body: the broker sends one per message): over it, the text
   * is one ERR_SPI_TOO_LARGE rejection and nothing of it is parsed. Replays of files leave it unset.
   */
  maxDocuments?: number;
}

type Fields = Record<string, unknown>;
const APP_FIELDS = ['action', 'app_name', 'namespace'];
/** Every field an action may carry; all are required except those listed in OPTIONAL. */
const ACTION_FIELDS: Record<SpiAction, string[]> = {
  create_application: [...APP_FIELDS, 'scalable', 'ha'],
  delete_application: [...APP_FIELDS, 'scalable', 'ha'],
  add_public_endpoint: [...APP_FIELDS, 'gear_id', 'public_port_name', 'public_address', 'public_port', 'protocols', 'types', 'mappings'],
  add_gear: [...APP_FIELDS, 'gear_id', 'public_port_name', 'public_address', 'public_port', 'protocols', 'types', 'mappings', 'deprecated'],
  remove_public_endpoint: [...APP_FIELDS, 'gear_id', 'public_address', 'public_port'],
  delete_gear: [...APP_FIELDS, 'gear_id', 'public_address', 'public_port', 'deprecated'],
  add_alias: [...APP_FIELDS, 'alias'],
  remove_alias: [...APP_FIELDS, 'alias'],
  add_ssl: [...APP_FIELDS, 'alias', 'ssl', 'private_key', 'pass_phrase'],
  remove_ssl: [...APP_FIELDS, 'alias'],
};
/** pass_phrase: Ruby sends nil/'' for an unencrypted key; deprecated: informational text of add_gear/delete_gear. */
const OPTIONAL = new Set(['pass_phrase', 'deprecated']);
/** A deletion must never be lost over flags it does not need. */
const OPTIONAL_FOR: Partial<Record<SpiAction, Set<string>>> = { delete_application: new Set(['scalable', 'ha']) };
const ACTIONS = new Set<string>(SPI_ACTIONS);

/** Validates one loaded document; throws FieldError with the text after "<action>: ". */
function toEvent(action: SpiAction, d: Fields, opts: ParseOptions, tlsBudget: TlsBudget | undefined): SpiEvent {
  const allowed = ACTION_FIELDS[action];
  for (const k of Object.keys(d)) if (!allowed.includes(k)) throw new FieldError(`unknown field ${f.echoString(k)}`);
  const policy = { gearNetworks: opts.gearNetworks };
  for (const k of allowed) if (!(k in d) && !OPTIONAL.has(k) && !OPTIONAL_FOR[action]?.has(k)) throw new FieldError(`missing field ${k}`);
  const app = { app_name: f.appName(d.app_name), namespace: f.namespace(d.namespace) };
  if ('deprecated' in d) f.string('deprecated', d.deprecated);
  switch (action) {
    case 'create_application':
    case 'delete_application':
      return { action, ...app, scalable: f.boolean('scalable', d.scalable ?? null), ha: f.boolean('ha', d.ha ?? null) };
    case 'add_public_endpoint':
    case 'add_gear':
      return {
        action, ...app,
        gear_id: f.token('gear_id', d.gear_id),
        public_port_name: f.token('public_port_name', d.public_port_name),
        public_address: f.ipAddress(d.public_address, policy),
        public_port: f.port(d.public_port),
        protocols: f.tokenList('protocols', d.protocols),
        types: f.tokenList('types', d.types),
        mappings: f.mappings(d.mappings),
      };
    case 'remove_public_endpoint':
    case 'delete_gear':
      return {
        action, ...app, gear_id: f.token('gear_id', d.gear_id),
        public_address: f.ipAddress(d.public_address, policy), public_port: f.port(d.public_port),
      };
    case 'add_alias':
    case 'remove_alias':
    case 'remove_ssl':
      return { action, ...app, alias: f.hostName('alias', d.alias) };
    case 'add_ssl': {
      const alias = f.hostName('alias', d.alias);
      if (alias.length > f.MAX_TLS_ALIAS) throw new FieldError(`alias ${f.quote(alias)} is longer than ${f.MAX_TLS_ALIAS} characters: it cannot have a certificate (its files are named <alias>.crt and <alias>.key)`);
      const ssl = f.string('ssl', d.ssl);
      const key = f.string('private_key', d.private_key);
      const pass = d.pass_phrase === undefined || d.pass_phrase === null ? '' : f.string('pass_phrase', d.pass_phrase);
      const tls = checkCertAndKey(ssl, key, pass, tlsBudget);
      if (!tls.ok) throw new FieldError(`alias ${JSON.stringify(alias)}: ${tls.reason}`, tls.overBudget ? 'ERR_SPI_TOO_LARGE' : 'ERR_SPI_INVALID');
      return { action, ...app, alias, cert: tls.cert, key: tls.key };
    }
  }
}

/**
 * Parses one document (one SPI message body). Never throws: a document the checks themselves fail on is rejected
 * alone, since an exception would fail the whole batch, and the listener retries a failed batch forever.
 */
export function parseSpiDocument(text: string, index: number, opts: ParseOptions, tlsBudget?: TlsBudget): ParsedDoc {
  try {
    return parseDocument(text, index, opts, tlsBudget);
  } catch (e) {
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return { index, ok: false, rejection: { code: 'ERR_SPI_INVALID', reason: `message could not be checked (internal error ${f.echoString(what.split('\n')[0]!)})` }, logged: redactUnparsed(text) };
  }
}

function parseDocument(text: string, index: number, opts: ParseOptions, tlsBudget: TlsBudget | undefined): ParsedDoc {
  const loaded = loadSpiDocument(text, opts.maxBodyBytes);
  if (!loaded.ok) return { index, ok: false, rejection: loaded.rejection, logged: redactUnparsed(text) };
  const v = loaded.value;
  const invalid = (why: string, action?: string, code: SpiRejection['code'] = 'ERR_SPI_INVALID'): ParsedDoc => {
    // what the log keeps, and a reason that never echoes the value of a secret field (even through an alias)
    const secrets = collectSecrets(v);
    const reason = scrubReason(action === undefined ? why : `${action}: ${why}`, secrets);
    const logged = redactDocument(v, secrets, loggedMax(text.length));
    return action === undefined
      ? { index, ok: false, rejection: { code, reason }, logged }
      : { index, ok: false, action, rejection: { code, reason }, logged };
  };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return invalid(`message is not a mapping (got ${v === null ? 'an empty document' : Array.isArray(v) ? 'a list' : typeof v})`);
  }
  let d: Fields;
  try {
    d = f.normalizeKeys(v as Fields, '');
  } catch (e) {
    return invalid((e as Error).message);
  }
  if (!('action' in d)) return invalid('missing field action');
  if (typeof d.action !== 'string') return invalid('action must be a symbol such as :add_alias');
  const action = d.action.startsWith(':') ? d.action.slice(1) : d.action;
  if (!ACTIONS.has(action)) return invalid(`unknown action ${f.echoString(d.action)}`);
  if (loaded.templateAt !== undefined) {
    return invalid(`${loaded.templateAt} contains a template marker ("{{", "{%" or "{#"), which is never accepted`, action);
  }
  try {
    return { index, ok: true, event: toEvent(action as SpiAction, d, opts, tlsBudget) };
  } catch (e) {
    if (e instanceof FieldError) return invalid(e.message, action, e.code);
    throw e;
  }
}

/** Parses a stream of one or more documents; a broken document is rejected alone, the others still parse. */
export function parseSpiStream(text: string, opts: ParseOptions): ParsedDoc[] {
  return [...iterateSpiStream(text, opts)];
}

/** The same, lazily: one document at a time (replays of large streams keep little in memory). */
export function* iterateSpiStream(text: string, opts: ParseOptions): Generator<ParsedDoc> {
  if (opts.maxTextBytes !== undefined && text.length > opts.maxTextBytes) { // length ≤ bytes: cheap pre-check
    const size = Buffer.byteLength(text, 'utf8');
    if (size > opts.maxTextBytes) {
      yield { index: 0, ok: false, rejection: { code: 'ERR_SPI_TOO_LARGE', reason: `message of ${size} bytes is over the ${opts.maxTextBytes}-byte limit` }, logged: redactUnparsed(text) };
      return;
    }
  }
  let docs: Iterable<string> = iterateYamlDocuments(text);
  if (opts.maxDocuments !== undefined) {
    const first: string[] = [];
    for (const doc of docs) {
      if (first.length === opts.maxDocuments) {
        yield { index: 0, ok: false, rejection: { code: 'ERR_SPI_TOO_LARGE', reason: `message holds more than ${opts.maxDocuments} documents` }, logged: redactUnparsed(text) };
        return;
      }
      first.push(doc);
    }
    docs = first;
  }
  let i = 0;
  const tlsBudget = opts.tlsBudgetPerText && { ...opts.tlsBudgetPerText };
  for (const doc of docs) yield parseSpiDocument(doc, i++, opts, tlsBudget);
  // An empty message is still a message: reject it so it is recorded, never silently dropped.
  if (i === 0) yield { index: 0, ok: false, rejection: { code: 'ERR_SPI_INVALID', reason: 'message is empty (no YAML document)' }, logged: redactUnparsed(text) };
}
