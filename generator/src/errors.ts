/**
 * Typed errors with stable codes. Messages are for operators: say what is wrong and how to fix it.
 * Codes are API (logs, tests, scripts match on them); never rename one.
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
  | 'ERR_INTERNAL';

/**
 * CLI exit codes (README.md): 0 ok, 1 unexpected, 2 usage/config, 3 input rejected, 4 playbook failed,
 * 5 a check found a problem (status: a proxy lags or the listener is down; dns --check-aliases: an alias not on
 * the VIPs, a DNS server that does not answer).
 */
export const EXIT = { OK: 0, UNEXPECTED: 1, USAGE: 2, REJECTED: 3, PLAYBOOK: 4, CHECK: 5 } as const;

const EXIT_BY_CODE: Partial<Record<ErrorCode, number>> = {
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
  ERR_PLAYBOOK_FAILED: EXIT.PLAYBOOK,
  // a proxy that is not ready to be onboarded: the operator fixes the host (the message says how)
  ERR_PREFLIGHT_FAILED: EXIT.USAGE,
  ERR_DNS_INVALID: EXIT.USAGE,
  ERR_DNS_QUERY_FAILED: EXIT.CHECK,
  ERR_DNS_CHECK_FAILED: EXIT.CHECK,
};

export class RproxyError extends Error {
  readonly code: ErrorCode;
  override readonly name = 'RproxyError';
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
  return e instanceof RproxyError ? EXIT_BY_CODE[e.code] ?? EXIT.UNEXPECTED : EXIT.UNEXPECTED;
}
