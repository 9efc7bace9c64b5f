import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import { checkServerIdentity, connect, createSecureContext, type SecureContext } from 'node:tls';
import { CallCredentials, ChannelCredentials } from '@grpc/grpc-js';
import { CaError } from './errors.js';
import { certificateDers } from './pem.js';

type SecureConnector = ReturnType<ChannelCredentials['_createSecureConnector']>;

export interface TlsChannelCredentialsOptions {
  /** PEM roots that verify the server's certificate (the mesh trust bundle); the system roots are not used. */
  trustBundle: string | Buffer;
  /**
   * What the server's certificate must name. A DNS name is also sent as SNI; an IP address (no brackets) is
   * checked against the certificate's IP SANs and no SNI is sent. Usually the host of the gRPC target.
   */
  serverName: string;
  /** Key and certificate chain (PEM, leaf first) to present for mutual TLS. */
  clientCertificate?: { key: string | Buffer; certChain: string | Buffer };
}

/**
 * gRPC channel credentials for TLS to a mesh server (the control plane's xDS and CA on 15012). grpc-js's own
 * `credentials.createSsl` always sends the target host as SNI, and Node warns (DEP0123, once per process)
 * when that is an IP address, which RFC 6066 forbids. This does the same handshake — only `trustBundle` as
 * roots, optional client certificate, ALPN h2, the server's certificate checked against `serverName` (DNS
 * name or IP SAN) — but sends SNI only for a DNS name.
 *
 * Relies on grpc-js's `_createSecureConnector` contract (1.14; this package pins `^1.14`), and grpc-js
 * accepts it only when the channel is built by the same copy of `@grpc/grpc-js` this package resolves.
 */
export class TlsChannelCredentials extends ChannelCredentials {
  readonly #context: SecureContext;
  readonly #name: string;

  /** @throws CaError ERR_CA_CONFIG_INVALID (no serverName) or ERR_CERTIFICATE_INVALID (bundle or client certificate unusable). */
  constructor(options: TlsChannelCredentialsOptions) {
    super();
    const { serverName, trustBundle, clientCertificate } = options;
    if (typeof serverName !== 'string' || serverName.length === 0 || serverName.startsWith('[')) {
      throw new CaError(
        'ERR_CA_CONFIG_INVALID',
        'TlsChannelCredentials: serverName must be the DNS name or IP address (without brackets) the server certificate names',
      );
    }
    if (certificateDers(trustBundle).length === 0) {
      throw new CaError(
        'ERR_CERTIFICATE_INVALID',
        'TlsChannelCredentials: trustBundle holds no PEM certificate: pass the mesh root certificates',
      );
    }
    this.#name = serverName;
    try {
      this.#context = createSecureContext({
        ca: trustBundle,
        ...(clientCertificate ? { key: clientCertificate.key, cert: clientCertificate.certChain } : {}),
      });
    } catch (err) {
      throw new CaError(
        'ERR_CERTIFICATE_INVALID',
        `TlsChannelCredentials: the trust bundle or client certificate cannot be loaded: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  _isSecure(): boolean {
    return true;
  }

  _equals(other: ChannelCredentials): boolean {
    return other === this;
  }

  _createSecureConnector(
    _target: Parameters<ChannelCredentials['_createSecureConnector']>[0],
    _options: Parameters<ChannelCredentials['_createSecureConnector']>[1],
    callCredentials: CallCredentials = CallCredentials.createEmpty(),
  ): SecureConnector {
    const name = this.#name;
    const context = this.#context;
    return {
      connect: (socket: Socket) =>
        new Promise((resolve, reject) => {
          const tlsSocket = connect(
            {
              socket,
              secureContext: context,
              ALPNProtocols: ['h2'],
              ...(isIP(name) ? {} : { servername: name }),
              // Node would check against `servername || host`; with no SNI for an IP, check `name` explicitly.
              checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert),
            },
            () => {
              tlsSocket.off('error', reject);
              if (!tlsSocket.authorized) {
                tlsSocket.destroy();
                reject(tlsSocket.authorizationError);
                return;
              }
              resolve({ socket: tlsSocket, secure: true });
            },
          );
          tlsSocket.once('error', reject);
        }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => callCredentials,
      destroy: () => {},
    };
  }
}

/** The host part of a `host:port`, `[v6]:port` or `scheme:///host:port` gRPC target. */
export function targetHost(address: string): string {
  const authority = address.slice(address.lastIndexOf('/') + 1);
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end > 0 ? authority.slice(1, end) : authority;
  }
  const colon = authority.lastIndexOf(':');
  // More than one colon without brackets: a bare IPv6 address.
  return colon > 0 && authority.indexOf(':') === colon ? authority.slice(0, colon) : authority;
}
