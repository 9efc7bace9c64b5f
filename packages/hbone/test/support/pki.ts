/**
 * Test certificates minted on the fly with @peculiar/x509 over Node's WebCrypto: a root (or several),
 * workload certificates with SPIFFE URI SANs (empty subject, as Istio issues them), expired ones, and
 * roots nobody trusts.
 */
import 'reflect-metadata';
import type { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { TlsCredentials } from '../../src/index.js';

x509.cryptoProvider.set(globalThis.crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 3600 * 1000;
let serial = 1;

export interface TestCa {
  /** The root certificate, PEM. */
  readonly certPem: string;
  /** Issues a workload certificate for `identity` (a SPIFFE ID), signed by this root. */
  issue(identity: string | string[], opts?: IssueOptions): Promise<TlsCredentials>;
}

export interface IssueOptions {
  notBefore?: Date;
  notAfter?: Date;
  /** Trust bundle put into the credentials (default: this root). */
  trustBundle?: string;
}

export async function createCa(name = 'test root'): Promise<TestCa> {
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: `CN=${name}, O=ambient-ts tests`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 3650 * DAY),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPem = `${root.toString('pem')}\n`;
  return {
    certPem,
    async issue(identity, opts = {}) {
      const leafKeys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
      const uris = Array.isArray(identity) ? identity : [identity];
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: nextSerial(),
        subject: '',
        issuer: root.subject,
        notBefore: opts.notBefore ?? new Date(Date.now() - 3600 * 1000),
        notAfter: opts.notAfter ?? new Date(Date.now() + DAY),
        signingAlgorithm: ALG,
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        extensions: [
          // Empty subject, so the SAN extension is critical (RFC 5280 §4.2.1.6).
          new x509.SubjectAlternativeNameExtension(
            uris.map((value) => ({ type: 'url' as const, value })),
            true,
          ),
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
          await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey),
        ],
      });
      const pkcs8 = await crypto.subtle.exportKey('pkcs8', leafKeys.privateKey);
      return {
        key: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'),
        certChain: `${leaf.toString('pem')}\n`,
        trustBundle: opts.trustBundle ?? certPem,
      };
    },
  };
}

/** Credentials whose certificate expired yesterday. */
export function expiredOptions(): IssueOptions {
  return { notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) };
}

function nextSerial(): string {
  return (serial++).toString(16).padStart(2, '0');
}
