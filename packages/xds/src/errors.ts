/**
 * Every error this package throws or emits is an {@link XdsError} with a stable `code`.
 * Match on `code`, not on the message: messages explain, codes are the contract.
 */
export type XdsErrorCode =
  /** A resource failed its type's validator or could not be encoded/decoded; nothing was applied. */
  | 'ERR_XDS_INVALID_RESOURCE'
  /** No resource type is registered for this type URL. */
  | 'ERR_XDS_UNKNOWN_TYPE'
  /** A type URL is registered twice with different definitions. */
  | 'ERR_XDS_TYPE_CONFLICT'
  /** A textual IP address or prefix could not be parsed, or raw address bytes have a bad length. */
  | 'ERR_XDS_INVALID_IP'
  /** A peer broke the discovery protocol (undecodable message, bad nonce use, flood, too many types). */
  | 'ERR_XDS_PROTOCOL'
  /** The peer was not authenticated (no or bad client certificate or token). */
  | 'ERR_XDS_UNAUTHENTICATED'
  /** The stream to the server ended or could not be opened; the client reconnects with backoff. */
  | 'ERR_XDS_STREAM'
  /** A consumer of XdsClient.updates() fell more than its queue limit behind; re-read resources() and iterate again. */
  | 'ERR_XDS_QUEUE_FULL'
  /** The object was closed or destroyed. */
  | 'ERR_XDS_CLOSED'
  /** An option passed to a constructor or method is invalid. */
  | 'ERR_XDS_INVALID_OPTION';

export class XdsError extends Error {
  override readonly name = 'XdsError';
  readonly code: XdsErrorCode;

  constructor(code: XdsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
