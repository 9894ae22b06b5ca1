/**
 * StateStore: the one way to change the routing state. Parses, validates and redacts outside the lock (pure,
 * CPU only, whatever the input), then under the cross-process lock: re-reads the files if another process
 * changed them, reduces, writes atomically, appends rejections to the rejects log, and only then resolves — so
 * a caller may ack once it resolves.
 */
import { stat } from 'node:fs/promises';
import type { Config } from '../config.js';
import { withLock, type LockOptions } from '../io/lock.js';
import { parseCidr, type Cidr } from '../net/address.js';
import { parseSpiStream, type ParseOptions } from '../spi/parse.js';
import { echoString } from '../spi/fields.js';
import { redactEvent } from '../spi/redact.js';
import type { ParsedDoc, SpiEvent, SpiRejection } from '../spi/types.js';
import { appId, OverlayMap, type ReduceContext, type State } from '../state/types.js';
import { commit, deferAliasLists, finishAliasLists, reduce, type Outcome } from '../state/reduce.js';
import { readState, type DiskState } from './load.js';
import { appDigest } from './digest.js';
import { writeState } from './write.js';
import { migrateState } from './migrate.js';
import { indexFilePath, lockPath } from './paths.js';
import { appendRejects, rejectRecord, stderrLog, REJECTS_MAX_BYTES, type RejectRecord, type RejectsLog } from './rejects.js';

export interface Rejection extends SpiRejection {
  /** position of the document in the stream (0-based) */
  index: number;
  action?: string;
  app?: string;
}

export type DocResult = { index: number; status: 'applied' | 'unchanged'; app: string } | ({ status: 'rejected' } & Rejection);

export interface ApplyResult {
  applied: number;
  unchanged: number;
  rejected: Rejection[];
  /** app ids whose entry changed (sorted) */
  changedApps: string[];
  /** one entry per document, in order */
  results: DocResult[];
  /** whether index.json was rewritten (the commit point of every change: vars/write.ts) */
  wroteVars: boolean;
}

export interface ApplyMeta {
  /** where the input came from (file name, "stdin", "stomp") — recorded with rejections */
  source?: string;
  /** STOMP message-id — recorded with rejections */
  messageId?: string;
}

/** How SPI messages are parsed under `config` (size cap, gear networks). */
export function parseOptions(config: Config): ParseOptions {
  const gearNetworks = config.gear_networks.map((n) => parseCidr(n)).filter((c): c is Cidr => typeof c !== 'string');
  return { maxBodyBytes: config.max_body_bytes, gearNetworks };
}

/** The reducer's view of `config`; `now` is the clock certificates are checked against. */
export function reduceContext(config: Config, now: () => number = Date.now): ReduceContext {
  return {
    cloudDomain: config.cloud_domain, routedTypes: new Set(config.routed_types), limits: config.limits,
    tlsRequireValid: config.tls_require_valid, now,
  };
}

export interface StoreOptions extends LockOptions {
  /** the clock certificates are checked against (tests); default Date.now */
  now?: () => number;
  /** where the store reports what needs an operator but fails no batch (a rejects log that cannot rotate); default stderr */
  log?: RejectsLog;
  /** the rejects log's cap (tests); default REJECTS_MAX_BYTES */
  rejectsMaxBytes?: number;
}

type Stamp = string | null;
async function fileStamp(path: string): Promise<Stamp> {
  const s = await stat(path, { bigint: true }).catch(() => null);
  return s ? `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}` : null;
}
/** index.json is replaced by every write that changes anything: its stamp tells whether another process wrote. */
async function varsStamp(config: Config): Promise<Stamp> {
  return fileStamp(indexFilePath(config));
}

/**
 * The state as on disk, read under the state lock so it is a consistent snapshot (a writer replaces TLS files
 * and the vars file in steps); the state of an older installation is moved out of the inventory first. Never
 * call it while holding the state lock yourself: use readState there.
 */
export async function loadState(config: Config, lockOptions: LockOptions = {}): Promise<State> {
  return withLock(lockPath(config), async () => {
    await migrateState(config);
    return (await readState(config)).state;
  }, lockOptions);
}

/**
 * reduce, with an event the reducer throws on rejected alone: an exception would fail the whole batch, and the
 * listener retries a failed batch forever (every later message waits behind it).
 */
function reduceOrReject(state: State, event: SpiEvent, ctx: ReduceContext): Outcome {
  try {
    return reduce(state, event, ctx);
  } catch (e) {
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return {
      status: 'rejected', appId: appId(event.app_name, event.namespace),
      rejection: { code: 'ERR_SPI_INVALID', reason: `${event.action}: could not be applied (internal error ${echoString(what.split('\n')[0]!)})` },
    };
  }
}

export class StateStore {
  readonly config: Config;
  private current: State;
  /** the files on disk as we last read or wrote them (null: none yet) */
  private disk: DiskState | null;
  private stamp: Stamp;
  private readonly ctx: ReduceContext;
  private readonly lockOptions: LockOptions;
  private readonly log: RejectsLog;
  private readonly rejectsMaxBytes: number;
  /** how this store parses SPI text (also for callers that parse on their own, such as the listener) */
  readonly parseOptions: ParseOptions;

  private constructor(config: Config, state: State, disk: DiskState | null, stamp: Stamp, options: StoreOptions) {
    this.config = config;
    this.current = state;
    this.disk = disk;
    this.stamp = stamp;
    this.ctx = reduceContext(config, options.now);
    this.parseOptions = parseOptions(config);
    this.lockOptions = options;
    this.log = options.log ?? stderrLog;
    this.rejectsMaxBytes = options.rejectsMaxBytes ?? REJECTS_MAX_BYTES;
  }

  /**
   * Loads the state from the files (under the lock, so it never sees a half-written TLS update). The state of an
   * older installation is moved out of the inventory first (vars/migrate.ts); a file whose derived parts differ
   * from what this generator renders is rewritten.
   */
  static async open(config: Config, options: StoreOptions = {}): Promise<StateStore> {
    return withLock(lockPath(config), async () => {
      const { state, disk, stamp } = await StateStore.read(config);
      return new StateStore(config, state, disk, stamp, options);
    }, options);
  }

  /** readState + the stamp of what was read, migrating an inventory-held state first. Call under the state lock. */
  private static async read(config: Config): Promise<{ state: State; disk: DiskState | null; stamp: Stamp }> {
    await migrateState(config);
    const stamp = await varsStamp(config);
    const r = await readState(config);
    if (r.disk === null) return { state: r.state, disk: null, stamp };
    // A file rendered by an older paas-rproxy (derived route fields) or for another cloud domain is rewritten
    // from the same state, so the roles always read what this generator derives; an index that an interrupted
    // write left behind is rewritten, its strays removed. Byte-identical: no write.
    const w = await writeState(config, r.state, r.state, r.disk, { verify: true });
    return { state: r.state, disk: w.disk, stamp: w.wroteIndex ? await varsStamp(config) : stamp };
  }

  /**
   * The current state. Treat it as read-only. Each apply that changes something makes a new State object, but its
   * maps are the previous ones updated in place once the change is durable (a batch costs what it changes, not a
   * copy of 10,000 entries): read it synchronously, or copy what must outlive an await.
   */
  get state(): State {
    return this.current;
  }

  /** Re-reads the files if another process changed them since we last read or wrote them. */
  async refresh(): Promise<void> {
    await withLock(lockPath(this.config), () => this.refreshLocked(), this.lockOptions);
  }

  private async refreshLocked(): Promise<void> {
    if ((await varsStamp(this.config)) === this.stamp) return;
    const { state, disk, stamp } = await StateStore.read(this.config);
    this.current = state;
    this.disk = disk;
    this.stamp = stamp;
  }

  /**
   * Parses a YAML stream (one or many SPI documents) and applies it. Every document is parsed, validated and (when
   * rejected) redacted before the lock is taken: the lock is held for the reduce and the writes only. Accepted
   * documents keep only their event, not their text.
   */
  async applyText(yamlStream: string, meta: ApplyMeta = {}): Promise<ApplyResult> {
    return this.applyEvents(parseSpiStream(yamlStream, this.parseOptions), meta);
  }

  /** Applies parsed documents (or already-validated events) in order; one write for the whole batch. */
  async applyEvents(items: Iterable<ParsedDoc | SpiEvent>, meta: ApplyMeta = {}): Promise<ApplyResult> {
    const docs: ParsedDoc[] = [];
    for (const it of items) docs.push('ok' in it ? it : { index: docs.length, ok: true, event: it });
    return withLock(lockPath(this.config), async () => {
      await this.refreshLocked();
      const prev = this.current;
      // copy-on-write for the batch: prev's maps stay untouched until the write is durable
      const apps = new OverlayMap(prev.apps);
      const aliasOwner = new OverlayMap(prev.aliasOwner);
      const next: State = { apps, aliasOwner };
      deferAliasLists(next);
      const results: DocResult[] = [];
      const records: RejectRecord[] = [];
      const changed = new Set<string>();
      for (const d of docs) {
        if (!d.ok) {
          const rej: Rejection = { index: d.index, ...d.rejection, ...(d.action !== undefined && { action: d.action }) };
          results.push({ status: 'rejected', ...rej });
          records.push(this.record(rej, d.logged, meta));
          continue;
        }
        const out = reduceOrReject(next, d.event, this.ctx);
        if (out.status === 'rejected') {
          const rej: Rejection = { index: d.index, ...out.rejection, action: d.event.action, app: out.appId };
          results.push({ status: 'rejected', ...rej });
          records.push(this.record(rej, redactEvent(d.event), meta));
          continue;
        }
        commit(next, out);
        if (out.status === 'applied') changed.add(out.appId);
        results.push({ index: d.index, status: out.status, app: out.appId });
      }
      finishAliasLists(next);
      // An app changed and changed back within the batch is not a change: keep the old object (no TLS work).
      const changedApps: string[] = [];
      for (const id of [...changed].sort()) {
        const before = prev.apps.get(id);
        const after = next.apps.get(id);
        if (before && after && before !== after && appDigest(before) === appDigest(after)) next.apps.set(id, before);
        else if (before !== after) changedApps.push(id);
      }
      let wroteVars = false;
      if (changedApps.length > 0) {
        let w;
        try {
          w = await writeState(this.config, prev, next, this.disk, { changed: changedApps });
        } catch (e) {
          this.stamp = 'unknown'; // the disk may be half-way: re-read it next time
          throw e;
        }
        wroteVars = w.wroteIndex;
        this.disk = w.disk;
        this.stamp = await varsStamp(this.config);
      }
      // durable: the batch's changes go into the maps (an app changed and changed back is its old object again)
      apps.applyTo(prev.apps);
      aliasOwner.applyTo(prev.aliasOwner);
      if (changedApps.length > 0) this.current = { apps: prev.apps, aliasOwner: prev.aliasOwner };
      await appendRejects(this.config, records, this.rejectsMaxBytes, this.log);
      const rejected = results.filter((r): r is Extract<DocResult, { status: 'rejected' }> => r.status === 'rejected')
        .map(({ status: _s, ...r }) => r);
      return {
        applied: results.filter((r) => r.status === 'applied').length,
        unchanged: results.filter((r) => r.status === 'unchanged').length,
        rejected, changedApps, results, wroteVars,
      };
    }, this.lockOptions);
  }

  private record(rej: Rejection, logged: string, meta: ApplyMeta): RejectRecord {
    return rejectRecord({
      code: rej.code, reason: rej.reason, logged,
      ...(rej.action !== undefined && { action: rej.action }),
      ...(rej.app !== undefined && { app: rej.app }),
      ...(meta.source !== undefined && { source: meta.source }),
      ...(meta.messageId !== undefined && { message_id: meta.messageId }),
    });
  }
}
