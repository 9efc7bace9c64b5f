/**
 * Every error this package throws is an {@link OriginalDstError} with a stable `code`.
 * Match on `code`, not on the message.
 */
export type OriginalDstErrorCode =
  /** The native addon is not loaded here (not Linux, or its build failed at install); see `originalDstSupport()`. */
  | 'ERR_ORIGINAL_DST_UNAVAILABLE'
  /** The socket has no file descriptor (not connected, already closed, or not a TCP socket). */
  | 'ERR_ORIGINAL_DST_NO_FD'
  /** Connection tracking has no entry for this connection (it was not redirected, or conntrack is not active in its network namespace). */
  | 'ERR_ORIGINAL_DST_NOT_FOUND'
  /** getsockopt failed for another reason; `cause` carries the errno. */
  | 'ERR_ORIGINAL_DST_FAILED';

export class OriginalDstError extends Error {
  override readonly name = 'OriginalDstError';
  readonly code: OriginalDstErrorCode;

  constructor(code: OriginalDstErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
