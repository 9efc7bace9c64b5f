import { EventEmitter } from 'node:events';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { ADS_SERVICE_DEFINITION } from './ads-service.js';
import { DeltaSession } from './delta-session.js';
import { XdsError } from './errors.js';
import { silentLogger, type XdsLogger } from './logger.js';
import type { CacheChange, CacheEntry, ResourceCache } from './resource-cache.js';
import type { Session, SessionHost, SessionLimits, XdsClientState, XdsPeer } from './server-session.js';
import { SotwSession } from './sotw-session.js';

/** What the authenticate hook sees of a new stream. */
export interface XdsAuthRequest {
  /** `ip:port` of the peer. */
  address: string;
  metadata: grpc.Metadata;
  /** The verified TLS client certificate, when the transport is TLS with client authentication. */
  certificate: PeerCertificate | undefined;
  /** The token from an `authorization: Bearer <token>` header, if any. Never log it. */
  bearerToken: string | undefined;
}

export interface XdsServerOptions {
  cache: ResourceCache;
  /**
   * Decides whether a stream may connect. Return a principal (anything: a SPIFFE ID, a token
   * subject) to accept; throw or return `undefined`/`false` to refuse with UNAUTHENTICATED.
   * Without a hook every stream is accepted (use TLS client authentication then).
   */
  authenticate?: (req: XdsAuthRequest) => unknown | Promise<unknown>;
  /** Per-client view: whether `peer` may see `entry`. Call `revalidateViews()` when its inputs change. */
  view?: (peer: XdsPeer, entry: CacheEntry) => boolean;
  /**
   * Which types `view` filters for which client, asked once when the client first subscribes to a type
   * (its node is known by then if its first request carries it). Return false and the client gets every
   * resource of that type on the shared wildcard fast path: responses encoded once for all such clients and
   * no per-client name tracking. Default: `view` filters every type of every client.
   */
  viewApplies?: (peer: XdsPeer, typeUrl: string) => boolean;
  /** Largest accepted request, in bytes (default 16 MiB: a reconnect lists every held version). */
  maxRequestBytes?: number;
  /** Largest response grpc-js will send (default 256 MiB). */
  maxResponseBytes?: number;
  /** Distinct type URLs one stream may subscribe to (default 32). */
  maxTypesPerStream?: number;
  /** Explicit or tracked names per type per stream (default 1,000,000). */
  maxNamesPerType?: number;
  /** Sustained requests per second per stream (default 100) and burst (default 1,000); beyond that the stream is closed. */
  requestsPerSecond?: number;
  requestBurst?: number;
  /** Responses written but not yet handed to HTTP/2, across all clients (default 100); more pushes wait their turn. */
  maxConcurrentPushes?: number;
  /** A client that leaves a response unread this long is disconnected (default 30 s; 0 disables). */
  sendTimeoutMs?: number;
  logger?: XdsLogger;
  /** Millisecond clock for rate limiting (default performance.now). */
  now?: () => number;
}

interface ServerEvents {
  connect: [XdsPeer];
  disconnect: [XdsPeer];
  nack: [{ peer: XdsPeer; typeUrl: string; message: string }];
  ack: [{ peer: XdsPeer; typeUrl: string; version: string }];
}

/**
 * An ADS server (both Delta and state-of-the-world on one gRPC service) that serves a
 * {@link ResourceCache}. A change is encoded once and the same bytes go to every client; a
 * client gets a new response for a type only after it answered (ACK or NACK) the previous one,
 * and changes in between coalesce into that next response.
 *
 * Events: `connect` (peer), `disconnect` (peer), `ack` ({ peer, typeUrl, version }),
 * `nack` ({ peer, typeUrl, message }).
 */
export class XdsServer extends EventEmitter<ServerEvents> implements SessionHost {
  readonly cache: ResourceCache;
  readonly view: ((peer: XdsPeer, entry: CacheEntry) => boolean) | undefined;
  readonly viewApplies: ((peer: XdsPeer, typeUrl: string) => boolean) | undefined;
  readonly limits: SessionLimits;
  readonly logger: XdsLogger;
  readonly now: () => number;
  readonly #authenticate: XdsServerOptions['authenticate'];
  readonly #maxResponseBytes: number;
  readonly #maxConcurrentPushes: number;
  readonly #sessions = new Set<Session>();
  readonly #dirty = new Set<Session>();
  readonly #waiting = new Set<Session>();
  #inflight = 0;
  #flushScheduled = false;
  #nextId = 0;
  #bodies = new Map<string, Buffer>();
  #bodiesSeq = -1;
  #grpcServer: grpc.Server | undefined;
  #closed = false;
  #nacks = 0;
  readonly #onChange = (change: CacheChange): void => {
    for (const s of this.#sessions) s.onCacheChange(change.changed);
  };

  constructor(options: XdsServerOptions) {
    super();
    this.cache = options.cache;
    this.view = options.view;
    this.viewApplies = options.viewApplies;
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? (() => performance.now());
    this.#authenticate = options.authenticate;
    this.#maxResponseBytes = options.maxResponseBytes ?? 256 * 1024 * 1024;
    this.#maxConcurrentPushes = options.maxConcurrentPushes ?? 100;
    this.limits = {
      maxRequestBytes: options.maxRequestBytes ?? 16 * 1024 * 1024,
      maxTypesPerStream: options.maxTypesPerStream ?? 32,
      maxNamesPerType: options.maxNamesPerType ?? 1_000_000,
      requestsPerSecond: options.requestsPerSecond ?? 100,
      requestBurst: options.requestBurst ?? 1000,
      sendTimeoutMs: options.sendTimeoutMs ?? 30_000,
    };
    for (const [k, v] of Object.entries(this.limits)) {
      if (!Number.isFinite(v) || v < 0)
        throw new XdsError('ERR_XDS_INVALID_OPTION', `${k} must be a number >= 0, got ${v}`);
    }
    this.cache.on('change', this.#onChange);
  }

  /** Adds the ADS service to an existing grpc-js server (e.g. one that also serves the CA). */
  attachTo(server: grpc.Server): void {
    server.addService(ADS_SERVICE_DEFINITION, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        this.#accept(call, 'sotw');
      },
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        this.#accept(call, 'delta');
      },
    });
  }

  /**
   * Starts a grpc-js server of its own on `address` (e.g. `127.0.0.1:0`) and resolves with the bound
   * port. Pass `grpc.ServerCredentials.createSsl(root, [keyCert], true)` to require client certificates.
   */
  async listen(
    address: string,
    credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
  ): Promise<number> {
    if (this.#closed) throw new XdsError('ERR_XDS_CLOSED', 'the xDS server was closed; create a new one');
    if (this.#grpcServer) throw new XdsError('ERR_XDS_INVALID_OPTION', 'listen() was already called');
    const server = new grpc.Server({
      'grpc.max_receive_message_length': this.limits.maxRequestBytes,
      'grpc.max_send_message_length': this.#maxResponseBytes,
    });
    this.attachTo(server);
    this.#grpcServer = server;
    return await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, credentials, (err, port) => {
        if (err)
          reject(new XdsError('ERR_XDS_INVALID_OPTION', `cannot listen on ${address}: ${err.message}`, { cause: err }));
        else resolve(port);
      });
    });
  }

  #accept(call: grpc.ServerDuplexStream<Buffer, Buffer>, protocol: 'delta' | 'sotw'): void {
    if (this.#closed) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'xDS server is shutting down' });
      return;
    }
    const id = ++this.#nextId;
    const session = protocol === 'delta' ? new DeltaSession(id, call, this) : new SotwSession(id, call, this);
    // Requests that arrive during authentication are held by the paused stream.
    call.pause();
    const auth = call.metadata.get('authorization')[0];
    const bearer = typeof auth === 'string' && /^Bearer\s+/i.test(auth) ? auth.replace(/^Bearer\s+/i, '') : undefined;
    const req: XdsAuthRequest = {
      address: call.getPeer(),
      metadata: call.metadata,
      certificate: call.getAuthContext().sslPeerCertificate,
      bearerToken: bearer,
    };
    const refuse = (reason: string): void => {
      this.logger.warn('xds: refused a client', { address: req.address, reason });
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: `not authenticated: ${reason}` });
    };
    const accept = (principal: unknown): void => {
      if (this.#closed) {
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'xDS server is shutting down' });
        return;
      }
      this.#sessions.add(session);
      session.start(principal);
      call.resume();
      this.emit('connect', session);
    };
    if (this.#authenticate === undefined) {
      accept(undefined);
      return;
    }
    Promise.resolve()
      .then(() => this.#authenticate?.(req))
      .then(
        (principal) => {
          if (principal === undefined || principal === false || principal === null)
            refuse('rejected by the authenticate hook');
          else accept(principal);
        },
        (err: unknown) => refuse(err instanceof Error ? err.message : String(err)),
      );
  }

  // SessionHost ---------------------------------------------------------------

  markDirty(session: Session): void {
    this.#dirty.add(session);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // One flush per event-loop turn: a burst of commits becomes one response per client.
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    for (const s of dirty) if (!s.closed) s.flush();
  }

  acquirePush(session: Session): boolean {
    if (this.#inflight >= this.#maxConcurrentPushes) {
      this.#waiting.add(session);
      return false;
    }
    this.#inflight++;
    return true;
  }

  releasePush(): void {
    this.#inflight--;
    if (this.#waiting.size > 0 && this.#inflight < this.#maxConcurrentPushes) {
      const next = this.#waiting.values().next().value as Session;
      this.#waiting.delete(next);
      if (!next.closed) this.markDirty(next);
    }
  }

  sharedBody(key: string, build: () => Buffer): Buffer {
    if (this.#bodiesSeq !== this.cache.seq) {
      this.#bodies = new Map();
      this.#bodiesSeq = this.cache.seq;
    }
    let body = this.#bodies.get(key);
    if (body === undefined) {
      body = build();
      this.#bodies.set(key, body);
    }
    return body;
  }

  onNack(peer: XdsPeer, typeUrl: string, message: string): void {
    this.#nacks++;
    this.emit('nack', { peer, typeUrl, message });
  }

  onAck(peer: XdsPeer, typeUrl: string, version: string): void {
    if (this.listenerCount('ack') > 0) this.emit('ack', { peer, typeUrl, version });
  }

  onClose(session: Session): void {
    if (!this.#sessions.delete(session)) return;
    this.#dirty.delete(session);
    this.#waiting.delete(session);
    this.emit('disconnect', session);
  }

  // Public inspection and lifecycle ---------------------------------------------

  /** Connected clients and their per-type protocol state (acked versions, pending nonce, last NACK). */
  clients(): XdsClientState[] {
    return [...this.#sessions].map((s) => s.snapshot());
  }

  /** Counters: connected streams and NACKs received since start. */
  stats(): { connected: number; nacks: number } {
    return { connected: this.#sessions.size, nacks: this.#nacks };
  }

  /** Re-runs the view hook for every client and type (call when what a node may see changed). */
  revalidateViews(): void {
    for (const s of this.#sessions) s.revalidateViews();
  }

  /** Stops accepting streams, ends open ones gracefully (clients reconnect elsewhere) and shuts down. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.cache.off('change', this.#onChange);
    for (const s of [...this.#sessions]) s.end();
    const server = this.#grpcServer;
    if (server) {
      await new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
      });
    }
  }

  /** Drops every stream and the listener at once. Idempotent. */
  destroy(err?: Error): void {
    if (!this.#closed) {
      this.#closed = true;
      this.cache.off('change', this.#onChange);
    }
    for (const s of [...this.#sessions]) s.fail(grpc.status.UNAVAILABLE, err?.message ?? 'xDS server destroyed');
    this.#grpcServer?.forceShutdown();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
