import { EventEmitter } from 'node:events';
import { type AddressInfo, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import type { SpiffeId } from '@ambient-ts/identity';
import { type HboneAuthority, parseAuthority } from './authority.js';
import {
  HBONE_CONNECT_TIMEOUT_MS,
  HBONE_CONNECTION_WINDOW,
  HBONE_DRAIN_TIMEOUT_MS,
  HBONE_MAX_FRAME_SIZE,
  HBONE_MAX_HEADER_LIST_SIZE,
  HBONE_PING_INTERVAL_MS,
  HBONE_PING_TIMEOUT_MS,
  HBONE_PORT,
  HBONE_SERVER_MAX_STREAMS,
  HBONE_STREAM_WINDOW,
  TCP_KEEPALIVE_DELAY_MS,
} from './constants.js';
import { inspectCredentials, type ServerCredentialsProvider, type TlsCredentials } from './credentials.js';
import { HboneError } from './errors.js';
import { createH2Connection } from './h2/index.js';
import { H2_ERROR, type H2Connection, type H2HeaderList, type H2Stream } from './h2/types.js';
import { checkTrustDomain, peerIdentity } from './peer-identity.js';
import { type HboneHandler, HboneRejection, IncomingRequest } from './server-request.js';
import { splice } from './splice.js';
import { defaultTimers, type Timers } from './timers.js';
import { tlsFailure, tlsFailureForCode } from './tls-errors.js';

export interface HboneServerOptions {
  /** The server's certificate, or a provider called per connection with the local address it arrived on
   * (clients send no SNI; ztunnel serves each local workload with its own certificate). */
  credentials: TlsCredentials | ServerCredentialsProvider;
  /** Decides each tunnel: see {@link HboneHandler}. */
  handler: HboneHandler;
  /**
   * Where a connection was really sent, when something in front of the server rewrote its destination (an
   * iptables REDIRECT in transparent capture makes every connection arrive on the node's own address). Called
   * once per accepted socket, before TLS, e.g. to read `SO_ORIGINAL_DST`; its answer is reported as
   * `destinationAddress`/`destinationPort` of the connection and its requests. Without it, or when it returns
   * undefined or throws, those are the socket's local address.
   */
  originalDestination?: (socket: Socket) => { address: string; port: number } | undefined;
  /** Graceful close(): open tunnels get this long before they are reset (default 5 s). */
  drainTimeoutMs?: number;
  /** The handler must produce the upstream within this long, else 503 (default 10 s). */
  upstreamTimeoutMs?: number;
  /** TLS handshake deadline (default 10 s). */
  handshakeTimeoutMs?: number;
  /** HTTP/2 PING interval and timeout (defaults 10 s and 20 s). */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised (default 200). */
  maxConcurrentStreams?: number;
  /** Injectable timers, for tests. */
  timers?: Timers;
}

/** An accepted, verified HBONE connection. */
export interface HboneConnectionInfo {
  readonly peerIdentity: SpiffeId;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** The address the client dialled: the original destination (see `originalDestination`), else the local one. */
  readonly destinationAddress: string;
  readonly destinationPort: number;
}

/** A tunnel, as reported to event listeners. */
export interface HboneTunnelInfo {
  readonly peerIdentity: SpiffeId;
  readonly authority: HboneAuthority;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

export interface HboneTunnelStats {
  /** Bytes from the HBONE client to the upstream. */
  bytesIn: number;
  /** Bytes from the upstream to the HBONE client. */
  bytesOut: number;
  durationMs: number;
  error?: Error;
}

/** Events, for logs and metrics. None is 'error': a misbehaving peer never throws at the embedder. */
export interface HboneServerEvents {
  /** A client passed TLS and identity checks. */
  connection: [info: HboneConnectionInfo];
  /** An HBONE connection ended (`error` set when it failed: ping timeout, protocol error, reset). */
  connectionClose: [info: HboneConnectionInfo, error: Error | undefined];
  /** A TLS handshake or peer check failed; `err.code` says which (ERR_HBONE_TLS, _ALPN, _PEER_IDENTITY…). */
  tlsError: [err: HboneError, remote: { address: string; port: number }];
  /** 200 was sent; bytes flow. */
  tunnelOpen: [info: HboneTunnelInfo];
  /** A tunnel that had been opened ended. */
  tunnelClose: [info: HboneTunnelInfo, stats: HboneTunnelStats];
  /** A request was answered with a non-200 status. */
  tunnelReject: [info: { peerIdentity: SpiffeId; authority: string }, status: number, reason: string];
}

type State = 'new' | 'listening' | 'draining' | 'closed';

/**
 * HBONE server: mutual TLS 1.3 (ALPN h2) on a TCP listener, an HTTP/2 connection per client, one
 * tunnel per CONNECT stream, handed to the embedder's handler.
 */
export class HboneServer extends EventEmitter<HboneServerEvents> {
  readonly #handler: HboneHandler;
  readonly #timers: Timers;
  readonly #drainTimeoutMs: number;
  readonly #upstreamTimeoutMs: number;
  readonly #handshakeTimeoutMs: number;
  readonly #pingIntervalMs: number;
  readonly #pingTimeoutMs: number;
  readonly #maxStreams: number;
  readonly #net: NetServer;
  readonly #tlsServers = new WeakMap<TlsCredentials, TlsServer>();
  /** Sockets still in their TLS handshake, by 4-tuple (the TLSSocket built on one reports the same tuple). */
  readonly #handshaking = new Map<string, Socket>();
  readonly #originalDestination: HboneServerOptions['originalDestination'];
  /** Original destinations of handshaking sockets, by 4-tuple, when they differ from the local address. */
  readonly #destinations = new Map<string, { address: string; port: number }>();
  readonly #connections = new Set<H2Connection>();
  #credentials: TlsCredentials | ServerCredentialsProvider;
  #state: State = 'new';
  #closing: Promise<void> | undefined;

  constructor(options: HboneServerOptions) {
    super();
    if (!options || typeof options.handler !== 'function') {
      throw new HboneError(
        'ERR_HBONE_INVALID_OPTION',
        'HboneServer: options.handler is required (request) => Duplex | rejection',
      );
    }
    this.#credentials = checkCredentialsOption(options.credentials);
    this.#handler = options.handler;
    if (options.originalDestination !== undefined && typeof options.originalDestination !== 'function') {
      throw new HboneError(
        'ERR_HBONE_INVALID_OPTION',
        'HboneServer: options.originalDestination must be a function (socket) => { address, port } | undefined',
      );
    }
    this.#originalDestination = options.originalDestination;
    this.#timers = options.timers ?? defaultTimers;
    this.#drainTimeoutMs = ms(options.drainTimeoutMs, HBONE_DRAIN_TIMEOUT_MS, 'drainTimeoutMs');
    this.#upstreamTimeoutMs = ms(options.upstreamTimeoutMs, HBONE_CONNECT_TIMEOUT_MS, 'upstreamTimeoutMs');
    this.#handshakeTimeoutMs = ms(options.handshakeTimeoutMs, 10_000, 'handshakeTimeoutMs');
    this.#pingIntervalMs = ms(options.pingIntervalMs, HBONE_PING_INTERVAL_MS, 'pingIntervalMs', true);
    this.#pingTimeoutMs = ms(options.pingTimeoutMs, HBONE_PING_TIMEOUT_MS, 'pingTimeoutMs');
    this.#maxStreams = ms(options.maxConcurrentStreams, HBONE_SERVER_MAX_STREAMS, 'maxConcurrentStreams');
    // pauseOnConnect: nothing is read before the TLS layer (chosen per connection) takes the socket over.
    this.#net = createNetServer({ pauseOnConnect: true, allowHalfOpen: false }, (raw) => this.#onRaw(raw));
    if (typeof this.#credentials !== 'function') inspectCredentials(this.#credentials);
  }

  /** Starts listening (default port 15008 on every address). Resolves with the bound address. */
  listen(port: number = HBONE_PORT, host?: string): Promise<AddressInfo> {
    if (this.#state !== 'new') {
      return Promise.reject(
        new HboneError('ERR_HBONE_CLOSED', 'HboneServer.listen() can be called once, before close()'),
      );
    }
    this.#state = 'listening';
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        this.#state = 'closed';
        reject(
          new HboneError('ERR_HBONE_INVALID_OPTION', `cannot listen on ${host ?? '*'}:${port}: ${err.message}`, {
            cause: err,
          }),
        );
      };
      this.#net.once('error', onError);
      this.#net.listen({ port, ...(host ? { host } : {}) }, () => {
        this.#net.off('error', onError);
        // Accept errors (EMFILE…) must not crash the process; the listener keeps running.
        this.#net.on('error', () => {});
        resolve(this.#net.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo | null {
    return this.#net.address() as AddressInfo | null;
  }

  /** Replaces the credentials for new connections (certificate rotation); open tunnels are untouched. */
  setCredentials(credentials: TlsCredentials | ServerCredentialsProvider): void {
    const c = checkCredentialsOption(credentials);
    if (typeof c !== 'function') inspectCredentials(c);
    this.#credentials = c;
  }

  /** Open HBONE connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * Graceful drain: stop accepting, send GOAWAY on every connection, let open tunnels finish, and reset
   * those still open after `drainTimeoutMs`. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#state = 'draining';
    this.#closing = (async () => {
      const listenerClosed = new Promise<void>((resolve) => {
        if (!this.#net.listening) resolve();
        else this.#net.close(() => resolve());
      });
      // Handshakes in progress are not tunnels yet: drop them.
      for (const raw of this.#handshaking.values()) raw.destroy();
      const deadline = this.#timers.setTimeout(() => this.destroy(), this.#drainTimeoutMs + 1000);
      await Promise.allSettled([...this.#connections].map((c) => c.close()));
      this.#timers.clearTimeout(deadline);
      await listenerClosed;
      this.#state = 'closed';
    })();
    return this.#closing;
  }

  /** Immediate: every connection and tunnel is torn down. Idempotent. */
  destroy(err?: Error): void {
    this.#state = 'closed';
    if (this.#net.listening) this.#net.close();
    for (const raw of this.#handshaking.values()) raw.destroy();
    for (const c of this.#connections) c.destroy(err);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #onRaw(raw: Socket): void {
    if (this.#state !== 'listening') {
      raw.destroy();
      return;
    }
    const tuple = fourTuple(raw);
    this.#handshaking.set(tuple, raw);
    raw.once('close', () => {
      if (this.#handshaking.get(tuple) === raw) {
        this.#handshaking.delete(tuple);
        this.#destinations.delete(tuple);
      }
    });
    raw.on('error', () => {});
    raw.setNoDelay(true);
    raw.setKeepAlive(true, TCP_KEEPALIVE_DELAY_MS);
    const local = { address: raw.localAddress ?? '', port: raw.localPort ?? 0 };
    const remote = { address: raw.remoteAddress ?? '', port: raw.remotePort ?? 0 };
    const destination = this.#lookupOriginalDestination(raw);
    if (destination) this.#destinations.set(tuple, destination);
    const creds = this.#credentials;
    const start = (c: TlsCredentials): void => {
      if (raw.destroyed || this.#state !== 'listening') {
        raw.destroy();
        return;
      }
      let tls: TlsServer;
      try {
        tls = this.#tlsServerFor(c);
      } catch (err) {
        raw.destroy();
        this.emit('tlsError', asHboneError(err), remote);
        return;
      }
      tls.emit('connection', raw);
    };
    if (typeof creds !== 'function') {
      start(creds);
      return;
    }
    let provided: TlsCredentials | Promise<TlsCredentials>;
    try {
      provided = creds(local, raw);
    } catch (err) {
      raw.destroy();
      this.emit('tlsError', providerError(err, local), remote);
      return;
    }
    if (isPromise(provided)) {
      provided.then(start, (err: unknown) => {
        raw.destroy();
        this.emit('tlsError', providerError(err, local), remote);
      });
    } else {
      start(provided);
    }
  }

  #tlsServerFor(creds: TlsCredentials): TlsServer {
    const hit = this.#tlsServers.get(creds);
    if (hit) return hit;
    const info = inspectCredentials(creds);
    // One never-listening tls.Server per credentials object holds their SecureContext; raw sockets are
    // handed to it with emit('connection') (documented for tls.Server). Verification of the client
    // certificate is done by OpenSSL; we read its verdict ourselves (rejectUnauthorized: false) to report
    // precisely why a client was refused.
    const tls = createTlsServer({
      ...info.tlsOptions,
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
      handshakeTimeout: this.#handshakeTimeoutMs,
    });
    tls.on('secureConnection', (socket) => this.#onSecure(socket, info.identity));
    tls.on('tlsClientError', (err, socket) => {
      this.emit('tlsError', tlsFailure(err, 'server'), {
        address: socket.remoteAddress ?? '',
        port: socket.remotePort ?? 0,
      });
    });
    this.#tlsServers.set(creds, tls);
    return tls;
  }

  /** The embedder's originalDestination for a raw socket; a lookup that fails counts as no redirect. */
  #lookupOriginalDestination(raw: Socket): { address: string; port: number } | undefined {
    if (!this.#originalDestination) return undefined;
    try {
      const d = this.#originalDestination(raw);
      return d && typeof d.address === 'string' && d.address !== '' && Number.isInteger(d.port)
        ? { address: d.address, port: d.port }
        : undefined;
    } catch {
      return undefined;
    }
  }

  #onSecure(socket: TLSSocket, own: SpiffeId): void {
    const tuple = fourTuple(socket);
    this.#handshaking.delete(tuple);
    const destination = this.#destinations.get(tuple);
    this.#destinations.delete(tuple);
    socket.on('error', () => {});
    const remote = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const refuse = (err: HboneError): void => {
      socket.destroy();
      this.emit('tlsError', err, remote);
    };
    if (this.#state !== 'listening') {
      socket.destroy();
      return;
    }
    if (socket.alpnProtocol !== 'h2') {
      refuse(
        new HboneError(
          'ERR_HBONE_ALPN',
          `client did not negotiate ALPN "h2" (got ${JSON.stringify(socket.alpnProtocol)})`,
        ),
      );
      return;
    }
    const cert = socket.getPeerX509Certificate();
    if (!cert) {
      refuse(tlsFailureForCode('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', 'server'));
      return;
    }
    if (!socket.authorized) {
      refuse(tlsFailureForCode(String(socket.authorizationError ?? ''), 'server'));
      return;
    }
    let identity: SpiffeId;
    try {
      identity = peerIdentity(cert, 'client');
      checkTrustDomain(identity, own.trustDomain);
    } catch (err) {
      refuse(asHboneError(err));
      return;
    }
    const info: HboneConnectionInfo = {
      peerIdentity: identity,
      remoteAddress: remote.address,
      remotePort: remote.port,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      destinationAddress: destination?.address ?? socket.localAddress ?? '',
      destinationPort: destination?.port ?? socket.localPort ?? 0,
    };
    const conn = createH2Connection({
      role: 'server',
      socket,
      settings: {
        enablePush: false,
        maxConcurrentStreams: this.#maxStreams,
        initialWindowSize: HBONE_STREAM_WINDOW,
        maxFrameSize: HBONE_MAX_FRAME_SIZE,
        maxHeaderListSize: HBONE_MAX_HEADER_LIST_SIZE,
      },
      connectionWindowSize: HBONE_CONNECTION_WINDOW,
      pingIntervalMs: this.#pingIntervalMs,
      pingTimeoutMs: this.#pingTimeoutMs,
      drainTimeoutMs: this.#drainTimeoutMs,
      timers: this.#timers,
    });
    this.#connections.add(conn);
    let connError: Error | undefined;
    conn.on('error', (err) => {
      connError ??= err;
    });
    conn.on('close', () => {
      this.#connections.delete(conn);
      this.emit('connectionClose', info, connError);
    });
    conn.on('stream', (stream, headers) => this.#onStream(info, stream, headers));
    this.emit('connection', info);
  }

  #onStream(conn: HboneConnectionInfo, stream: H2Stream, headers: H2HeaderList): void {
    // A module-level listener: a closure made here would keep this whole request context alive with the tunnel.
    stream.on('error', noop);
    let method: string | undefined;
    let authorityText: string | undefined;
    let hasPathOrScheme = false;
    let baggageText: string | undefined;
    let forwardedText: string | undefined;
    let traceparentText: string | undefined;
    for (const [name, value] of headers) {
      switch (name) {
        case ':method':
          method = value;
          break;
        case ':authority':
          authorityText = value;
          break;
        case ':path':
        case ':scheme':
        case ':protocol':
          hasPathOrScheme = true;
          break;
        case 'baggage':
          baggageText = baggageText === undefined ? value : `${baggageText},${value}`;
          break;
        case 'forwarded':
          forwardedText = forwardedText === undefined ? value : `${forwardedText},${value}`;
          break;
        case 'traceparent':
          traceparentText = value;
          break;
      }
    }
    const rejectInfo = { peerIdentity: conn.peerIdentity, authority: authorityText ?? '' };
    const refuse = (status: number, reason: string): void => {
      answer(stream, status);
      this.emit('tunnelReject', rejectInfo, status, reason);
    };
    if (method !== 'CONNECT') {
      refuse(400, `method ${JSON.stringify(method ?? '')} is not CONNECT`);
      return;
    }
    if (hasPathOrScheme) {
      refuse(400, 'CONNECT with :path/:scheme/:protocol (extended CONNECT) is not HBONE');
      return;
    }
    let authority: HboneAuthority;
    try {
      authority = parseAuthority(authorityText ?? '');
    } catch (err) {
      refuse(400, (err as Error).message);
      return;
    }

    const request = new IncomingRequest(authority, conn, headers, {
      ...(baggageText === undefined ? {} : { baggage: baggageText }),
      ...(forwardedText === undefined ? {} : { forwarded: forwardedText }),
      ...(traceparentText === undefined ? {} : { traceparent: traceparentText }),
    });
    // Exactly one of: the handler's outcome, the upstream deadline, the client cancelling, decides.
    let decided = false;
    const settle = (): boolean => {
      if (decided) return false;
      decided = true;
      this.#timers.clearTimeout(deadline);
      stream.off('close', onStreamClose);
      return true;
    };
    const onStreamClose = (): void => {
      if (!settle()) return;
      const reason = 'the client cancelled the tunnel before it was answered';
      request.abort(new HboneError('ERR_H2_STREAM_RESET', reason));
      this.emit('tunnelReject', rejectInfo, 0, reason);
    };
    stream.once('close', onStreamClose);
    const deadline = this.#timers.setTimeout(() => {
      if (!settle()) return;
      const reason = `upstream not connected within ${this.#upstreamTimeoutMs} ms`;
      request.abort(new HboneError('ERR_HBONE_TIMEOUT', reason));
      refuse(503, reason);
    }, this.#upstreamTimeoutMs);

    const tunnel: HboneTunnelInfo = {
      peerIdentity: conn.peerIdentity,
      authority,
      remoteAddress: conn.remoteAddress,
      remotePort: conn.remotePort,
    };

    const decide = (outcome: Duplex | HboneRejection | undefined, error?: unknown): void => {
      if (!settle()) {
        // Too late (deadline passed or client gone): release what the handler made.
        if (isDuplex(outcome)) outcome.destroy();
        return;
      }
      const rejection =
        outcome instanceof HboneRejection ? outcome : error instanceof HboneRejection ? error : undefined;
      if (rejection) {
        refuse(rejection.status, rejection.reason);
        return;
      }
      if (!isDuplex(outcome)) {
        const reason = error === undefined ? 'handler returned neither a Duplex nor a rejection' : errorMessage(error);
        refuse(503, `upstream failed: ${reason}`);
        return;
      }
      this.#open(stream, outcome, tunnel);
    };
    let result: ReturnType<HboneHandler>;
    try {
      result = this.#handler(request);
    } catch (err) {
      decide(undefined, err);
      return;
    }
    if (isPromise(result))
      result.then(
        (v) => decide(v),
        (err: unknown) => decide(undefined, err),
      );
    else decide(result);
  }

  /** 200, then bytes flow until both directions end. Kept apart so an open tunnel holds only what it needs. */
  #open(stream: H2Stream, upstream: Duplex, tunnel: HboneTunnelInfo): void {
    stream.respond(200);
    this.emit('tunnelOpen', tunnel);
    const started = Date.now();
    splice(stream, upstream, { abortA: resetConnectError }).then((r) => {
      const stats: HboneTunnelStats = { bytesIn: r.aToB, bytesOut: r.bToA, durationMs: Date.now() - started };
      if (r.error) stats.error = r.error;
      this.emit('tunnelClose', tunnel, stats);
    });
  }
}

function noop(): void {}

/** RFC 9113 §8.5: a reset or failed TCP connection is signalled with RST_STREAM CONNECT_ERROR. */
function resetConnectError(stream: Duplex): void {
  (stream as H2Stream).reset(H2_ERROR.CONNECT_ERROR);
}

/** Non-200 answer: HEADERS with END_STREAM, then RST_STREAM(NO_ERROR) so the client stops sending. */
function answer(stream: H2Stream, status: number): void {
  if (stream.destroyed) return;
  stream.respond(status, [], { endStream: true });
  stream.reset(H2_ERROR.NO_ERROR);
}

function fourTuple(s: Socket): string {
  return `${s.remoteAddress}:${s.remotePort}>${s.localAddress}:${s.localPort}`;
}

function isDuplex(v: unknown): v is Duplex {
  return !!v && typeof (v as Duplex).pipe === 'function' && typeof (v as Duplex).write === 'function';
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return !!v && typeof (v as Promise<T>).then === 'function';
}

function errorMessage(err: unknown): string {
  // Not `instanceof Error`: errors may come from another realm (vm contexts, worker transfers).
  const m = (err as { message?: unknown } | undefined)?.message;
  return typeof m === 'string' ? m : String(err);
}

function asHboneError(err: unknown): HboneError {
  if (err instanceof HboneError) return err;
  return new HboneError('ERR_HBONE_TLS', errorMessage(err), { cause: err });
}

function providerError(err: unknown, local: { address: string; port: number }): HboneError {
  if (err instanceof HboneError) return err;
  return new HboneError(
    'ERR_HBONE_INVALID_OPTION',
    `credentials provider failed for local address ${local.address}:${local.port}: ${errorMessage(err)}`,
    { cause: err },
  );
}

function checkCredentialsOption(
  c: TlsCredentials | ServerCredentialsProvider,
): TlsCredentials | ServerCredentialsProvider {
  if (typeof c === 'function' || (c && typeof c === 'object')) return c;
  throw new HboneError(
    'ERR_HBONE_INVALID_OPTION',
    'HboneServer: options.credentials is required ({ key, certChain, trustBundle } or a function of the local address)',
  );
}

function ms(v: number | undefined, dflt: number, name: string, zeroOk = false): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (v === 0 && !zeroOk)) {
    throw new HboneError('ERR_HBONE_INVALID_OPTION', `HboneServer: ${name} must be a positive number`);
  }
  return v;
}
