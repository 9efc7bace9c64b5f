/**
 * Every error this package throws is an {@link IdentityError} with a stable `code`.
 * Match on `code`, not on the message: messages explain, codes are the contract.
 */
export type IdentityErrorCode =
  /** The string is not a SPIFFE ID of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>. */
  | 'ERR_IDENTITY_INVALID'
  /** A trust domain name is malformed. */
  | 'ERR_TRUST_DOMAIN_INVALID'
  /** A certificate carried no usable SPIFFE URI SAN. */
  | 'ERR_NO_IDENTITY_IN_CERTIFICATE'
  /** The input given as a certificate is not one: not PEM or DER X.509 that Node can read. */
  | 'ERR_CERTIFICATE_INVALID';

export class IdentityError extends Error {
  override readonly name = 'IdentityError';
  readonly code: IdentityErrorCode;

  constructor(code: IdentityErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
