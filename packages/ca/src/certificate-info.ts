import { createHash, type KeyObject, verify, X509Certificate } from 'node:crypto';
import { bitStringBytes, child, children, DerError, decodeOid, decodeTime, readWhole, TAG } from './der.js';
import { CaError } from './errors.js';
import { publicKeyFromSpki } from './keys.js';
import { certificateDers, toPem } from './pem.js';
import { hashForSignatureOid } from './signer.js';

/** What the CA needs to know about a certificate, parsed once from its DER. */
export interface CertificateInfo {
  der: Buffer;
  pem: string;
  /** Node's view of the certificate, built on first use (OpenSSL's decoder is slow; the hot paths avoid it). */
  readonly x509: X509Certificate;
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
  /** URI SANs, in order (the first is the SPIFFE identity of a mesh certificate). */
  uris: string[];
  /** The signed part, its signature algorithm (OID) and signature, for verifying against an issuer. */
  tbs: Buffer;
  signatureOid: string;
  signature: Buffer;
}

export function parseCertificate(input: Uint8Array): CertificateInfo {
  const der = Buffer.from(input);
  try {
    const cert = children(readWhole(der, TAG.SEQUENCE));
    const tbsEl = child(cert, 0, TAG.SEQUENCE);
    const tbs = children(tbsEl);
    const signatureOid = decodeOid(child(children(child(cert, 1, TAG.SEQUENCE)), 0, TAG.OID).value);
    const signature = Buffer.from(bitStringBytes(child(cert, 2, TAG.BIT_STRING)));
    let i = 0;
    if (tbs[0]?.tag === 0xa0) i++; // [0] version
    const serial = child(tbs, i++, TAG.INTEGER);
    i++; // signature algorithm (repeated outside the TBS)
    const issuer = child(tbs, i++, TAG.SEQUENCE);
    const validity = children(child(tbs, i++, TAG.SEQUENCE));
    const subject = child(tbs, i++, TAG.SEQUENCE);
    const spki = child(tbs, i++, TAG.SEQUENCE);
    let ski: Buffer | undefined;
    let aki: Buffer | undefined;
    let isCa = false;
    const uris: string[] = [];
    for (; i < tbs.length; i++) {
      const el = tbs[i];
      if (el?.tag !== 0xa3) continue;
      for (const ext of children(child(children(el), 0, TAG.SEQUENCE))) {
        const parts = children(ext);
        const id = decodeOid(child(parts, 0, TAG.OID).value);
        const value = child(parts, parts.length - 1, TAG.OCTET_STRING).value;
        if (id === '2.5.29.14') ski = Buffer.from(readWhole(value, TAG.OCTET_STRING).value);
        else if (id === '2.5.29.35') {
          const first = children(readWhole(value, TAG.SEQUENCE))[0];
          if (first?.tag === 0x80) aki = Buffer.from(first.value);
        } else if (id === '2.5.29.19') {
          const bc = children(readWhole(value, TAG.SEQUENCE));
          isCa = bc[0]?.tag === TAG.BOOLEAN && bc[0].value[0] !== 0;
        } else if (id === '2.5.29.17') {
          // GeneralNames: uniformResourceIdentifier is [6] IMPLICIT IA5String.
          for (const name of children(readWhole(value, TAG.SEQUENCE))) {
            if (name.tag === 0x86) uris.push(Buffer.from(name.value).toString('latin1'));
          }
        }
      }
    }
    const keyBits = bitStringBytes(child(children(spki), 1, TAG.BIT_STRING));
    const publicKey = publicKeyFromSpki(spki.bytes);
    const issuerName = Buffer.from(issuer.bytes);
    const subjectName = Buffer.from(subject.bytes);
    let x509: X509Certificate | undefined;
    const info: CertificateInfo = {
      der,
      pem: toPem('CERTIFICATE', der),
      get x509() {
        x509 ??= new X509Certificate(der);
        return x509;
      },
      serial: Buffer.from(serial.value)
        .toString('hex')
        .replace(/^0+(?=.)/, ''),
      fingerprint: createHash('sha256').update(der).digest('hex'),
      issuerName,
      subjectName,
      spki: Buffer.from(spki.bytes),
      publicKey,
      keyId: ski ?? createHash('sha1').update(keyBits).digest(),
      notBefore: decodeTime(child(validity, 0)),
      notAfter: decodeTime(child(validity, 1)),
      isCa,
      selfSigned: false,
      uris,
      tbs: Buffer.from(tbsEl.bytes),
      signatureOid,
      signature,
    };
    if (aki) info.authorityKeyId = aki;
    info.selfSigned = issuerName.equals(subjectName) && verifySignature(info, publicKey);
    return info;
  } catch (err) {
    if (err instanceof CaError) throw err;
    const why = err instanceof DerError ? err.message : (err as Error).message;
    throw new CaError('ERR_CERTIFICATE_INVALID', `not a valid X.509 certificate: ${why}`, { cause: err });
  }
}

/** True when `key` verifies the certificate's signature (false for unsupported algorithms). */
export function verifySignature(cert: CertificateInfo, key: KeyObject): boolean {
  const hash = hashForSignatureOid(cert.signatureOid);
  if (!hash) return false;
  try {
    return verify(hash, cert.tbs, key, cert.signature);
  } catch {
    return false;
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
  return verifySignature(cert, issuer.publicKey);
}
