/**
 * Every error this package throws is an {@link AuthzError} with a stable `code`.
 * Match on `code`, not on the message: messages explain, codes are the contract.
 *
 * Evaluation never throws for bad *traffic* (a malformed path, identity or address in a request): such a
 * request gets a `deny` decision with reason `invalid-request`. Errors are for bad *configuration* and misuse.
 */
export type AuthzErrorCode =
  /** One or more AuthorizationPolicy objects are invalid; `problems` lists every problem with its path. */
  | 'ERR_POLICY_INVALID'
  /** Two policies share the same namespace/name; Kubernetes allows one object per name. */
  | 'ERR_DUPLICATE_POLICY'
  /** A workload-API `Authorization` (as received over xDS) is malformed; `problems` lists what and where. */
  | 'ERR_WORKLOAD_AUTHORIZATION_INVALID'
  /** A workload-API `Authorization` cannot be expressed as an AuthorizationPolicy (too many rule combinations). */
  | 'ERR_NOT_REPRESENTABLE'
  /** An argument passed to this package's API is of the wrong shape (a programming error in the caller). */
  | 'ERR_INVALID_ARGUMENT';

/** One validation problem: where it is (`spec.rules[2].from[0].source.ipBlocks[1]`) and what is wrong. */
export interface ValidationProblem {
  readonly path: string;
  readonly message: string;
}

export class AuthzError extends Error {
  override readonly name = 'AuthzError';
  readonly code: AuthzErrorCode;
  /** For ERR_POLICY_INVALID and ERR_WORKLOAD_AUTHORIZATION_INVALID: every problem found. */
  readonly problems: readonly ValidationProblem[];

  constructor(
    code: AuthzErrorCode,
    message: string,
    options?: { cause?: unknown; problems?: readonly ValidationProblem[] },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.problems = options?.problems ?? [];
  }
}

/** `path: message`, the form used in every report this package produces. */
export function formatProblem(p: ValidationProblem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message;
}
