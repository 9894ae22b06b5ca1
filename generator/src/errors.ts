/**
 * The one error family: RproxyError with a stable code. Messages are for operators: say what is wrong and how to
 * fix it. Codes are API (logs, tests, scripts match on them): add new ones, never rename one. Subclasses
 * (VrrpLayoutError in layout/vrrp.ts, SshConnectError in onboard/ssh.ts) only add fields; every error of the
 * project is an RproxyError, and every code has one exit code (EXIT_BY_CODE, the README's table).
 */
export type ErrorCode =
  | 'ERR_CONFIG_UNKNOWN_KEY'
  | 'ERR_CONFIG_INVALID'
  | 'ERR_CONFIG_NOT_FOUND'
  | 'ERR_USAGE'
  | 'ERR_INPUT'
  | 'ERR_SPI_INVALID'
  | 'ERR_SPI_TOO_LARGE'
  | 'ERR_SPI_YAML'
  | 'ERR_SPI_CONFLICT'
  | 'ERR_SPI_LIMIT'
  | 'ERR_STATE_LOCKED'
  | 'ERR_STATE_CORRUPT'
  | 'ERR_IO'
  | 'ERR_PLAYBOOK_FAILED'
  | 'ERR_PREFLIGHT_FAILED'
  | 'ERR_DNS_INVALID'
  | 'ERR_DNS_QUERY_FAILED'
  | 'ERR_DNS_CHECK_FAILED'
  | 'ERR_INTERNAL'
  // onboarding / offboarding
  | 'ERR_VERIFY_FAILED'
  | 'ERR_VIPS_NOT_SETTLED'
  | 'ERR_HOST_COMMAND_FAILED'
  | 'ERR_HOST_UNREACHABLE'
  | 'ERR_SSH_CONNECT'
  // the VRRP layout (layout/vrrp.ts, `vrrp-layout`)
  | 'ERR_VRRP_BAD_INPUT'
  | 'ERR_VRRP_BAD_HOST'
  | 'ERR_VRRP_BAD_VIP'
  | 'ERR_VRRP_BAD_ROUTER_ID'
  | 'ERR_VRRP_DUPLICATE_HOST'
  | 'ERR_VRRP_DUPLICATE_VIP'
  | 'ERR_VRRP_NO_HOSTS'
  | 'ERR_VRRP_NO_VIPS'
  | 'ERR_VRRP_TOO_MANY_HOSTS'
  | 'ERR_VRRP_UNICAST_ADDRESS';

/**
 * CLI exit codes (README.md): 0 ok, 1 unexpected error or unusable state (locked, corrupt, unreadable: the message
 * names the file), 2 usage/config (or a host to fix before anything changes), 3 input rejected, 4 a run on a proxy
 * failed (playbook, command, or onboarding's verification), 5 a check found a problem (status: a proxy lags or the
 * listener is down; dns --check-aliases: an alias not on the VIPs, a DNS server that does not answer), 6 the change
 * was made but the VIPs did not settle as planned.
 */
export const EXIT = { OK: 0, UNEXPECTED: 1, USAGE: 2, REJECTED: 3, PLAYBOOK: 4, CHECK: 5, NOT_SETTLED: 6 } as const;

/** Every code's exit code (exhaustive: a new code does not compile until it has one). */
export const EXIT_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  ERR_CONFIG_UNKNOWN_KEY: EXIT.USAGE,
  ERR_CONFIG_INVALID: EXIT.USAGE,
  ERR_CONFIG_NOT_FOUND: EXIT.USAGE,
  ERR_USAGE: EXIT.USAGE,
  ERR_INPUT: EXIT.USAGE,
  ERR_SPI_INVALID: EXIT.REJECTED,
  ERR_SPI_TOO_LARGE: EXIT.REJECTED,
  ERR_SPI_YAML: EXIT.REJECTED,
  ERR_SPI_CONFLICT: EXIT.REJECTED,
  ERR_SPI_LIMIT: EXIT.REJECTED,
  // another process holds the state; a state file is corrupt or cannot be read (the message names it)
  ERR_STATE_LOCKED: EXIT.UNEXPECTED,
  ERR_STATE_CORRUPT: EXIT.UNEXPECTED,
  ERR_IO: EXIT.UNEXPECTED,
  ERR_PLAYBOOK_FAILED: EXIT.PLAYBOOK,
  // a proxy that is not ready to be onboarded: the operator fixes the host (the message says how)
  ERR_PREFLIGHT_FAILED: EXIT.USAGE,
  ERR_DNS_INVALID: EXIT.USAGE,
  ERR_DNS_QUERY_FAILED: EXIT.CHECK,
  ERR_DNS_CHECK_FAILED: EXIT.CHECK,
  // a broken invariant of the program itself, never an operational outcome
  ERR_INTERNAL: EXIT.UNEXPECTED,
  // provisioned, but the proxy does not serve the current routes on its address
  ERR_VERIFY_FAILED: EXIT.PLAYBOOK,
  // keepalived ran, but the VIPs are not held by their planned masters
  ERR_VIPS_NOT_SETTLED: EXIT.NOT_SETTLED,
  // a command the controller ran on a proxy over SSH failed (the message names the host and the command)
  ERR_HOST_COMMAND_FAILED: EXIT.PLAYBOOK,
  // a proxy cannot be reached before anything changed
  ERR_HOST_UNREACHABLE: EXIT.USAGE,
  // SSH to a proxy failed: known_hosts, key, login (SshConnectError.kind says which)
  ERR_SSH_CONNECT: EXIT.USAGE,
  ERR_VRRP_BAD_INPUT: EXIT.USAGE,
  ERR_VRRP_BAD_HOST: EXIT.USAGE,
  ERR_VRRP_BAD_VIP: EXIT.USAGE,
  ERR_VRRP_BAD_ROUTER_ID: EXIT.USAGE,
  ERR_VRRP_DUPLICATE_HOST: EXIT.USAGE,
  ERR_VRRP_DUPLICATE_VIP: EXIT.USAGE,
  ERR_VRRP_NO_HOSTS: EXIT.USAGE,
  ERR_VRRP_NO_VIPS: EXIT.USAGE,
  ERR_VRRP_TOO_MANY_HOSTS: EXIT.USAGE,
  ERR_VRRP_UNICAST_ADDRESS: EXIT.USAGE,
};

export class RproxyError extends Error {
  readonly code: ErrorCode;
  override readonly name: string = 'RproxyError';
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isRproxyError(e: unknown, code?: ErrorCode): e is RproxyError {
  return e instanceof RproxyError && (code === undefined || e.code === code);
}

/** Exit code for any thrown value: RproxyError codes map per EXIT_BY_CODE, anything else is unexpected (1). */
export function exitCodeFor(e: unknown): number {
  return e instanceof RproxyError ? EXIT_BY_CODE[e.code] : EXIT.UNEXPECTED;
}
