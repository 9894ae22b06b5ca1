/** Typed Routing SPI events (after validation). Field names follow the SPI (ARCHITECTURE.md). */

export interface AppRef {
  app_name: string;
  namespace: string;
}

export interface Mapping {
  frontend: string;
  backend: string;
}

export interface AppLifecycleEvent extends AppRef {
  action: 'create_application' | 'delete_application';
  scalable: boolean;
  ha: boolean;
}

export interface AddEndpointEvent extends AppRef {
  /** add_gear is the deprecated duplicate of add_public_endpoint (same payload). */
  action: 'add_public_endpoint' | 'add_gear';
  gear_id: string;
  public_port_name: string;
  /** IP literal, lowercased (IPv6) so the endpoint key is canonical. */
  public_address: string;
  public_port: number;
  protocols: string[];
  types: string[];
  mappings: Mapping[];
}

export interface RemoveEndpointEvent extends AppRef {
  action: 'remove_public_endpoint' | 'delete_gear';
  gear_id: string;
  public_address: string;
  public_port: number;
}

export interface AliasEvent extends AppRef {
  action: 'add_alias' | 'remove_alias' | 'remove_ssl';
  /** lowercased DNS host name */
  alias: string;
}

export interface AddSslEvent extends AppRef {
  action: 'add_ssl';
  alias: string;
  /** certificate chain re-encoded as PEM (leaf first); anything around the PEM blocks dropped */
  cert: string;
  /** private key as unencrypted PKCS#8 PEM (decrypted with the pass_phrase when it was encrypted) */
  key: string;
}

export type SpiEvent = AppLifecycleEvent | AddEndpointEvent | RemoveEndpointEvent | AliasEvent | AddSslEvent;
export type SpiAction = SpiEvent['action'];

export const SPI_ACTIONS: readonly SpiAction[] = [
  'create_application', 'delete_application', 'add_public_endpoint', 'add_gear', 'remove_public_endpoint',
  'delete_gear', 'add_alias', 'remove_alias', 'add_ssl', 'remove_ssl',
];

/** Why a document was not accepted: a stable code and an operator-readable reason naming action and field. */
export interface SpiRejection {
  code: 'ERR_SPI_INVALID' | 'ERR_SPI_TOO_LARGE' | 'ERR_SPI_YAML' | 'ERR_SPI_CONFLICT';
  reason: string;
}

/** One document of a stream: its position, its raw text (for the rejects log) and the outcome of parsing. */
export type ParsedDoc =
  | { index: number; text: string; ok: true; event: SpiEvent }
  | { index: number; text: string; ok: false; rejection: SpiRejection; action?: string };
