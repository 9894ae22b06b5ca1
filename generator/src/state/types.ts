/** The routing state: what the vars files hold, in memory. App entries are immutable; a change makes a new one. */
import type { Mapping } from '../spi/types.js';

export interface Endpoint {
  address: string;
  port: number;
  gear_id: string;
  port_name: string;
  protocols: readonly string[];
  types: readonly string[];
  mappings: readonly Mapping[];
}

export interface TlsEntry {
  alias: string;
  /** PEM chain as written to the .crt file */
  cert: string;
  /** unencrypted PKCS#8 PEM as written to the .key file (0600) */
  key: string;
}

export interface AppState {
  /** <app_name>-<namespace>: unique because both parts are [a-z0-9] only */
  id: string;
  app_name: string;
  namespace: string;
  scalable: boolean;
  ha: boolean;
  aliases: readonly string[]; // sorted
  endpoints: readonly Endpoint[]; // routed only, sorted by address then port
  tls: readonly TlsEntry[]; // sorted by alias, each alias ∈ aliases
}

export interface State {
  apps: Map<string, AppState>;
  /** alias → app id, so a second claim of an alias is caught (and "does app X have alias A" is one lookup) */
  aliasOwner: Map<string, string>;
  /**
   * Batch mode (state/reduce.ts deferAliasLists): alias changes of an app not yet merged into its sorted list,
   * by app id. Absent outside a batch: every app's `aliases` is then complete.
   */
  pendingAliases?: Map<string, PendingAliases>;
}

/** Alias changes of one app during a batch: its list is `base` minus `removes` plus `adds`. */
export interface PendingAliases {
  /** the `aliases` array of the app object these changes apply to */
  base: readonly string[];
  adds: Set<string>;
  removes: Set<string>;
}

/**
 * Per-app limits (config `limits`, defaults in config.ts): an event that would take an app over one is rejected
 * with ERR_SPI_LIMIT, so what one app renders is bounded whatever the publisher sends.
 */
export interface AppLimits {
  /** routed endpoints (upstream servers) */
  endpoints_per_app: number;
  /** aliases (host names besides the app's own) */
  aliases_per_app: number;
  /** aliases with a certificate (one :443 server block each) */
  tls_aliases_per_app: number;
  /** distinct path mappings over all the app's endpoints */
  mappings_per_app: number;
}

export interface ReduceContext {
  cloudDomain: string;
  routedTypes: ReadonlySet<string>;
  limits: AppLimits;
  /** refuse add_ssl when the leaf certificate has expired, is not yet valid or does not cover the alias */
  tlsRequireValid: boolean;
  /** the clock for certificate validity (ms since the epoch) */
  now: () => number;
}

export const appId = (app_name: string, namespace: string): string => `${app_name}-${namespace}`;

export function emptyState(): State {
  return { apps: new Map(), aliasOwner: new Map() };
}

export function cloneState(s: State): State {
  return { apps: new Map(s.apps), aliasOwner: new Map(s.aliasOwner) };
}

export function endpointKey(e: { address: string; port: number }): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

export function compareEndpoints(a: Endpoint, b: Endpoint): number {
  return a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port;
}

const GONE = Symbol('gone');

/**
 * A Map over `base` whose writes go to a delta (copy-on-write for one batch): reads fall through to `base`, which
 * is never touched until `applyTo`. A batch then costs what it changes, not a copy of the whole state (at 10,000
 * apps, copying the two maps per batch was a third of the listener's allocations during a bulk load). Iteration
 * (rare: tests, full renders) merges base and delta.
 */
export class OverlayMap<K, V> extends Map<K, V> {
  private readonly delta = new Map<K, V | typeof GONE>();
  constructor(private readonly base: ReadonlyMap<K, V>) { super(); }
  // values are never undefined here (app entries, app ids): undefined in the delta means "not written"
  override get(k: K): V | undefined {
    const v = this.delta.get(k);
    return v === undefined ? this.base.get(k) : v === GONE ? undefined : v;
  }
  override has(k: K): boolean {
    const v = this.delta.get(k);
    return v === undefined ? this.base.has(k) : v !== GONE;
  }
  override set(k: K, v: V): this { this.delta.set(k, v); return this; }
  override delete(k: K): boolean {
    const had = this.has(k);
    if (!this.base.has(k)) this.delta.delete(k);
    else if (had) this.delta.set(k, GONE);
    return had;
  }
  override clear(): void { for (const k of this.base.keys()) this.delta.set(k, GONE); for (const k of this.delta.keys()) this.delta.set(k, GONE); }
  override get size(): number {
    let n = this.base.size;
    for (const [k, v] of this.delta) { const inBase = this.base.has(k); if (v === GONE) { if (inBase) n--; } else if (!inBase) n++; }
    return n;
  }
  override *entries(): MapIterator<[K, V]> {
    for (const [k, v] of this.base) { if (!this.delta.has(k)) yield [k, v]; else { const d = this.delta.get(k); if (d !== GONE) yield [k, d as V]; } }
    for (const [k, v] of this.delta) if (v !== GONE && !this.base.has(k)) yield [k, v];
  }
  override *keys(): MapIterator<K> { for (const [k] of this.entries()) yield k; }
  override *values(): MapIterator<V> { for (const [, v] of this.entries()) yield v; }
  override [Symbol.iterator](): MapIterator<[K, V]> { return this.entries(); }
  override forEach(fn: (v: V, k: K, m: Map<K, V>) => void, thisArg?: unknown): void { for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this); }
  /** the keys written or deleted in this overlay */
  changedKeys(): IterableIterator<K> { return this.delta.keys(); }
  /** Writes the delta into `target` (the base, once the batch is durable): O(changes). */
  applyTo(target: Map<K, V>): void {
    for (const [k, v] of this.delta) { if (v === GONE) target.delete(k); else target.set(k, v); }
  }
}
