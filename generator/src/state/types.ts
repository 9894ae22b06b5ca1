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
  /** alias → app id, so a second claim of an alias is caught */
  aliasOwner: Map<string, string>;
}

export interface ReduceContext {
  cloudDomain: string;
  routedTypes: ReadonlySet<string>;
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
