import { type KeyObject, sign, verify } from 'node:crypto';
import { subjectAltName } from './certificate-builder.js';
import {
  bitString,
  bitStringBytes,
  child,
  children,
  DerError,
  decodeOid,
  explicit,
  oid,
  readWhole,
  sequence,
  set,
  smallInteger,
  TAG,
} from './der.js';
import { CaError } from './errors.js';
import { publicKeyFromSpki, spkiOf } from './keys.js';
import { pemBlocks, toPem } from './pem.js';
import { algorithmIdentifier, hashForSignatureOid, signatureAlgorithmFor } from './signer.js';

/** Larger inputs are refused before parsing: a real CSR is well under 2 KiB. */
export const MAX_CSR_BYTES = 16 * 1024;

const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

/** A PKCS#10 request whose own signature has been verified. */
export interface ParsedCsr {
  /** SubjectPublicKeyInfo DER: copied into the certificate. */
  spki: Buffer;
  publicKey: KeyObject;
}

/**
 * Builds a PKCS#10 CSR for a workload identity: empty subject, one URI SAN (Istio's form), signed by
 * `privateKey` (ECDSA P-256/SHA-256 for mesh workloads; P-384 and RSA work too).
 */
export function createCsr(privateKey: KeyObject, uri: string): string {
  const alg = signatureAlgorithmFor(privateKey);
  const spki = spkiOf(privateKey);
  const extensions = sequence(subjectAltName({ uris: [uri] }, true));
  const info = sequence(
    smallInteger(0),
    sequence(),
    spki,
    explicit(0, sequence(oid(EXTENSION_REQUEST), set(extensions))),
  );
  const hash = alg === 'ecdsa-sha384' ? 'sha384' : 'sha256';
  const signature = sign(hash, info, privateKey);
  return toPem('CERTIFICATE REQUEST', sequence(info, algorithmIdentifier(alg), bitString(signature)));
}

/** Decodes a PEM (or DER) CSR and verifies its self-signature. Throws ERR_CSR_INVALID saying why. */
export function parseCsr(input: string | Uint8Array): ParsedCsr {
  const size = typeof input === 'string' ? input.length : input.byteLength;
  if (size > MAX_CSR_BYTES) throw invalid(`it is ${size} bytes; at most ${MAX_CSR_BYTES} are accepted`);
  let der: Uint8Array;
  if (typeof input === 'string') {
    const block = pemBlocks(input).find(
      (b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST',
    );
    if (!block) throw invalid('no PEM "CERTIFICATE REQUEST" block found');
    der = block.der;
  } else {
    der = input;
  }
  let info: Uint8Array;
  let spki: Uint8Array;
  let sigOid: string;
  let signature: Uint8Array;
  try {
    const top = children(readWhole(der, TAG.SEQUENCE));
    const infoEl = child(top, 0, TAG.SEQUENCE);
    const infoParts = children(infoEl);
    const version = child(infoParts, 0, TAG.INTEGER);
    if (version.value.length !== 1 || version.value[0] !== 0) throw new DerError('version must be 0 (v1)');
    child(infoParts, 1, TAG.SEQUENCE);
    spki = child(infoParts, 2, TAG.SEQUENCE).bytes;
    info = infoEl.bytes;
    sigOid = decodeOid(child(children(child(top, 1, TAG.SEQUENCE)), 0, TAG.OID).value);
    signature = bitStringBytes(child(top, 2, TAG.BIT_STRING));
  } catch (err) {
    throw invalid(`malformed PKCS#10 structure (${(err as Error).message})`, err);
  }
  const hash = hashForSignatureOid(sigOid);
  if (!hash) throw invalid(`signature algorithm ${sigOid} is not supported: use ECDSA with SHA-256`);
  let publicKey: KeyObject;
  try {
    publicKey = publicKeyFromSpki(spki);
  } catch (err) {
    throw invalid('its public key cannot be decoded', err);
  }
  checkKey(publicKey);
  let ok = false;
  try {
    ok = verify(hash, info, publicKey, signature);
  } catch (err) {
    throw invalid('its signature cannot be checked', err);
  }
  if (!ok) throw invalid('its signature does not verify with its own public key');
  return { spki: Buffer.from(spki), publicKey };
}

function checkKey(key: KeyObject): void {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1' || curve === 'secp384r1') return;
    throw invalid(`EC curve ${curve} is not accepted: use P-256`);
  }
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits >= 2048 && bits <= 8192) return;
    throw invalid(`RSA key of ${bits} bits is not accepted: use ECDSA P-256 (or RSA 2048-8192)`);
  }
  throw invalid(`key type ${type} is not accepted: use ECDSA P-256`);
}

function invalid(why: string, cause?: unknown): CaError {
  return new CaError('ERR_CSR_INVALID', `bad certificate signing request: ${why}`, { cause });
}
