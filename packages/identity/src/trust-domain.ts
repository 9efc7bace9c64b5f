import { IdentityError } from './errors.js';

/** Istio's default trust domain. */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

// SPIFFE: a trust domain is lowercase letters, digits, '.', '-' and '_' (SPIFFE-ID spec §2.1), at most 255 bytes.
const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;

/** Throws ERR_TRUST_DOMAIN_INVALID unless `td` is a valid SPIFFE trust domain name. */
export function validateTrustDomain(td: string): string {
  if (typeof td !== 'string' || td.length === 0) {
    throw new IdentityError('ERR_TRUST_DOMAIN_INVALID', 'trust domain is empty: give a name such as "cluster.local"');
  }
  if (td.length > 255) {
    throw new IdentityError(
      'ERR_TRUST_DOMAIN_INVALID',
      `trust domain is ${td.length} characters; at most 255 are allowed`,
    );
  }
  if (!TRUST_DOMAIN_RE.test(td)) {
    throw new IdentityError(
      'ERR_TRUST_DOMAIN_INVALID',
      `trust domain ${JSON.stringify(td)} is invalid: use only lowercase letters, digits, ".", "-" and "_"`,
    );
  }
  return td;
}

/** Trust domains compare exactly (they are already lowercase by construction). */
export function sameTrustDomain(a: string, b: string): boolean {
  return a === b;
}
