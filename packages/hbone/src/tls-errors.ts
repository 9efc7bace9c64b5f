import { HboneError } from './errors.js';

/** Whose certificate failed: on the client it is the server's, on the server the client's. */
export type TlsSide = 'client' | 'server';

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);
const VERSION = new Set([
  'ERR_SSL_UNSUPPORTED_PROTOCOL',
  'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_NO_PROTOCOLS_AVAILABLE',
  'ERR_SSL_UNSUPPORTED_SSL_VERSION',
]);
const PEER_REFUSED_OUR_CERT = new Set([
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
]);

/**
 * Turns a handshake failure (OpenSSL alert, certificate verification code, socket error) into an
 * HboneError that says what went wrong in mesh terms. `verifying` is the role that verified the
 * certificate in question: the client verifies the server's, the server the client's.
 */
export function tlsFailure(err: unknown, verifying: TlsSide): HboneError {
  if (err instanceof HboneError) return err;
  const code = (err as { code?: string } | undefined)?.code ?? '';
  return tlsFailureForCode(code, verifying, err);
}

/** Same as {@link tlsFailure} for a bare verification code such as `authorizationError`. */
export function tlsFailureForCode(code: string, verifying: TlsSide, cause?: unknown): HboneError {
  const peer = verifying === 'client' ? 'server' : 'client';
  const opt = { cause: cause ?? new Error(code) };
  const tag = code ? ` (${code})` : '';
  if (UNTRUSTED.has(code)) {
    return new HboneError(
      'ERR_HBONE_TLS',
      `untrusted ${peer} certificate: it does not chain to a root in the trust bundle${tag}; check that both sides use the same mesh CA`,
      opt,
    );
  }
  if (code === 'CERT_HAS_EXPIRED') {
    return new HboneError('ERR_HBONE_TLS', `the ${peer} certificate has expired${tag}; it must be renewed`, opt);
  }
  if (code === 'CERT_NOT_YET_VALID') {
    return new HboneError('ERR_HBONE_TLS', `the ${peer} certificate is not valid yet${tag}; check the clocks`, opt);
  }
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' || code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') {
    return new HboneError(
      'ERR_HBONE_TLS',
      `missing client certificate${tag}: HBONE servers require mutual TLS, the client must present its workload certificate`,
      opt,
    );
  }
  if (VERSION.has(code)) {
    return new HboneError('ERR_HBONE_TLS', `the ${peer} does not speak TLS 1.3${tag}; HBONE requires TLS 1.3`, opt);
  }
  if (code === 'ERR_SSL_NO_SHARED_CIPHER' || code === 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE') {
    return new HboneError(
      'ERR_HBONE_TLS',
      `TLS handshake failure${tag}: no common TLS 1.3 cipher suite or signature algorithm (HBONE uses AES-GCM suites)`,
      opt,
    );
  }
  if (code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' || code === 'ERR_SSL_NO_APPLICATION_PROTOCOL') {
    return new HboneError('ERR_HBONE_ALPN', `ALPN mismatch${tag}: HBONE requires the "h2" protocol on both sides`, opt);
  }
  if (PEER_REFUSED_OUR_CERT.has(code)) {
    return new HboneError('ERR_HBONE_TLS', `the ${peer} refused our certificate${tag}`, opt);
  }
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
    return new HboneError('ERR_HBONE_TIMEOUT', 'the TLS handshake did not finish in time', opt);
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return new HboneError('ERR_HBONE_TLS', `the ${peer} closed the connection during the TLS handshake${tag}`, opt);
  }
  const message = (cause as Error | undefined)?.message ?? code;
  return new HboneError('ERR_HBONE_TLS', `TLS handshake with the ${peer} failed: ${message}`, opt);
}
