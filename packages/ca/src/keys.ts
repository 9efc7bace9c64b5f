import { createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { bitString, bitStringBytes, child, children, decodeOid, oid, readWhole, sequence, TAG } from './der.js';
import { CaError } from './errors.js';

/** Key types for roots and issued certificates. Workload keys are ECDSA P-256 (Istio's default). */
export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-4096';

export const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-4096'];

/** Generates a private key in this process (libuv's thread pool, so the event loop keeps running). */
export function generateKey(type: KeyType = 'ec-p256'): Promise<KeyObject> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, _pub: KeyObject, priv: KeyObject): void => (err ? reject(err) : resolve(priv));
    switch (type) {
      case 'ec-p256':
        return generateKeyPair('ec', { namedCurve: 'P-256' }, done);
      case 'ec-p384':
        return generateKeyPair('ec', { namedCurve: 'P-384' }, done);
      case 'rsa-2048':
        return generateKeyPair('rsa', { modulusLength: 2048 }, done);
      case 'rsa-4096':
        return generateKeyPair('rsa', { modulusLength: 4096 }, done);
      default:
        return reject(
          new CaError(
            'ERR_CA_CONFIG_INVALID',
            `key type ${JSON.stringify(type)} is unknown: use one of ${KEY_TYPES.join(', ')}`,
          ),
        );
    }
  });
}

/** PKCS#8 PEM, the form TLS stacks and `ca-key.pem` use. */
export function privateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

const EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const CURVES: Record<string, { crv: string; size: number }> = {
  '1.2.840.10045.3.1.7': { crv: 'P-256', size: 32 },
  '1.3.132.0.34': { crv: 'P-384', size: 48 },
};
const CURVE_OID: Record<string, string> = { 'P-256': '1.2.840.10045.3.1.7', 'P-384': '1.3.132.0.34' };

/**
 * A public KeyObject from SubjectPublicKeyInfo DER. EC keys go through JWK coordinates: OpenSSL 3's
 * DER decoder costs several times more than the key itself, and this runs once per CSR and certificate.
 */
export function publicKeyFromSpki(spki: Uint8Array): KeyObject {
  const ec = ecPoint(spki);
  if (ec) {
    const { crv, size, point } = ec;
    const x = point.subarray(1, 1 + size).toString('base64url');
    const y = point.subarray(1 + size).toString('base64url');
    return createPublicKey({ key: { kty: 'EC', crv, x, y }, format: 'jwk' });
  }
  return createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
}

/** SubjectPublicKeyInfo DER of a (public or private) key; EC keys are encoded here from their JWK form. */
export function spkiOf(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType === 'ec') {
    const jwk = pub.export({ format: 'jwk' });
    const curveOid = jwk.crv ? CURVE_OID[jwk.crv] : undefined;
    if (curveOid && jwk.x && jwk.y) {
      const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
      return Buffer.from(sequence(sequence(oid(EC_PUBLIC_KEY), oid(curveOid)), bitString(point)));
    }
  }
  return pub.export({ type: 'spki', format: 'der' });
}

function ecPoint(spki: Uint8Array): { crv: string; size: number; point: Buffer } | undefined {
  try {
    const parts = children(readWhole(spki, TAG.SEQUENCE));
    const alg = children(child(parts, 0, TAG.SEQUENCE));
    if (decodeOid(child(alg, 0, TAG.OID).value) !== EC_PUBLIC_KEY) return undefined;
    const curve = CURVES[decodeOid(child(alg, 1, TAG.OID).value)];
    const point = Buffer.from(bitStringBytes(child(parts, 1, TAG.BIT_STRING)));
    if (!curve || point[0] !== 4 || point.length !== 1 + 2 * curve.size) return undefined;
    return { ...curve, point };
  } catch {
    return undefined;
  }
}
