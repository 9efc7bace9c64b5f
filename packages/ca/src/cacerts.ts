import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CertificateInfo, issuedBy, parseCertificates } from './certificate-info.js';
import { CaError } from './errors.js';
import { KeySigner, type Signer } from './signer.js';

/** A CA loaded from Istio's plugged-in `cacerts` layout. */
export interface PluggedCa {
  /** `ca-cert.pem`: the certificate that signs workload certificates. */
  issuer: CertificateInfo;
  /** Certificates between the leaf and the root, leaf side first, starting with the issuer (empty when the issuer is a root). */
  intermediates: CertificateInfo[];
  /** `root-cert.pem`: every root of the trust bundle. */
  roots: CertificateInfo[];
  signer: Signer;
}

/**
 * Loads `ca-cert.pem`, `ca-key.pem` (unless a Signer holds the key), `root-cert.pem` and `cert-chain.pem`
 * (optional when ca-cert is the root) from `dir`, and checks they form one chain.
 */
export async function loadCacerts(dir: string, signer?: Signer): Promise<PluggedCa> {
  const read = async (name: string, optional = false): Promise<Buffer | undefined> => {
    try {
      return await readFile(join(dir, name));
    } catch (err) {
      if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw bad(dir, `cannot read ${name}: ${(err as Error).message}`, err);
    }
  };
  const parse = (pem: Buffer, name: string): CertificateInfo[] => {
    try {
      return parseCertificates(pem, name);
    } catch (err) {
      throw bad(dir, (err as Error).message, err);
    }
  };
  const issuer = parse((await read('ca-cert.pem')) as Buffer, 'ca-cert.pem')[0] as CertificateInfo;
  const roots = parse((await read('root-cert.pem')) as Buffer, 'root-cert.pem');
  const chainPem = await read('cert-chain.pem', true);
  const chain = chainPem ? parse(chainPem, 'cert-chain.pem') : [];
  const key = signer ?? KeySigner.fromPem((await read('ca-key.pem')) as Buffer, join(dir, 'ca-key.pem'));

  if (!issuer.isCa) throw bad(dir, 'ca-cert.pem is not a CA certificate (basicConstraints CA:TRUE is required)');
  if (!key.publicKey.equals(issuer.publicKey)) {
    throw bad(dir, `${signer ? 'the Signer' : 'ca-key.pem'} does not hold the key of ca-cert.pem`);
  }
  for (const r of roots)
    if (!r.selfSigned) throw bad(dir, `root-cert.pem holds a certificate that is not self-signed (serial ${r.serial})`);

  // Walk from the issuer up to a root, using cert-chain.pem for the intermediates.
  const intermediates: CertificateInfo[] = [];
  let current = issuer;
  for (let depth = 0; ; depth++) {
    if (roots.some((r) => r.fingerprint === current.fingerprint)) break;
    intermediates.push(current);
    const root = roots.find((r) => issuedBy(current, r));
    if (root) break;
    const parent = chain.find((c) => c.fingerprint !== current.fingerprint && issuedBy(current, c));
    if (!parent || depth > 8) {
      throw bad(
        dir,
        `cannot build a chain from ca-cert.pem to a root of root-cert.pem: add the missing intermediates to cert-chain.pem`,
      );
    }
    current = parent;
  }
  return { issuer, intermediates, roots, signer: key };
}

function bad(dir: string, why: string, cause?: unknown): CaError {
  return new CaError('ERR_CA_CONFIG_INVALID', `plugged-in CA folder ${dir}: ${why}`, { cause });
}
