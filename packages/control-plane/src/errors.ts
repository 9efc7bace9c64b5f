/**
 * Every error this package throws is a {@link ControlPlaneError} with a stable `code`.
 * Match on `code`, not on the message: messages explain, codes are the contract.
 */
export type ControlPlaneErrorCode =
  /** A setting (flag, environment variable or option) is missing or malformed; the message names it. */
  | 'ERR_CP_BAD_SETTING'
  /** The --config-dir does not exist or is not a readable directory. */
  | 'ERR_CP_CONFIG_DIR'
  /** The --tokens file is unreadable or malformed. */
  | 'ERR_CP_TOKENS'
  /** The state directory could not be created, read or written. */
  | 'ERR_CP_STATE_DIR'
  /** A listener could not be opened (address in use, permission denied, ...). */
  | 'ERR_CP_LISTEN'
  /** The control plane was used after close()/destroy(). */
  | 'ERR_CP_CLOSED'
  /** A waiting operation was aborted by its AbortSignal. */
  | 'ERR_CP_ABORTED';

export class ControlPlaneError extends Error {
  override readonly name = 'ControlPlaneError';
  readonly code: ControlPlaneErrorCode;

  constructor(code: ControlPlaneErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
