import { generateKeyPair, type KeyObject } from 'node:crypto';
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
        return reject(new CaError('ERR_CA_CONFIG_INVALID', `key type ${JSON.stringify(type)} is unknown: use one of ${KEY_TYPES.join(', ')}`));
    }
  });
}

/** PKCS#8 PEM, the form TLS stacks and `ca-key.pem` use. */
export function privateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}
