import type { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { identityFromCertificate, type SpiffeId } from '@ambient-ts/identity';
import { HboneError } from './errors.js';

/** The peer's identity: the first URI SAN of its certificate. Throws ERR_HBONE_PEER_IDENTITY. */
export function peerIdentity(cert: X509Certificate | PeerCertificate | undefined, peer: string): SpiffeId {
  if (!cert || (!('raw' in cert) && !('subjectAltName' in cert))) {
    throw new HboneError('ERR_HBONE_PEER_IDENTITY', `the ${peer} presented no certificate`);
  }
  try {
    return identityFromCertificate(cert);
  } catch (cause) {
    throw new HboneError(
      'ERR_HBONE_PEER_IDENTITY',
      `the ${peer} certificate carries no valid SPIFFE identity as its first URI SAN: ${(cause as Error).message}`,
      { cause },
    );
  }
}

/**
 * Client-side replacement for Node's hostname check: the server's first URI SAN must be one of the
 * identities the caller expects (the destination workload's, or the service's subject_alt_names).
 * Returns the error instead of throwing, as tls `checkServerIdentity` wants.
 */
export function checkServerIdentity(cert: PeerCertificate, expected: ReadonlySet<string>): HboneError | undefined {
  let id: SpiffeId;
  try {
    id = peerIdentity(cert, 'server');
  } catch (err) {
    return err as HboneError;
  }
  if (expected.has(id.toString())) return undefined;
  return new HboneError(
    'ERR_HBONE_IDENTITY_MISMATCH',
    `server identity ${id.toString()} is not one of the expected identities (${[...expected].join(', ')}): refusing to tunnel to it`,
  );
}

/** Server side: the client must belong to our trust domain. Throws ERR_HBONE_PEER_IDENTITY. */
export function checkTrustDomain(client: SpiffeId, trustDomain: string): void {
  if (!client.inTrustDomain(trustDomain)) {
    throw new HboneError(
      'ERR_HBONE_PEER_IDENTITY',
      `client identity ${client.toString()} is from trust domain "${client.trustDomain}", not ours ("${trustDomain}")`,
    );
  }
}
