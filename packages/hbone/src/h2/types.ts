/**
 * Contract of the internal HTTP/2 engine (src/h2/) that the HBONE client and server build on.
 *
 * Why our own engine instead of node:http2: measured on the reference machine, Node's http2 tuned as far
 * as it goes reached ~0.7x a stunnel pair in tunnel throughput; a purpose-built framing layer over Node's
 * TLS reached ~0.9x (write batching until the end of the poll phase, 1 MiB frames). The engine is still a
 * standard HTTP/2 implementation (RFC 9113 + RFC 7541 HPACK incl. Huffman and the dynamic table, flow
 * control, SETTINGS, PING, GOAWAY, RST_STREAM) so it interoperates with any HTTP/2 peer; it is simply
 * specialised for long-lived, mostly-bulk CONNECT streams.
 *
 * This file is internal: not exported from the package index.
 */
import type { Duplex } from 'node:stream';

/** Header list as sent/received, in order; names are lowercase; pseudo-headers (":method", …) first. */
export type H2HeaderList = Array<[name: string, value: string]>;

/** SETTINGS values (RFC 9113 §6.5.2). */
export interface H2Settings {
  headerTableSize: number; // 0x1, default 4096
  enablePush: boolean; // 0x2, we always advertise false
  maxConcurrentStreams: number; // 0x3, default unlimited (use 2**31-1)
  initialWindowSize: number; // 0x4, default 65535, stream-level receive window
  maxFrameSize: number; // 0x5, default 16384, 16384..16777215
  maxHeaderListSize: number; // 0x6, default unlimited
  enableConnectProtocol?: boolean; // 0x8 (RFC 8441), not needed for classic CONNECT
}

export interface H2ConnectionOptions {
  role: 'client' | 'server';
  /** A connected byte stream, normally a TLSSocket that negotiated ALPN "h2". */
  socket: Duplex;
  /** Local settings advertised to the peer (merged with defaults). */
  settings?: Partial<H2Settings>;
  /** Local connection-level receive window; a WINDOW_UPDATE on stream 0 raises it from 65535 at start. */
  connectionWindowSize?: number;
  /** Send a PING after this long (ms) without a PING round trip; 0 disables. */
  pingIntervalMs?: number;
  /** Destroy the connection (ERR_H2_PING_TIMEOUT) when a PING is not acknowledged within this (ms). */
  pingTimeoutMs?: number;
  /** Deadline (ms) for graceful close(): open streams still open then are reset. */
  drainTimeoutMs?: number;
  /** Writable high-water mark of each stream (default 256 KiB): how much a writer may queue before write()
   * returns false, on top of what the peer's flow-control window lets through. */
  streamWritableHighWaterMark?: number;
  /** Injectable clock/timers for tests; defaults to global setTimeout/clearTimeout (always unref'd). */
  timers?: {
    setTimeout: (fn: () => void, ms: number) => unknown;
    clearTimeout: (handle: unknown) => void;
  };
}

/**
 * One HTTP/2 connection, client or server role.
 * Events:
 *  - 'stream' (server role): (stream: H2Stream, headers: H2HeaderList) for each new request HEADERS.
 *  - 'remoteSettings': (settings: H2Settings) when the peer's SETTINGS arrive (first one = connection ready).
 *  - 'goaway': (errorCode: number, lastStreamId: number, debug: Buffer) when the peer sends GOAWAY.
 *  - 'error': (err: HboneError) fatal connection error (protocol violation, ping timeout, socket error);
 *    emitted only while a listener is attached, so nothing a peer sends can crash the process.
 *  - 'close': () once, after the socket is gone and every stream was ended or destroyed.
 */
export interface H2Connection {
  readonly role: 'client' | 'server';
  readonly socket: Duplex;
  /** Streams open now (not yet fully closed). */
  readonly activeStreams: number;
  /** Peer's SETTINGS_MAX_CONCURRENT_STREAMS (Infinity until known). */
  readonly remoteMaxConcurrentStreams: number;
  /** True after GOAWAY was sent or received, or close()/destroy() was called: no new streams. */
  readonly draining: boolean;
  readonly closed: boolean;
  /** Resolves once the peer's first SETTINGS arrived (rejects if the connection dies first). */
  ready(): Promise<void>;
  /**
   * Client role: open a stream by sending HEADERS (without END_STREAM) with `headers`
   * (e.g. [[':method','CONNECT'],[':authority','10.0.0.1:8080'],['baggage','…']]).
   * Throws ERR_H2_REFUSED if draining or at the peer's concurrency limit.
   */
  request(headers: H2HeaderList): H2Stream;
  /** Round-trip a PING; resolves with the RTT in ms. */
  ping(signal?: AbortSignal): Promise<number>;
  /** Graceful: send GOAWAY(NO_ERROR, last processed stream), take no new streams, let open ones finish,
   * reset any still open after drainTimeoutMs, then close the socket. Idempotent. */
  close(): Promise<void>;
  /** Immediate: GOAWAY with the given code if possible, destroy every stream and the socket. Idempotent. */
  destroy(err?: Error, h2Code?: number): void;
  on(event: 'stream', fn: (stream: H2Stream, headers: H2HeaderList) => void): this;
  on(event: 'remoteSettings', fn: (settings: H2Settings) => void): this;
  on(event: 'goaway', fn: (errorCode: number, lastStreamId: number, debug: Buffer) => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
  on(event: 'close', fn: () => void): this;
  once(event: string, fn: (...args: never[]) => void): this;
  off(event: string, fn: (...args: never[]) => void): this;
}

/**
 * One HTTP/2 stream as a Node Duplex:
 *  - write(): DATA frames, honouring the peer's stream and connection windows; write() returns false /
 *    the callback is delayed while the window is exhausted (backpressure, never unbounded buffering).
 *  - end(): DATA with END_STREAM (TCP half-close carried faithfully; the other direction stays open).
 *  - readable side: DATA payloads; push(null) on END_STREAM from the peer. WINDOW_UPDATEs are sent as the
 *    consumer reads (not as frames arrive), so a slow reader stops the sender within the window.
 *  - destroy(err): RST_STREAM (CANCEL, or INTERNAL_ERROR with an error) unless already closed.
 * Events: 'response' (client): (status: number, headers: H2HeaderList) on the response HEADERS;
 *         'trailers': (headers) on trailing HEADERS; plus the usual Duplex events.
 * A peer RST_STREAM destroys the stream with HboneError ERR_H2_STREAM_RESET (h2Code set), except
 * NO_ERROR after both sides ended, which is a normal close.
 */
export interface H2Stream extends Duplex {
  readonly id: number;
  readonly connection: H2Connection;
  /** Server role: the request headers. Client role: the headers that were sent. */
  readonly requestHeaders: H2HeaderList;
  /** Server role: send response HEADERS (`:status` first, then extra headers). `endStream` ends our side. */
  respond(status: number, headers?: H2HeaderList, options?: { endStream?: boolean }): void;
  /** Reset the stream with an RFC 9113 error code (default CANCEL = 0x8). */
  reset(h2Code?: number): void;
}

/** RFC 9113 §7 error codes. */
export const H2_ERROR = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;
