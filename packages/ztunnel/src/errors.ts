/**
 * Every error @ambient-ts/ztunnel raises is a {@link ZtunnelError} with a stable `code`; match on `code`.
 * Messages explain what was wrong and what to do; codes are the contract.
 */
export type ZtunnelErrorCode =
  /** A setting (flag, environment variable or option) is missing or invalid; the message names it. */
  | 'ERR_ZTUNNEL_CONFIG'
  /** A file named by a setting (trust bundle, token) could not be read or holds nothing usable. */
  | 'ERR_ZTUNNEL_FILE'
  /** A listener could not be bound (address in use, address not available, permission). */
  | 'ERR_ZTUNNEL_LISTEN'
  /** The ztunnel was closed or destroyed and cannot be used any more. */
  | 'ERR_ZTUNNEL_CLOSED'
  /** The outbound connection's source address is not a workload on this node. */
  | 'ERR_ZTUNNEL_UNKNOWN_SOURCE'
  /** The destination could not be resolved (unknown hostname, service without healthy endpoints, no port). */
  | 'ERR_ZTUNNEL_NO_ROUTE'
  /** The destination is one of this ztunnel's own listeners: refused to prevent a loop. */
  | 'ERR_ZTUNNEL_LOOP'
  /** The connection was denied by an AuthorizationPolicy (or STRICT mTLS for plaintext). */
  | 'ERR_ZTUNNEL_DENIED'
  /** Connecting upstream (the workload, a peer ztunnel, a waypoint or a passthrough target) failed. */
  | 'ERR_ZTUNNEL_UPSTREAM'
  /** No certificate is available (yet) for the identity a connection needs. */
  | 'ERR_ZTUNNEL_NO_CERTIFICATE'
  /** A SOCKS5 client spoke something other than RFC 1928 CONNECT, or a bounded buffer overflowed. */
  | 'ERR_ZTUNNEL_SOCKS';

export class ZtunnelError extends Error {
  override readonly name = 'ZtunnelError';
  readonly code: ZtunnelErrorCode;

  constructor(code: ZtunnelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}
