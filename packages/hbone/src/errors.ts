/**
 * Every error @ambient-ts/hbone raises is an {@link HboneError} with a stable `code`; match on `code`.
 * HTTP/2 protocol failures carry the RFC 9113 error code in `h2Code` where one applies.
 */
export type HboneErrorCode =
  // --- configuration / usage
  /** An option is missing or invalid (message names it and what to do). */
  | 'ERR_HBONE_INVALID_OPTION'
  /** The object was closed or destroyed and cannot be used any more. */
  | 'ERR_HBONE_CLOSED'
  // --- TLS and identity
  /** The TLS handshake failed (untrusted CA, expired certificate, no client certificate, TLS < 1.3, …). */
  | 'ERR_HBONE_TLS'
  /** ALPN did not select h2. */
  | 'ERR_HBONE_ALPN'
  /** The peer's certificate identity is not one the caller expected. */
  | 'ERR_HBONE_IDENTITY_MISMATCH'
  /** The peer presented no usable SPIFFE identity, or one from a foreign trust domain. */
  | 'ERR_HBONE_PEER_IDENTITY'
  // --- tunnel establishment
  /** The server answered the CONNECT with a non-200 status (see `status`). */
  | 'ERR_HBONE_STATUS'
  /** Could not connect to the HBONE server (see `cause`). */
  | 'ERR_HBONE_CONNECT'
  /** The connect or handshake did not finish in time. */
  | 'ERR_HBONE_TIMEOUT'
  /** A header value (authority, baggage, forwarded, traceparent) could not be parsed or built. */
  | 'ERR_HBONE_BAD_HEADER'
  // --- HTTP/2
  /** The peer violated HTTP/2 (bad frame, bad HPACK, flow-control overflow, …): the connection is closed. */
  | 'ERR_H2_PROTOCOL'
  /** The peer reset the stream (RST_STREAM); `h2Code` holds the reason. */
  | 'ERR_H2_STREAM_RESET'
  /** The connection went away (GOAWAY, socket closed) before the stream finished. */
  | 'ERR_H2_CONNECTION_CLOSED'
  /** No new stream can be opened: GOAWAY received/sent, or the peer's concurrency limit is reached. */
  | 'ERR_H2_REFUSED'
  /** The peer did not answer a PING within the deadline: the connection is considered dead. */
  | 'ERR_H2_PING_TIMEOUT';

export class HboneError extends Error {
  override readonly name = 'HboneError';
  readonly code: HboneErrorCode;
  /** HTTP status of a refused CONNECT (code ERR_HBONE_STATUS). */
  readonly status?: number;
  /** RFC 9113 §7 error code, for HTTP/2 errors. */
  readonly h2Code?: number;

  constructor(code: HboneErrorCode, message: string, options?: { cause?: unknown; status?: number; h2Code?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.status !== undefined) this.status = options.status;
    if (options?.h2Code !== undefined) this.h2Code = options.h2Code;
  }
}
