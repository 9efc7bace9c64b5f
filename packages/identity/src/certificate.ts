import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { IdentityError } from './errors.js';
import { SpiffeId } from './spiffe-id.js';

/** What Node gives for a certificate: an X509Certificate, a TLS PeerCertificate, PEM text or DER bytes. */
export type CertificateInput = X509Certificate | PeerCertificate | string | Uint8Array;

/**
 * All URI SANs of a certificate, in order. Node renders SANs as `URI:a, DNS:b, …`; values with
 * commas or quotes are JSON-quoted (CVE-2021-44532 hardening), which we decode rather than split blindly.
 */
export function uriSans(cert: CertificateInput): string[] {
  const text = subjectAltNameText(cert);
  if (!text) return [];
  const out: string[] = [];
  for (const entry of splitSanList(text)) {
    if (entry.startsWith('URI:')) out.push(entry.slice(4));
  }
  return out;
}

/**
 * The peer identity of a certificate: its first URI SAN parsed as a SPIFFE ID (Istio's rule).
 * Throws ERR_NO_IDENTITY_IN_CERTIFICATE when there is none, ERR_IDENTITY_INVALID when it is malformed,
 * ERR_CERTIFICATE_INVALID when the input is not a certificate.
 */
export function identityFromCertificate(cert: CertificateInput): SpiffeId {
  const sans = uriSans(cert);
  const first = sans[0];
  if (first === undefined) {
    throw new IdentityError(
      'ERR_NO_IDENTITY_IN_CERTIFICATE',
      'certificate has no URI SAN: a mesh certificate must carry spiffe://<td>/ns/<ns>/sa/<sa> as its first URI SAN',
    );
  }
  return SpiffeId.parse(first);
}

/** Every SPIFFE ID among the certificate's URI SANs (malformed ones skipped). */
export function identitiesFromCertificate(cert: CertificateInput): SpiffeId[] {
  const ids: SpiffeId[] = [];
  for (const san of uriSans(cert)) {
    const id = SpiffeId.tryParse(san);
    if (id) ids.push(id);
  }
  return ids;
}

function subjectAltNameText(cert: CertificateInput): string | undefined {
  if (cert instanceof X509Certificate) return cert.subjectAltName;
  if (typeof cert === 'string' || cert instanceof Uint8Array) return readCertificate(cert).subjectAltName;
  if (cert && typeof cert === 'object') {
    // A PeerCertificate from tls.TLSSocket#getPeerCertificate(); `{}` when the peer sent none.
    if (typeof cert.subjectaltname === 'string') return cert.subjectaltname;
    if (cert.raw) return readCertificate(cert.raw).subjectAltName;
  }
  return undefined;
}

/** OpenSSL's own error (ERR_OSSL_…) would break the promise that every error here is an IdentityError. */
function readCertificate(input: string | Uint8Array): X509Certificate {
  try {
    return new X509Certificate(input);
  } catch (cause) {
    throw new IdentityError(
      'ERR_CERTIFICATE_INVALID',
      `not a certificate: give PEM text ("-----BEGIN CERTIFICATE-----…"), DER bytes or an X509Certificate (${(cause as Error).message})`,
      { cause },
    );
  }
}

/** Splits Node's "TYPE:value, TYPE:"quoted, value"" rendering into entries. */
function splitSanList(text: string): string[] {
  const entries: string[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon);
    let j = colon + 1;
    let value: string;
    if (text[j] === '"') {
      // JSON string literal: find its end honouring escapes.
      let k = j + 1;
      while (k < text.length && text[k] !== '"') k += text[k] === '\\' ? 2 : 1;
      value = JSON.parse(text.slice(j, k + 1)) as string;
      j = k + 1;
    } else {
      const comma = text.indexOf(', ', j);
      const end = comma < 0 ? text.length : comma;
      value = text.slice(j, end);
      j = end;
    }
    entries.push(`${type}:${value}`);
    if (text.startsWith(', ', j)) j += 2;
    i = j;
  }
  return entries;
}
