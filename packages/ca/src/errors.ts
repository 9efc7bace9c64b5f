/**
 * Every error @ambient-ts/ca raises is a {@link CaError} with a stable `code`; match on `code`, not on the
 * message. Errors that travel over the CA's gRPC API also carry the gRPC status in `grpcCode`.
 */
export type CaErrorCode =
  // --- requests to the CA (each maps to a gRPC status on the server)
  /** The CSR is not a well-formed PKCS#10 request, its signature does not verify, or its key is not allowed. (INVALID_ARGUMENT) */
  | 'ERR_CSR_INVALID'
  /** The requested lifetime is negative, zero where not allowed, or above the maximum (90 days unless configured). (INVALID_ARGUMENT) */
  | 'ERR_TTL_INVALID'
  /** The identity to sign is not a SPIFFE ID of this CA's trust domain. (INVALID_ARGUMENT) */
  | 'ERR_IDENTITY_INVALID'
  /** The caller presented no credentials or credentials that no authenticator accepts. (UNAUTHENTICATED) */
  | 'ERR_UNAUTHENTICATED'
  /** The caller is authenticated but may not have the certificate it asked for (e.g. impersonation). (PERMISSION_DENIED) */
  | 'ERR_PERMISSION_DENIED'
  /** The caller sent too many bad requests and is refused for a while. (RESOURCE_EXHAUSTED) */
  | 'ERR_RATE_LIMITED'
  // --- the CA itself
  /** The CA state directory holds a file that is missing, unreadable, half-written or inconsistent. Nothing was replaced. */
  | 'ERR_CA_STATE_CORRUPT'
  /** A plugged-in CA folder (cacerts layout) or an option is invalid; the message names the file or option. */
  | 'ERR_CA_CONFIG_INVALID'
  /** The signing key (a Signer) failed to sign. */
  | 'ERR_SIGNER_FAILED'
  /** A PEM certificate (or the key that goes with it) could not be parsed or loaded. */
  | 'ERR_CERTIFICATE_INVALID'
  /** A token file could not be read or parsed. */
  | 'ERR_TOKEN_FILE_INVALID'
  // --- client side
  /** The CA could not be reached or the call failed in transport (UNAVAILABLE, DEADLINE_EXCEEDED, …). */
  | 'ERR_CA_UNAVAILABLE'
  /** The CA refused the request; `grpcCode` and the message say why. */
  | 'ERR_CA_REFUSED'
  /** The CA answered with a chain that does not verify, or a leaf for another identity or another key. */
  | 'ERR_CA_RESPONSE_INVALID'
  /** SecretManager: more identities than `maxIdentities` are in use. */
  | 'ERR_TOO_MANY_IDENTITIES'
  /** The operation was aborted through its AbortSignal. */
  | 'ERR_ABORTED'
  /** The object was closed and cannot be used any more. */
  | 'ERR_CLOSED';

export class CaError extends Error {
  override readonly name = 'CaError';
  readonly code: CaErrorCode;
  /** gRPC status code, for errors received from or sent to the CA API. */
  readonly grpcCode?: number;

  constructor(code: CaErrorCode, message: string, options?: { cause?: unknown; grpcCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.grpcCode !== undefined) this.grpcCode = options.grpcCode;
  }
}

export function isCaError(err: unknown, code?: CaErrorCode): err is CaError {
  return err instanceof CaError && (code === undefined || err.code === code);
}
