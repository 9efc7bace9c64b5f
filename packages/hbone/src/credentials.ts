import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { identityFromCertificate, type SpiffeId } from '@ambient-ts/identity';
import { HBONE_CIPHERSUITES } from './constants.js';
import { HboneError } from './errors.js';

/**
 * A workload's mesh credentials, all PEM: its private key, its certificate chain (leaf first, then
 * intermediates) and the trust bundle (one or more roots) used to verify peers.
 * This is the shape @ambient-ts/ca's SecretManager returns.
 */
export interface TlsCredentials {
  key: string | Buffer;
  certChain: string | Buffer;
  trustBundle: string | Buffer;
}

/** Client side: credentials for the source identity a tunnel is opened for (undefined = the default). */
export type ClientCredentialsProvider = (sourceIdentity?: string) => TlsCredentials | Promise<TlsCredentials>;

/**
 * Server side: credentials for the local address an HBONE connection arrived on (clients send no SNI). The raw
 * TCP socket is passed too, for a caller that needs more than its address (e.g. the original destination of a
 * connection redirected by iptables); it must not be read from or written to.
 */
export type ServerCredentialsProvider = (
  local: { address: string; port: number },
  socket: Socket,
) => TlsCredentials | Promise<TlsCredentials>;

/** What we derive once per credentials object. */
export interface CredentialsInfo {
  /** The identity of our own certificate (first URI SAN of the leaf). */
  readonly identity: SpiffeId;
  readonly notAfter: Date;
  /** TLS options common to both roles: TLS 1.3 only, Istio's suites, our key/chain, the trust bundle. */
  readonly tlsOptions: SecureContextOptions;
}

// Parsing keys and certificates costs about a millisecond; each credentials object is inspected once and
// its client SecureContext built once. WeakMaps let rotated-out credentials be collected with them.
const infoCache = new WeakMap<TlsCredentials, CredentialsInfo>();
const contextCache = new WeakMap<TlsCredentials, SecureContext>();

/**
 * Validates `creds` and returns what we derive from them, cached per object. Throws
 * ERR_HBONE_INVALID_OPTION naming what is wrong (missing field, not PEM, no SPIFFE identity in the leaf).
 */
export function inspectCredentials(creds: TlsCredentials): CredentialsInfo {
  const hit = infoCache.get(creds);
  if (hit) return hit;
  if (creds === null || typeof creds !== 'object') {
    throw invalid('credentials must be an object { key, certChain, trustBundle } (PEM strings or Buffers)');
  }
  for (const field of ['key', 'certChain', 'trustBundle'] as const) {
    const v = creds[field];
    if (!(typeof v === 'string' || Buffer.isBuffer(v)) || v.length === 0) {
      throw invalid(`credentials.${field} is missing: give PEM text (string or Buffer)`);
    }
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(creds.certChain);
  } catch (cause) {
    throw invalid('credentials.certChain is not a PEM certificate chain (leaf first)', cause);
  }
  let identity: SpiffeId;
  try {
    identity = identityFromCertificate(leaf);
  } catch (cause) {
    throw invalid(
      'credentials.certChain: the leaf certificate carries no SPIFFE identity (first URI SAN spiffe://<td>/ns/<ns>/sa/<sa>)',
      cause,
    );
  }
  const info: CredentialsInfo = {
    identity,
    notAfter: new Date(leaf.validTo),
    tlsOptions: {
      key: creds.key,
      cert: creds.certChain,
      ca: creds.trustBundle,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ciphers: HBONE_CIPHERSUITES,
    },
  };
  // Building a context proves the key matches the certificate before anyone relies on these credentials.
  contextCache.set(creds, buildContext(info.tlsOptions));
  infoCache.set(creds, info);
  return info;
}

/** The client-side SecureContext for `creds`, built once per credentials object. */
export function secureContextFor(creds: TlsCredentials): SecureContext {
  inspectCredentials(creds);
  return contextCache.get(creds)!;
}

function buildContext(options: SecureContextOptions): SecureContext {
  try {
    return createSecureContext(options);
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    throw invalid(
      code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH'
        ? 'credentials.key does not belong to the leaf certificate of credentials.certChain'
        : `credentials are unusable: ${(cause as Error).message}`,
      cause,
    );
  }
}

function invalid(message: string, cause?: unknown): HboneError {
  return new HboneError('ERR_HBONE_INVALID_OPTION', message, cause === undefined ? undefined : { cause });
}
