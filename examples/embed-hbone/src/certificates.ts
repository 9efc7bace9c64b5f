/**
 * A throw-away mesh CA for the example: a root and workload certificates with SPIFFE URI SANs, made with
 * @peculiar/x509 on Node's WebCrypto. In a real mesh these come from the control plane's CA.
 */
import 'reflect-metadata';
import type { webcrypto } from 'node:crypto';
import type { TlsCredentials } from '@ambient-ts/hbone';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(globalThis.crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const HOUR = 3600 * 1000;

export interface ExampleCa {
  rootPem: string;
  /** A 24-hour workload certificate for `spiffeId`, as Istio issues them (empty subject, one URI SAN). */
  issue(spiffeId: string): Promise<TlsCredentials>;
}

export async function createExampleCa(): Promise<ExampleCa> {
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=embed-hbone example root, O=ambient-ts',
    notBefore: new Date(Date.now() - HOUR),
    notAfter: new Date(Date.now() + 24 * HOUR),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const rootPem = `${root.toString('pem')}\n`;
  let serial = 2;
  return {
    rootPem,
    async issue(spiffeId) {
      const leafKeys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: (serial++).toString(16).padStart(2, '0'),
        subject: '',
        issuer: root.subject,
        notBefore: new Date(Date.now() - HOUR),
        notAfter: new Date(Date.now() + 24 * HOUR),
        signingAlgorithm: ALG,
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        extensions: [
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true),
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
        trustBundle: rootPem,
      };
    },
  };
}
