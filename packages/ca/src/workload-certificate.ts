/**
 * The credentials a TLS endpoint needs: the same shape `@ambient-ts/hbone` accepts, declared here too so
 * this package does not depend on hbone (structural typing makes the two interchangeable).
 */
export interface TlsCredentials {
  /** Private key, PEM. */
  key: string | Buffer;
  /** Leaf certificate then intermediates, PEM. */
  certChain: string | Buffer;
  /** Root certificates to verify peers against, PEM (possibly several during a root rotation). */
  trustBundle: string | Buffer;
}

/** A workload certificate with its key, as the CA client and the SecretManager hand it out. */
export interface WorkloadCertificate extends TlsCredentials {
  /** The SPIFFE ID in the certificate. */
  identity: string;
  key: string;
  certChain: string;
  trustBundle: string;
  /** Serial number, lowercase hex. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
}
