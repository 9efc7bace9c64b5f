import { createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { NULL, oid, sequence } from './der.js';
import { CaError } from './errors.js';

/** Signature algorithms the CA signs with (chosen by the issuing key's type). */
export type SignatureAlgorithm = 'ecdsa-sha256' | 'ecdsa-sha384' | 'rsa-pkcs1-sha256';

/**
 * Where the CA's signing key lives. The CA only ever asks for a signature over a DER TBSCertificate, so a
 * KMS, HSM or Vault can hold the key without it ever entering this process: implement this interface.
 */
export interface Signer {
  /** The public half of the signing key; must match the CA certificate's key (checked at load). */
  readonly publicKey: KeyObject;
  /** The algorithm `sign` produces; must suit the key (ECDSA P-256 → ecdsa-sha256, P-384 → ecdsa-sha384, RSA → rsa-pkcs1-sha256). */
  readonly algorithm: SignatureAlgorithm;
  /** Signs `data`, returning the X.509 signature value (for ECDSA: the DER `Ecdsa-Sig-Value`, not r‖s). */
  sign(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

const HASH: Record<SignatureAlgorithm, string> = {
  'ecdsa-sha256': 'sha256',
  'ecdsa-sha384': 'sha384',
  'rsa-pkcs1-sha256': 'sha256',
};

export const SIGNATURE_OID: Record<SignatureAlgorithm, string> = {
  'ecdsa-sha256': '1.2.840.10045.4.3.2',
  'ecdsa-sha384': '1.2.840.10045.4.3.3',
  'rsa-pkcs1-sha256': '1.2.840.113549.1.1.11',
};

/** The AlgorithmIdentifier DER for an algorithm (RSA carries explicit NULL parameters, ECDSA none). */
export function algorithmIdentifier(alg: SignatureAlgorithm): Uint8Array {
  return alg === 'rsa-pkcs1-sha256' ? sequence(oid(SIGNATURE_OID[alg]), NULL) : sequence(oid(SIGNATURE_OID[alg]));
}

/** Maps a signature algorithm OID (from a CSR or certificate) to the Node hash name used to verify it. */
export function hashForSignatureOid(dotted: string): string | undefined {
  switch (dotted) {
    case '1.2.840.10045.4.3.2':
    case '1.2.840.113549.1.1.11':
      return 'sha256';
    case '1.2.840.10045.4.3.3':
    case '1.2.840.113549.1.1.12':
      return 'sha384';
    case '1.2.840.10045.4.3.4':
    case '1.2.840.113549.1.1.13':
      return 'sha512';
    default:
      return undefined;
  }
}

/** The algorithm a CA key signs with; throws for key types a CA may not use. */
export function signatureAlgorithmFor(key: KeyObject): SignatureAlgorithm {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ecdsa-sha256';
    if (curve === 'secp384r1') return 'ecdsa-sha384';
    throw new CaError('ERR_CA_CONFIG_INVALID', `CA key on curve ${curve} is not supported: use P-256, P-384 or RSA`);
  }
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048)
      throw new CaError('ERR_CA_CONFIG_INVALID', `RSA CA key of ${bits} bits is too small: use 2048 or more`);
    return 'rsa-pkcs1-sha256';
  }
  throw new CaError('ERR_CA_CONFIG_INVALID', `CA key type ${type} is not supported: use ECDSA P-256/P-384 or RSA`);
}

/** A Signer over a private key held in this process (read from a PEM file, or generated). */
export class KeySigner implements Signer {
  readonly publicKey: KeyObject;
  readonly algorithm: SignatureAlgorithm;
  readonly #key: KeyObject;
  readonly #hash: string;

  constructor(privateKey: KeyObject) {
    if (privateKey.type !== 'private') throw new CaError('ERR_CA_CONFIG_INVALID', 'KeySigner needs a private key');
    this.#key = privateKey;
    this.publicKey = createPublicKey(privateKey);
    this.algorithm = signatureAlgorithmFor(privateKey);
    this.#hash = HASH[this.algorithm];
  }

  /** Reads a PEM private key (PKCS#8, SEC1 or PKCS#1) from `file`. Errors name the file, never the key. */
  static async fromFile(file: string): Promise<KeySigner> {
    let pem: Buffer;
    try {
      pem = await readFile(file);
    } catch (err) {
      throw new CaError('ERR_CA_CONFIG_INVALID', `cannot read CA key ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return KeySigner.fromPem(pem, file);
  }

  static fromPem(pem: string | Buffer, source = 'the PEM input'): KeySigner {
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch (err) {
      // The underlying message never contains key material, but keep ours generic anyway.
      throw new CaError('ERR_CA_CONFIG_INVALID', `${source} does not hold a PEM private key`, { cause: err });
    }
    return new KeySigner(key);
  }

  sign(data: Uint8Array): Uint8Array {
    return sign(this.#hash, data, this.#key);
  }

  /** The private key as PKCS#8 PEM, for persisting with mode 0600. */
  exportPem(): string {
    return this.#key.export({ type: 'pkcs8', format: 'pem' }) as string;
  }
}

export function verifyHash(alg: SignatureAlgorithm): string {
  return HASH[alg];
}
