import { createHash, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import {
  bitString,
  explicit,
  ia5String,
  implicit,
  octetString,
  oid,
  sequence,
  set,
  smallInteger,
  TRUE,
  time,
  unsignedInteger,
  utf8String,
} from './der.js';
import { CaError } from './errors.js';
import { algorithmIdentifier, type Signer } from './signer.js';

const OID = {
  organization: '2.5.4.10',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** The fields of a certificate to be signed; names and keys as DER. */
export interface CertificateTemplate {
  serial: Uint8Array;
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo DER. */
  spki: Uint8Array;
  /** Each a DER `Extension`. */
  extensions: Uint8Array[];
}

/** 128 random bits, positive (RFC 5280 allows up to 20 octets; CAs should use at least 64 bits of entropy). */
export function randomSerial(): Uint8Array {
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f;
  if (b[0] === 0) b[0] = 1;
  return b;
}

/** A Name with O and/or CN (empty SEQUENCE when neither: workload certificates have an empty subject). */
export function distinguishedName(attrs: { organization?: string; commonName?: string }): Uint8Array {
  const rdns: Uint8Array[] = [];
  if (attrs.organization) rdns.push(set(sequence(oid(OID.organization), utf8String(attrs.organization))));
  if (attrs.commonName) rdns.push(set(sequence(oid(OID.commonName), utf8String(attrs.commonName))));
  return sequence(...rdns);
}

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? sequence(oid(id), TRUE, octetString(value)) : sequence(oid(id), octetString(value));
}

export function basicConstraints(ca: boolean, pathLen?: number): Uint8Array {
  const inner = ca ? (pathLen === undefined ? [TRUE] : [TRUE, smallInteger(pathLen)]) : [];
  return extension(OID.basicConstraints, true, sequence(...inner));
}

/** KeyUsage for a CA (keyCertSign, cRLSign, digitalSignature) or an end entity (digitalSignature, keyEncipherment). */
export function keyUsage(kind: 'ca' | 'leaf'): Uint8Array {
  // Bits numbered from the most significant: digitalSignature(0) keyEncipherment(2) keyCertSign(5) cRLSign(6).
  const bits = kind === 'ca' ? bitString(new Uint8Array([0x86]), 1) : bitString(new Uint8Array([0xa0]), 5);
  return extension(OID.keyUsage, true, bits);
}

/** ExtendedKeyUsage serverAuth + clientAuth: mesh certificates serve both ends of mutual TLS. */
export function extKeyUsageTls(): Uint8Array {
  return extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth), oid(OID.clientAuth)));
}

/** SubjectAltName with URIs, DNS names and IP addresses; critical when the subject is empty (RFC 5280 §4.2.1.6). */
export function subjectAltName(
  names: { uris?: string[]; dnsNames?: string[]; ipAddresses?: string[] },
  critical: boolean,
): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const u of names.uris ?? []) parts.push(implicit(6, ia5String(u).subarray(2)));
  for (const d of names.dnsNames ?? []) parts.push(implicit(2, ia5String(d).subarray(2)));
  for (const ip of names.ipAddresses ?? []) parts.push(implicit(7, ipBytes(ip)));
  return extension(OID.subjectAltName, critical, sequence(...parts));
}

function ipBytes(ip: string): Uint8Array {
  const v = isIP(ip);
  if (v === 4) return new Uint8Array(ip.split('.').map(Number));
  if (v === 6) {
    const [head = '', tail = ''] = ip.includes('::') ? ip.split('::') : [ip, ''];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    const out = new Uint8Array(16);
    groups.forEach((g, i) => {
      const n = Number.parseInt(g, 16);
      out[i * 2] = n >> 8;
      out[i * 2 + 1] = n & 0xff;
    });
    return out;
  }
  throw new CaError('ERR_CA_CONFIG_INVALID', `${JSON.stringify(ip)} is not an IP address`);
}

export function subjectKeyIdentifier(keyId: Uint8Array): Uint8Array {
  return extension(OID.subjectKeyIdentifier, false, octetString(keyId));
}

export function authorityKeyIdentifier(keyId: Uint8Array): Uint8Array {
  return extension(OID.authorityKeyIdentifier, false, sequence(implicit(0, keyId)));
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(subjectPublicKey: Uint8Array): Buffer {
  return createHash('sha1').update(subjectPublicKey).digest();
}

/** The TBSCertificate DER of `t`, to be signed by `signer`. */
export function tbsCertificate(t: CertificateTemplate, signer: Signer): Uint8Array {
  return sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(t.serial),
    algorithmIdentifier(signer.algorithm),
    t.issuer,
    sequence(time(t.notBefore), time(t.notAfter)),
    t.subject,
    t.spki,
    explicit(3, sequence(...t.extensions)),
  );
}

/** Builds and signs a certificate; returns its DER. */
export async function signCertificate(t: CertificateTemplate, signer: Signer): Promise<Buffer> {
  const tbs = tbsCertificate(t, signer);
  let signature: Uint8Array;
  try {
    signature = await signer.sign(tbs);
  } catch (err) {
    throw new CaError('ERR_SIGNER_FAILED', `the CA signer failed: ${(err as Error)?.message ?? err}`, { cause: err });
  }
  return Buffer.from(sequence(tbs, algorithmIdentifier(signer.algorithm), bitString(signature)));
}
