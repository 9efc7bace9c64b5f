import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import { checkServerIdentity, connect, createSecureContext, type SecureContext } from 'node:tls';
import { CallCredentials, ChannelCredentials } from '@grpc/grpc-js';

type SecureConnector = ReturnType<ChannelCredentials['_createSecureConnector']>;

/**
 * TLS channel credentials for the CA connection. grpc-js's own `createSsl` always sends the target host as
 * SNI, and Node warns (DEP0123, once per process) when that is an IP address, which RFC 6066 forbids. This
 * does the same handshake — our roots, optional client certificate, ALPN h2, and the serving certificate
 * checked against `name` (DNS name or IP SAN) — but sends SNI only when `name` is a DNS name.
 *
 * Relies on grpc-js's `_createSecureConnector` contract (1.14); the package pins `^1.14`.
 */
export class CaChannelCredentials extends ChannelCredentials {
  readonly #context: SecureContext;
  readonly #name: string;

  /** `name`: what the CA's serving certificate must name (the address host, or the serverName override). */
  constructor(name: string, roots: Buffer, client?: { key: Buffer; certChain: Buffer }) {
    super();
    this.#name = name;
    this.#context = createSecureContext({
      ca: roots,
      ...(client ? { key: client.key, cert: client.certChain } : {}),
    });
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
