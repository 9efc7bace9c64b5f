export {
  type CertificateInput,
  identitiesFromCertificate,
  identityFromCertificate,
  uriSans,
} from './certificate.js';
export { IdentityError, type IdentityErrorCode } from './errors.js';
export { SpiffeId, spiffeId } from './spiffe-id.js';
export { DEFAULT_TRUST_DOMAIN, sameTrustDomain, validateTrustDomain } from './trust-domain.js';
