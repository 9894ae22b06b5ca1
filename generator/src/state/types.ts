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
