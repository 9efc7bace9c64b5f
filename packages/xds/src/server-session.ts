import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { XdsNode } from './discovery-messages.js';
import type { XdsLogger } from './logger.js';
import type { CacheEntry, ResourceCache } from './resource-cache.js';
import { TokenBucket } from './token-bucket.js';

/** What the server knows about a connected client; passed to the view hook. */
export interface XdsPeer {
  /** Server-assigned stream id, unique per server. */
  readonly id: number;
  readonly protocol: 'delta' | 'sotw';
  /** Transport address as grpc-js reports it (`ip:port`). */
  readonly address: string;
  /** Node from the first request that carried one. */
  readonly node: XdsNode | undefined;
  /** Whatever the authenticate hook returned (e.g. the SPIFFE identity or the token's subject). */
  readonly principal: unknown;
}

/** Per-type state of one client, for debugging (`XdsServer.clients()`). */
export interface XdsClientTypeState {
  typeUrl: string;
  wildcard: boolean;
  /** Explicitly subscribed names. */
  names: string[];
  /** system_version_info / version_info of the last ACKed response ('' before the first ACK). */
  ackedVersion: string;
  /** Nonce of the response awaiting ACK, or null. */
  pendingNonce: string | null;
  /** Cache seq the client's copy reflects once the pending response is applied. */
  sentSeq: number;
  nacks: number;
  lastNack: { nonce: string; message: string; at: Date } | null;
  /** Names tracked individually for this client (views, named subscriptions); 0 in wildcard fast mode. */
  trackedNames: number;
}

export interface XdsClientState extends XdsPeer {
  connectedAt: Date;
  requests: number;
  responses: number;
  bytesSent: number;
  types: XdsClientTypeState[];
}

export type ViewHook = (peer: XdsPeer, entry: CacheEntry) => boolean;
/** Whether the view hook filters `typeUrl` for `peer`; false keeps the shared wildcard fast path. */
export type ViewScope = (peer: XdsPeer, typeUrl: string) => boolean;

export interface SessionLimits {
  maxRequestBytes: number;
  maxTypesPerStream: number;
  maxNamesPerType: number;
  requestsPerSecond: number;
  requestBurst: number;
  sendTimeoutMs: number;
}

/** What a session needs from its server. */
export interface SessionHost {
  readonly cache: ResourceCache;
  readonly view: ViewHook | undefined;
  readonly viewApplies: ViewScope | undefined;
  readonly limits: SessionLimits;
  readonly logger: XdsLogger;
  readonly now: () => number;
  markDirty(session: Session): void;
  /** Reserves a push slot; false when the server is at its concurrent-push limit (the session is retried later). */
  acquirePush(session: Session): boolean;
  releasePush(): void;
  sharedBody(key: string, build: () => Buffer): Buffer;
  onNack(peer: XdsPeer, typeUrl: string, message: string): void;
  onAck(peer: XdsPeer, typeUrl: string, version: string): void;
  onClose(session: Session): void;
}

export interface TypeStateBase {
  typeUrl: string;
  wildcard: boolean;
  /** The view hook filters this type for this client (decided once, at the first subscription). */
  filtered: boolean;
  names: Set<string>;
  pendingNonce: string | null;
  pendingVersion: string;
  sentSeq: number;
  dirty: boolean;
  ackedVersion: string;
  nacks: number;
  lastNack: { nonce: string; message: string; at: Date } | null;
}

type Call = grpc.ServerDuplexStream<Buffer, Buffer>;

/** One ADS stream: authentication result, limits, the write path and per-type bookkeeping. */
export abstract class Session implements XdsPeer {
  abstract readonly protocol: 'delta' | 'sotw';
  readonly id: number;
  readonly address: string;
  node: XdsNode | undefined;
  principal: unknown;
  readonly connectedAt = new Date();
  requests = 0;
  responses = 0;
  bytesSent = 0;
  protected readonly host: SessionHost;
  readonly #call: Call;
  readonly #bucket: TokenBucket;
  #nonce = 0;
  #closed = false;

  constructor(id: number, call: Call, host: SessionHost) {
    this.id = id;
    this.#call = call;
    this.host = host;
    this.address = call.getPeer();
    this.#bucket = new TokenBucket(host.limits.requestsPerSecond, host.limits.requestBurst, host.now);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Wires the call's events; `principal` comes from the server's authenticate hook. */
  start(principal: unknown): void {
    this.principal = principal;
    this.#call.on('data', (buf: Buffer) => this.#onData(buf));
    this.#call.on('end', () => this.end());
    this.#call.on('error', () => this.#cleanup());
    this.#call.on('cancelled', () => this.#cleanup());
    this.#call.on('close', () => this.#cleanup());
  }

  #onData(buf: Buffer): void {
    if (this.#closed) return;
    this.requests++;
    if (buf.length > this.host.limits.maxRequestBytes) {
      this.fail(grpc.status.RESOURCE_EXHAUSTED, `request of ${buf.length} bytes exceeds the limit`);
      return;
    }
    if (!this.#bucket.take()) {
      this.fail(grpc.status.RESOURCE_EXHAUSTED, 'too many requests on this stream (request flood)');
      return;
    }
    try {
      this.handle(buf);
    } catch (err) {
      this.fail(grpc.status.INVALID_ARGUMENT, `undecodable or invalid request: ${(err as Error).message}`);
    }
  }

  /** Decodes and applies one request; throws on garbage. */
  protected abstract handle(buf: Buffer): void;
  /** Sends what is due for dirty types whose previous response was answered. */
  abstract flush(): void;
  /** Marks types touched by a cache commit. */
  abstract onCacheChange(changed: Map<string, string[]>): void;
  /** Forces a full re-evaluation of view decisions for every type. */
  abstract revalidateViews(): void;
  abstract typeStates(): XdsClientTypeState[];

  /** Whether the view hook filters `typeUrl` for this client. */
  protected viewFilters(typeUrl: string): boolean {
    const { view, viewApplies } = this.host;
    return view !== undefined && (viewApplies === undefined || viewApplies(this, typeUrl));
  }

  protected nextNonce(): string {
    this.#nonce++;
    return this.#nonce.toString(36);
  }

  protected checkTypeCount(count: number): boolean {
    if (count > this.host.limits.maxTypesPerStream) {
      this.fail(
        grpc.status.RESOURCE_EXHAUSTED,
        `more than ${this.host.limits.maxTypesPerStream} resource types on one stream`,
      );
      return false;
    }
    return true;
  }

  protected checkNameCount(count: number): boolean {
    if (count > this.host.limits.maxNamesPerType) {
      this.fail(
        grpc.status.RESOURCE_EXHAUSTED,
        `more than ${this.host.limits.maxNamesPerType} subscribed names for one type`,
      );
      return false;
    }
    return true;
  }

  protected recordAck(st: TypeStateBase, nonce: string, error: { message: string } | undefined): void {
    if (nonce === '' || nonce !== st.pendingNonce) return;
    st.pendingNonce = null;
    if (error) {
      st.nacks++;
      st.lastNack = { nonce, message: error.message, at: new Date() };
      this.host.logger.warn('xds: client rejected a response (NACK)', {
        client: this.id,
        node: this.node?.id,
        typeUrl: st.typeUrl,
        nonce,
        reason: error.message,
      });
      this.host.onNack(this, st.typeUrl, error.message);
    } else {
      st.ackedVersion = st.pendingVersion;
      this.host.onAck(this, st.typeUrl, st.ackedVersion);
    }
    if (st.dirty) this.host.markDirty(this);
  }

  /** Writes one response; the push slot is released once grpc-js has handed it to HTTP/2. */
  protected send(st: TypeStateBase, body: Buffer, nonceField: Buffer, nonce: string, version: string): void {
    const msg = nonceField.length === 0 ? body : Buffer.concat([body, nonceField]);
    st.pendingNonce = nonce;
    st.pendingVersion = version;
    this.responses++;
    this.bytesSent += msg.length;
    const timeout = this.host.limits.sendTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    if (timeout > 0) {
      timer = setTimeout(() => {
        this.fail(grpc.status.DEADLINE_EXCEEDED, `client did not read a response within ${timeout} ms`);
      }, timeout);
      timer.unref();
    }
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      if (timer) clearTimeout(timer);
      this.host.releasePush();
    };
    this.#pendingRelease.add(release);
    this.#call.write(msg, () => {
      this.#pendingRelease.delete(release);
      release();
    });
  }

  readonly #pendingRelease = new Set<() => void>();

  /** Ends the stream with a gRPC status (used for protocol violations and floods). */
  fail(code: grpc.status, details: string): void {
    if (this.#closed) return;
    this.host.logger.warn('xds: disconnecting client', { client: this.id, node: this.node?.id, code, details });
    this.#call.emit('error', { code, details, metadata: new grpc.Metadata() });
    this.#cleanup();
  }

  /** Graceful end (server shutdown or client half-close). */
  end(): void {
    if (this.#closed) return;
    this.#call.end();
    this.#cleanup();
  }

  #cleanup(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const release of this.#pendingRelease) release();
    this.#pendingRelease.clear();
    this.host.onClose(this);
  }

  snapshot(): XdsClientState {
    return {
      id: this.id,
      protocol: this.protocol,
      address: this.address,
      node: this.node,
      principal: this.principal,
      connectedAt: this.connectedAt,
      requests: this.requests,
      responses: this.responses,
      bytesSent: this.bytesSent,
      types: this.typeStates(),
    };
  }
}

export function newTypeState(typeUrl: string, filtered: boolean): TypeStateBase {
  return {
    typeUrl,
    wildcard: false,
    filtered,
    names: new Set(),
    pendingNonce: null,
    pendingVersion: '',
    sentSeq: 0,
    dirty: true,
    ackedVersion: '',
    nacks: 0,
    lastNack: null,
  };
}

export type { PeerCertificate };
