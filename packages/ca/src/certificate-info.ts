import { createHash, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { uriSans } from '@ambient-ts/identity';
import {
  bitStringBytes,
  child,
  children,
  DerError,
  decodeOid,
  decodeTime,
  readWhole,
  TAG,
} from './der.js';
import { CaError } from './errors.js';
import { certificateDers, toPem } from './pem.js';

/** What the CA needs to know about a certificate, parsed once from its DER. */
export interface CertificateInfo {
  der: Buffer;
  pem: string;
  x509: X509Certificate;
  /** Serial number, lowercase hex without leading zeros. */
  serial: string;
  /** SHA-256 of the DER, lowercase hex: a stable name for the certificate. */
  fingerprint: string;
  /** Issuer and subject Name DER (copied), for building children and matching issuers. */
  issuerName: Buffer;
  subjectName: Buffer;
  /** SubjectPublicKeyInfo DER. */
  spki: Buffer;
  publicKey: KeyObject;
  /** The key identifier children reference: the SKI extension, or SHA-1 of the key when absent. */
  keyId: Buffer;
  authorityKeyId?: Buffer;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  selfSigned: boolean;
  uris: string[];
}

export function parseCertificate(input: Uint8Array): CertificateInfo {
  const der = Buffer.from(input);
  try {
    const cert = children(readWhole(der, TAG.SEQUENCE));
    const tbs = children(child(cert, 0, TAG.SEQUENCE));
    let i = 0;
    if (tbs[0]?.tag === 0xa0) i++; // [0] version
    const serial = child(tbs, i++, TAG.INTEGER);
    i++; // signature algorithm
    const issuer = child(tbs, i++, TAG.SEQUENCE);
    const validity = children(child(tbs, i++, TAG.SEQUENCE));
    const subject = child(tbs, i++, TAG.SEQUENCE);
    const spki = child(tbs, i++, TAG.SEQUENCE);
    let ski: Buffer | undefined;
    let aki: Buffer | undefined;
    let isCa = false;
    for (; i < tbs.length; i++) {
      const el = tbs[i];
      if (el?.tag !== 0xa3) continue;
      for (const ext of children(child(children(el), 0, TAG.SEQUENCE))) {
        const parts = children(ext);
        const id = decodeOid(child(parts, 0, TAG.OID).value);
        const value = (parts[parts.length - 1] as { value: Uint8Array }).value;
        if (id === '2.5.29.14') ski = Buffer.from(readWhole(value, TAG.OCTET_STRING).value);
        else if (id === '2.5.29.35') {
          const first = children(readWhole(value, TAG.SEQUENCE))[0];
          if (first?.tag === 0x80) aki = Buffer.from(first.value);
        } else if (id === '2.5.29.19') {
          const bc = children(readWhole(value, TAG.SEQUENCE));
          isCa = bc[0]?.tag === TAG.BOOLEAN && bc[0].value[0] !== 0;
        }
      }
    }
    const spkiParts = children(spki);
    const keyBits = bitStringBytes(child(spkiParts, 1, TAG.BIT_STRING));
    const x509 = new X509Certificate(der);
    const publicKey = createPublicKey({ key: Buffer.from(spki.bytes), format: 'der', type: 'spki' });
    const issuerName = Buffer.from(issuer.bytes);
    const subjectName = Buffer.from(subject.bytes);
    const selfSigned = issuerName.equals(subjectName) && x509.verify(publicKey);
    const keyId = ski ?? createHash('sha1').update(keyBits).digest();
    const info: CertificateInfo = {
      der,
      pem: toPem('CERTIFICATE', der),
      x509,
      serial: Buffer.from(serial.value).toString('hex').replace(/^0+(?=.)/, ''),
      fingerprint: createHash('sha256').update(der).digest('hex'),
      issuerName,
      subjectName,
      spki: Buffer.from(spki.bytes),
      publicKey,
      keyId,
      notBefore: decodeTime(child(validity, 0)),
      notAfter: decodeTime(child(validity, 1)),
      isCa,
      selfSigned,
      uris: uriSans(x509),
    };
    if (aki) info.authorityKeyId = aki;
    return info;
  } catch (err) {
    if (err instanceof CaError) throw err;
    const why = err instanceof DerError ? err.message : (err as Error).message;
    throw new CaError('ERR_CERTIFICATE_INVALID', `not a valid X.509 certificate: ${why}`, { cause: err });
  }
}

/** Parses every certificate in a PEM text; `what` names the source in errors. */
export function parseCertificates(pem: string | Buffer, what: string): CertificateInfo[] {
  const ders = certificateDers(pem);
  if (ders.length === 0) throw new CaError('ERR_CERTIFICATE_INVALID', `${what} holds no PEM CERTIFICATE block`);
  return ders.map((d, n) => {
    try {
      return parseCertificate(d);
    } catch (err) {
      throw new CaError('ERR_CERTIFICATE_INVALID', `${what}, certificate #${n + 1}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  });
}

/** True when `issuer` signed `cert` (names chain and the signature verifies). */
export function issuedBy(cert: CertificateInfo, issuer: CertificateInfo): boolean {
  if (!cert.issuerName.equals(issuer.subjectName)) return false;
  if (cert.authorityKeyId && !cert.authorityKeyId.equals(issuer.keyId)) return false;
  return cert.x509.verify(issuer.publicKey);
}
