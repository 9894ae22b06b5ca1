/** Typed Routing SPI events (after validation). Field names follow the SPI (test/fixtures/spi/samples.yml). */

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
  /** IP literal in its canonical text (net/address.ts), so the endpoint key is the same in any spelling. */
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
  code: 'ERR_SPI_INVALID' | 'ERR_SPI_TOO_LARGE' | 'ERR_SPI_YAML' | 'ERR_SPI_CONFLICT' | 'ERR_SPI_LIMIT';
  reason: string;
}

/**
 * One document of a stream: its position and the outcome of parsing. A rejected one carries what the rejects log
 * keeps of it, already redacted (spi/redact.ts): the raw text never travels further than the parser.
 */
export type ParsedDoc =
  | { index: number; ok: true; event: SpiEvent }
  | { index: number; ok: false; rejection: SpiRejection; action?: string; logged: string };
