import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { formatAuthority } from './authority.js';
import { buildBaggage, type HboneBaggage } from './baggage.js';
import {
  HBONE_CLIENT_MAX_STREAMS,
  HBONE_CONNECT_TIMEOUT_MS,
  HBONE_CONNECTION_WINDOW,
  HBONE_MAX_FRAME_SIZE,
  HBONE_MAX_HEADER_LIST_SIZE,
  HBONE_PING_INTERVAL_MS,
  HBONE_PING_TIMEOUT_MS,
  HBONE_POOL_IDLE_TIMEOUT_MS,
  HBONE_PORT,
  HBONE_STREAM_WINDOW,
  TCP_KEEPALIVE_DELAY_MS,
} from './constants.js';
import { type ClientCredentialsProvider, secureContextFor, type TlsCredentials } from './credentials.js';
import { HboneError } from './errors.js';
import { buildForwarded, type ForwardedNode } from './forwarded.js';
import { createH2Connection } from './h2/index.js';
import { H2_ERROR, type H2Connection, type H2HeaderList, type H2Stream } from './h2/types.js';
import { checkServerIdentity } from './peer-identity.js';
import { ConnectionPool, poolKey } from './pool.js';
import { defaultTimers, type Timers } from './timers.js';
import { tlsFailure } from './tls-errors.js';
import { newTraceparent } from './traceparent.js';

export interface HboneClientOptions {
  /** This side's certificate, or a provider called per new connection with the tunnel's source identity. */
  credentials: TlsCredentials | ClientCredentialsProvider;
  /** Streams per pooled connection before another is opened (default 100, as ztunnel). */
  maxStreamsPerConnection?: number;
  /** Pooled connections without streams are closed after this long (default 5 min). */
  idleTimeoutMs?: number;
  /** Deadline for TCP + TLS + HTTP/2 SETTINGS of a new connection (default 10 s). */
  connectTimeoutMs?: number;
  /** Deadline for the server's answer to CONNECT (default 15 s: it may itself wait 10 s for its upstream). */
  responseTimeoutMs?: number;
  /** HTTP/2 PING interval and timeout (defaults 10 s and 20 s). */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** Injectable timers, for tests. */
  timers?: Timers;
}

/** Where a tunnel goes: the destination workload's IP and port (it becomes `:authority`). */
export interface HboneTarget {
  address: string;
  port: number;
}

export interface HboneConnectOptions {
  /** SPIFFE IDs the server may present; its first URI SAN must be one of them. */
  expectedIdentities: readonly string[] | string;
  /** The HBONE server to tunnel through (default: the target's address, port 15008). */
  server?: { address: string; port?: number };
  /** The identity the tunnel is opened for; passed to the credentials provider and part of the pool key. */
  sourceIdentity?: string;
  /** Local IP to connect from; part of the pool key. */
  sourceAddress?: string;
  /** The `baggage` header: workload facts, or a ready-made value. */
  baggage?: HboneBaggage | string;
  /** The `forwarded` header: the original client address (and service host), or a ready-made value. */
  forwarded?: { for: ForwardedNode; host?: string } | string;
  /** The `traceparent` header (default: a random one per tunnel, as ztunnel). */
  traceparent?: string;
  /** Extra request headers (lowercase names). */
  headers?: Readonly<Record<string, string>>;
  signal?: AbortSignal;
}

const MAX_ATTEMPTS = 3;

/**
 * Opens HBONE tunnels: each `connect()` is an HTTP/2 CONNECT stream over a pooled mutual-TLS 1.3
 * connection to the HBONE server, resolving to a Duplex once the server answered 200.
 */
export class HboneClient {
  readonly #provider: ClientCredentialsProvider;
  readonly #pool: ConnectionPool;
  readonly #timers: Timers;
  readonly #connectTimeoutMs: number;
  readonly #responseTimeoutMs: number;
  readonly #pingIntervalMs: number;
  readonly #pingTimeoutMs: number;
  readonly #sockets = new Set<TLSSocket>();
  #closed = false;

  constructor(options: HboneClientOptions) {
    if (!options || (typeof options.credentials !== 'function' && typeof options.credentials !== 'object')) {
      throw new HboneError(
        'ERR_HBONE_INVALID_OPTION',
        'HboneClient: options.credentials is required ({ key, certChain, trustBundle } or a provider function)',
      );
    }
    const creds = options.credentials;
    this.#provider = typeof creds === 'function' ? creds : () => creds;
    this.#timers = options.timers ?? defaultTimers;
    this.#connectTimeoutMs = positive(options.connectTimeoutMs, HBONE_CONNECT_TIMEOUT_MS, 'connectTimeoutMs');
    this.#responseTimeoutMs = positive(options.responseTimeoutMs, 15_000, 'responseTimeoutMs');
    this.#pingIntervalMs = positive(options.pingIntervalMs, HBONE_PING_INTERVAL_MS, 'pingIntervalMs', true);
    this.#pingTimeoutMs = positive(options.pingTimeoutMs, HBONE_PING_TIMEOUT_MS, 'pingTimeoutMs');
    this.#pool = new ConnectionPool({
      maxStreamsPerConnection: positive(
        options.maxStreamsPerConnection,
        HBONE_CLIENT_MAX_STREAMS,
        'maxStreamsPerConnection',
      ),
      idleTimeoutMs: positive(options.idleTimeoutMs, HBONE_POOL_IDLE_TIMEOUT_MS, 'idleTimeoutMs'),
      timers: this.#timers,
    });
  }

  /**
   * Opens a tunnel to `target` and resolves with it once the server answered 200 (its upstream is
   * connected). Rejects with ERR_HBONE_STATUS (`status` set) on another answer, ERR_HBONE_TLS /
   * ERR_HBONE_IDENTITY_MISMATCH / ERR_HBONE_ALPN when the server cannot be trusted, ERR_HBONE_CONNECT
   * or ERR_HBONE_TIMEOUT when it cannot be reached, or the signal's reason.
   */
  async connect(target: HboneTarget, options: HboneConnectOptions): Promise<Duplex> {
    if (this.#closed) throw new HboneError('ERR_HBONE_CLOSED', 'the HBONE client is closed: create a new one');
    const expected = normalizeIdentities(options?.expectedIdentities);
    const authority = formatAuthority(target?.address, target?.port);
    const serverAddress = options.server?.address ?? target.address;
    const serverPort = options.server?.port ?? HBONE_PORT;
    if (isIP(serverAddress) === 0) {
      throw new HboneError(
        'ERR_HBONE_INVALID_OPTION',
        `HBONE server address ${JSON.stringify(serverAddress)} must be an IP address`,
      );
    }
    const headers = requestHeaders(authority, options);
    const key = poolKey({
      sourceIdentity: options.sourceIdentity,
      destinationIdentities: [...expected],
      destination: formatAuthority(serverAddress, serverPort),
      sourceAddress: options.sourceAddress,
    });
    const connectOne = (): Promise<H2Connection> =>
      this.#connect(serverAddress, serverPort, expected, options.sourceIdentity, options.sourceAddress);

    for (let attempt = 1; ; attempt++) {
      const stream = await this.#pool.request(key, headers, connectOne, options.signal);
      try {
        await this.#awaitResponse(stream, options.signal);
        return stream;
      } catch (err) {
        if (!stream.destroyed) stream.destroy();
        // A stream the server never processed (GOAWAY raced our HEADERS, REFUSED_STREAM) is safe to retry.
        if (attempt < MAX_ATTEMPTS && isRefusal(err)) continue;
        throw err;
      }
    }
  }

  /** Pooled connections and streams now open. */
  stats(): { connections: number; streams: number } {
    return this.#pool.stats();
  }

  /** Graceful: no new tunnels; open tunnels finish, then the connections close. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#pool.close();
  }

  /** Immediate: every tunnel and connection is torn down. Idempotent. */
  destroy(err?: Error): void {
    this.#closed = true;
    this.#pool.destroy(err);
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #connect(
    host: string,
    port: number,
    expected: ReadonlySet<string>,
    sourceIdentity: string | undefined,
    sourceAddress: string | undefined,
  ): Promise<H2Connection> {
    const creds = await this.#provider(sourceIdentity);
    const secureContext = secureContextFor(creds);
    return new Promise<H2Connection>((resolve, reject) => {
      let settled = false;
      let conn: H2Connection | undefined;
      const socket = tlsConnect({
        host,
        port,
        ...(sourceAddress ? { localAddress: sourceAddress } : {}),
        secureContext,
        ALPNProtocols: ['h2'],
        // No SNI (as ztunnel): servername left unset. Identity is checked on the URI SAN instead of a host name.
        checkServerIdentity: (_host, cert) => checkServerIdentity(cert, expected),
      });
      this.#sockets.add(socket);
      socket.setNoDelay(true);
      socket.setKeepAlive(true, TCP_KEEPALIVE_DELAY_MS);
      const timer = this.#timers.setTimeout(() => {
        fail(
          new HboneError(
            'ERR_HBONE_TIMEOUT',
            `connecting to HBONE server ${host}:${port} took longer than ${this.#connectTimeoutMs} ms`,
          ),
        );
      }, this.#connectTimeoutMs);
      const fail = (err: HboneError): void => {
        if (settled) return;
        settled = true;
        this.#timers.clearTimeout(timer);
        if (conn) conn.destroy(err);
        socket.destroy();
        reject(err);
      };
      let tcpConnected = false;
      socket.once('connect', () => {
        tcpConnected = true;
      });
      // Until TLS is up, errors are ours to classify; afterwards the HTTP/2 engine reports them.
      const onHandshakeError = (err: Error): void => {
        if (tcpConnected) fail(tlsFailure(err, 'client'));
        else {
          fail(
            new HboneError('ERR_HBONE_CONNECT', `cannot connect to HBONE server ${host}:${port}: ${err.message}`, {
              cause: err,
            }),
          );
        }
      };
      socket.once('error', onHandshakeError);
      // A socket must never emit an unhandled 'error' (a misbehaving peer must not crash the process).
      socket.on('error', () => {});
      socket.once('close', () => this.#sockets.delete(socket));
      socket.once('secureConnect', () => {
        socket.off('error', onHandshakeError);
        if (settled) return;
        if (socket.alpnProtocol !== 'h2') {
          fail(
            new HboneError(
              'ERR_HBONE_ALPN',
              `HBONE server ${host}:${port} did not select ALPN "h2" (got ${JSON.stringify(socket.alpnProtocol)})`,
            ),
          );
          return;
        }
        conn = createH2Connection({
          role: 'client',
          socket,
          settings: {
            enablePush: false,
            initialWindowSize: HBONE_STREAM_WINDOW,
            maxFrameSize: HBONE_MAX_FRAME_SIZE,
            maxHeaderListSize: HBONE_MAX_HEADER_LIST_SIZE,
          },
          connectionWindowSize: HBONE_CONNECTION_WINDOW,
          pingIntervalMs: this.#pingIntervalMs,
          pingTimeoutMs: this.#pingTimeoutMs,
          timers: this.#timers,
        });
        // Connection errors reach the streams; the listener keeps them from becoming uncaught.
        conn.on('error', () => {});
        conn.ready().then(
          () => {
            if (settled) return;
            settled = true;
            this.#timers.clearTimeout(timer);
            resolve(conn!);
          },
          (err: unknown) => fail(closedBeforeSettings(err, host, port)),
        );
      });
    });
  }

  #awaitResponse(stream: H2Stream, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        this.#timers.clearTimeout(timer);
        stream.off('response', onResponse);
        stream.off('error', onError);
        stream.off('close', onClose);
        signal?.removeEventListener('abort', onAbort);
      };
      const onResponse = (status: number): void => {
        cleanup();
        if (status === 200) resolve();
        else {
          reject(
            new HboneError(
              'ERR_HBONE_STATUS',
              `HBONE server refused the tunnel with status ${status}${statusMeaning(status)}`,
              {
                status,
              },
            ),
          );
        }
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const onClose = (): void => {
        cleanup();
        reject(new HboneError('ERR_H2_CONNECTION_CLOSED', 'the tunnel closed before the server answered CONNECT'));
      };
      const onAbort = (): void => {
        cleanup();
        reject(signal!.reason);
      };
      const timer = this.#timers.setTimeout(() => {
        cleanup();
        reject(
          new HboneError(
            'ERR_HBONE_TIMEOUT',
            `the HBONE server did not answer CONNECT within ${this.#responseTimeoutMs} ms`,
          ),
        );
      }, this.#responseTimeoutMs);
      stream.on('response', onResponse);
      stream.on('error', onError);
      stream.on('close', onClose);
      signal?.addEventListener('abort', onAbort, { once: true });
      // Errors after the answer (resets, connection loss) are the tunnel user's to handle; until then ours.
    });
  }
}

function requestHeaders(authority: string, o: HboneConnectOptions): H2HeaderList {
  const h: H2HeaderList = [
    [':method', 'CONNECT'],
    [':authority', authority],
  ];
  if (o.baggage !== undefined) h.push(['baggage', typeof o.baggage === 'string' ? o.baggage : buildBaggage(o.baggage)]);
  if (o.forwarded !== undefined) {
    h.push(['forwarded', typeof o.forwarded === 'string' ? o.forwarded : buildForwarded(o.forwarded)]);
  }
  h.push(['traceparent', o.traceparent ?? newTraceparent()]);
  if (o.headers) {
    for (const [name, value] of Object.entries(o.headers)) {
      if (name.startsWith(':') || name !== name.toLowerCase() || typeof value !== 'string') {
        throw new HboneError(
          'ERR_HBONE_INVALID_OPTION',
          `extra header ${JSON.stringify(name)} must be a lowercase regular header with a string value`,
        );
      }
      h.push([name, value]);
    }
  }
  return h;
}

function normalizeIdentities(ids: readonly string[] | string | undefined): ReadonlySet<string> {
  const list = typeof ids === 'string' ? [ids] : ids;
  if (!list || list.length === 0 || !list.every((s) => typeof s === 'string' && s.startsWith('spiffe://'))) {
    throw new HboneError(
      'ERR_HBONE_INVALID_OPTION',
      'connect(): expectedIdentities must list the SPIFFE IDs the server may present (spiffe://<td>/ns/<ns>/sa/<sa>)',
    );
  }
  return new Set(list);
}

function isRefusal(err: unknown): boolean {
  const e = err as Partial<HboneError>;
  return e?.code === 'ERR_H2_REFUSED' || (e?.code === 'ERR_H2_STREAM_RESET' && e.h2Code === H2_ERROR.REFUSED_STREAM);
}

function closedBeforeSettings(err: unknown, host: string, port: number): HboneError {
  // A TLS alert after our Finished (e.g. "certificate required") surfaces here, wrapped by the engine.
  let e: unknown = err;
  for (let depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: string }).code;
    if (code?.startsWith('ERR_SSL')) return tlsFailure(e, 'client');
    e = (e as { cause?: unknown }).cause;
  }
  return new HboneError(
    'ERR_HBONE_TLS',
    `HBONE server ${host}:${port} closed the connection right after the TLS handshake, before HTTP/2 SETTINGS: ` +
      'it most likely rejected our client certificate (untrusted, expired or from another trust domain); see its logs',
    { cause: err },
  );
}

function statusMeaning(status: number): string {
  switch (status) {
    case 400:
      return ' (bad request: bad authority, or that address is not served there)';
    case 401:
      return ' (denied by policy)';
    case 503:
      return ' (no such workload, or its upstream connection failed)';
    default:
      return '';
  }
}

function positive(v: number | undefined, dflt: number, name: string, zeroOk = false): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (v === 0 && !zeroOk)) {
    throw new HboneError(
      'ERR_HBONE_INVALID_OPTION',
      `${name} must be a positive number of ${name.endsWith('Ms') ? 'milliseconds' : 'streams'}`,
    );
  }
  return v;
}
