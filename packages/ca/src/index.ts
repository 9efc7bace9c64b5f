export {
  type AuthenticatedCaller,
  type Authenticator,
  type CallContext,
  ClientCertificateAuthenticator,
  TokenAuthenticator,
  type TokenEntry,
} from './authenticators.js';
export {
  CaClient,
  type CaClientOptions,
  type CreateCertificateOptions,
  type FetchCertificateOptions,
  type VerifiedChain,
  verifyIssuedChain,
} from './ca-client.js';
export { CaServer, type CaServerEvents, type CaServerOptions } from './ca-server.js';
export {
  CertificateAuthority,
  type CertificateAuthorityEvents,
  type CertificateAuthorityOptions,
  type IssuedCertificate,
  type IssuedKeyAndCertificate,
  type IssueOptions,
  type RootInfo,
  type SignOptions,
} from './certificate-authority.js';
export { type CertificateInfo, parseCertificate, parseCertificates } from './certificate-info.js';
export { type Clock, ManualClock, systemClock, type Timer } from './clock.js';
export { createCsr, MAX_CSR_BYTES, type ParsedCsr, parseCsr } from './csr.js';
export { formatDuration, parseDuration } from './duration.js';
export { CaError, type CaErrorCode, isCaError } from './errors.js';
export { generateKey, KEY_TYPES, type KeyType } from './keys.js';
export { CA_PROTO, CREATE_CERTIFICATE_PATH, IMPERSONATED_IDENTITY, SERVICE_NAME } from './proto.js';
export type { RateLimitOptions } from './rate-limiter.js';
export {
  type CertificateFetcher,
  SecretManager,
  type SecretManagerEvents,
  type SecretManagerOptions,
} from './secret-manager.js';
export { ServingCredentials, type ServingCredentialsOptions } from './serving-credentials.js';
export { KeySigner, type SignatureAlgorithm, type Signer } from './signer.js';
export { TlsChannelCredentials, type TlsChannelCredentialsOptions } from './tls-channel-credentials.js';
export type { TlsCredentials, WorkloadCertificate } from './workload-certificate.js';
