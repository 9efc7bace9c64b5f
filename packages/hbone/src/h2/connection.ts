/**
 * One HTTP/2 connection (RFC 9113), client or server role, over a connected byte stream.
 *
 * Hot path, by design: socket chunks go through FrameReader, DATA pieces are pushed to the stream as views;
 * outgoing frames accumulate in a FrameWriter and reach the socket in one corked write per event-loop turn
 * (setImmediate runs after the poll phase, so every read of that phase is answered by one write), or earlier
 * once OUTPUT_HIGH bytes wait. No closures or promises per frame.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { HboneError } from '../errors.js';
import {
  CLIENT_PREFACE,
  DEFAULT_WINDOW,
  Flag,
  FrameType,
  MAX_SEND_FRAME_SIZE,
  MAX_STREAM_ID,
  MAX_WINDOW,
  MIN_MAX_FRAME_SIZE,
} from './constants.js';
import { FrameReader, type FrameSink } from './frame-reader.js';
import { FrameWriter } from './frame-writer.js';
import { validateHeaders } from './header-rules.js';
import { HpackDecoder } from './hpack-decoder.js';
import { HpackEncoder } from './hpack-encoder.js';
import { decodeSettings, encodeSettings, localSettings, protocolDefaults } from './settings.js';
import { H2StreamImpl, streamResetError } from './stream.js';
import {
  H2_ERROR,
  type H2Connection,
  type H2ConnectionOptions,
  type H2HeaderList,
  type H2Settings,
  type H2Stream,
} from './types.js';

/** Flush synchronously once this much output waits, instead of at the end of the event-loop turn. */
const OUTPUT_HIGH = 1024 * 1024;
const SMALL_WRITE_COALESCE = 16 * 1024;
/**
 * Received DATA pieces at least this large are held and handed to the stream once per event-loop turn (or
 * once HOLD_MAX bytes wait), merged into one chunk. TLS delivers at most one 16 KiB record per read callback,
 * so a bulk transfer would otherwise cost one push, one 'data' event and one upstream write per record; small
 * pieces (interactive traffic) pass straight through so round trips are not delayed.
 */
const HOLD_MIN = 8 * 1024;
const HOLD_MAX = 256 * 1024;
/** A peer that does not read while provoking control frames (PING, SETTINGS) is cut off past this backlog. */
const SOCKET_BACKLOG_LIMIT = 32 * 1024 * 1024;
/** How many reset stream ids we remember, to ignore frames the peer sent before it saw our RST_STREAM. */
const RECENT_RESETS = 128;
/** Outstanding ping() calls allowed at once. */
const MAX_PENDING_PINGS = 64;
/** Grace for a GOAWAY to leave before the socket of a destroyed connection is torn down. */
const DESTROY_GRACE_MS = 1000;
const KEEPALIVE_PING_HIGH = 0x6b61; // 'ka': marks our keepalive pings apart from ping() calls

const defaultTimers = {
  setTimeout(fn: () => void, ms: number): unknown {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout(handle: unknown): void {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

interface PendingPing {
  start: number;
  resolve: (rtt: number) => void;
  reject: (err: Error) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

function protocolError(h2Code: number, message: string): HboneError {
  return new HboneError('ERR_H2_PROTOCOL', `HTTP/2 protocol error by the peer (${message}); the connection is closed`, {
    h2Code,
  });
}

export class H2ConnectionImpl extends EventEmitter implements H2Connection, FrameSink {
  readonly role: 'client' | 'server';
  readonly socket: Duplex;
  draining = false;
  closed = false;

  readonly local: H2Settings;
  remote: H2Settings = protocolDefaults();

  private readonly streams = new Map<number, H2StreamImpl>();
  private readonly reader: FrameReader;
  private readonly writer = new FrameWriter();
  private readonly encoder = new HpackEncoder();
  private readonly decoder: HpackDecoder;
  private readonly timers: NonNullable<H2ConnectionOptions['timers']>;
  private readonly pingIntervalMs: number;
  private readonly pingTimeoutMs: number;
  private readonly drainTimeoutMs: number;
  private readonly readableHighWaterMark: number;
  private readonly writableHighWaterMark: number;

  // --- stream ids
  private nextStreamId: number;
  /** Highest stream id the peer opened (server role). */
  private lastPeerStreamId = 0;
  private readonly recentResets = new Int32Array(RECENT_RESETS);
  private recentResetPos = 0;

  // --- flow control
  private sendWindow = DEFAULT_WINDOW;
  private maxSendFrame = MIN_MAX_FRAME_SIZE;
  private connRecvWindow = DEFAULT_WINDOW;
  private readonly connWindowTarget: number;
  private connCredit = 0;
  private parked: H2StreamImpl[] = [];

  // --- output
  private tickScheduled = false;
  /** Streams with received DATA held for delivery at the end of this event-loop turn. */
  private heldStreams: H2StreamImpl[] = [];
  private writerBytesTaken = 0;
  private socketBlocked = false;
  private socketGone = false;

  // --- incoming DATA frame in progress
  private dataTarget: H2StreamImpl | null = null;
  private dataEndStream = false;

  // --- header block in progress (HEADERS + CONTINUATION)
  private blockStream = 0;
  private blockEndStream = false;
  private blockChunks: Buffer[] = [];
  private blockSize = 0;
  /** A HEADERS frame whose priority names itself: its block is decoded, then the stream refused. */
  private selfDependent = 0;

  // --- lifecycle
  private remoteSettingsSeen = false;
  private settingsAcksPending = 0;
  private goawaySent = false;
  private goawayReceived = false;
  private closing = false;
  private destroyed = false;
  private closeEmitted = false;
  private fatalError: Error | null = null;
  private readyWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private closeWaiters: Array<() => void> = [];
  private drainTimer: unknown = null;
  private keepaliveTimer: unknown = null;
  private pingTimeoutTimer: unknown = null;
  private keepaliveOutstanding = false;
  private readonly pings = new Map<number, PendingPing>();
  private pingCounter = 0;

  private readonly tickBound = () => this.tick();
  private readonly onSocketData = (chunk: Buffer) => this.reader.push(chunk);
  private readonly onSocketDrain = () => this.drained();
  private readonly onSocketError = (err: Error) => this.socketFailed(err);
  private readonly onSocketClose = () => this.socketClosed();
  private readonly onSocketEnd = () => this.socketEnded();
  private readonly onKeepalive = () => this.sendKeepalive();
  private readonly onPingTimeout = () => this.pingTimedOut();
  private readonly onDrainTimeout = () => this.drainTimedOut();

  constructor(options: H2ConnectionOptions) {
    super();
    this.role = options.role;
    this.socket = options.socket;
    this.local = localSettings(options.settings);
    this.timers = options.timers ?? defaultTimers;
    this.pingIntervalMs = options.pingIntervalMs ?? 0;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 20_000;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 5_000;
    this.connWindowTarget = Math.max(
      DEFAULT_WINDOW,
      Math.min(options.connectionWindowSize ?? DEFAULT_WINDOW, MAX_WINDOW),
    );
    // The readable side may run ahead of the consumer by up to one window anyway (flow control bounds it);
    // the high-water mark only decides when _read asks for more, so keep it below half the window.
    this.readableHighWaterMark = Math.max(1024, Math.min(64 * 1024, this.local.initialWindowSize >>> 1));
    this.writableHighWaterMark = options.streamWritableHighWaterMark ?? 256 * 1024;
    this.nextStreamId = this.role === 'client' ? 1 : 2;
    // Until our SETTINGS are acknowledged the peer may still use the 4096-octet default table (§6.5.3).
    this.decoder = new HpackDecoder(Math.max(4096, this.local.headerTableSize), this.local.maxHeaderListSize);
    this.reader = new FrameReader(this, this.local.maxFrameSize, this.role === 'server');

    if (this.role === 'client') this.writer.payload(CLIENT_PREFACE);
    const settings = encodeSettings(this.local, this.role);
    this.writer.header(settings.length, FrameType.SETTINGS, 0, 0);
    this.writer.payload(settings);
    this.settingsAcksPending++;
    if (this.connWindowTarget > DEFAULT_WINDOW) {
      this.writer.frameU32(FrameType.WINDOW_UPDATE, 0, 0, this.connWindowTarget - DEFAULT_WINDOW);
      this.connRecvWindow = this.connWindowTarget;
    }

    const socket = this.socket;
    socket.on('data', this.onSocketData);
    socket.on('drain', this.onSocketDrain);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onSocketClose);
    socket.on('end', this.onSocketEnd);
    if (socket.destroyed) {
      this.socketGone = true;
      process.nextTick(this.onSocketClose);
    } else {
      this.flush();
      this.scheduleKeepalive();
    }
  }

  // ------------------------------------------------------------------ public API

  get activeStreams(): number {
    return this.streams.size;
  }

  get remoteMaxConcurrentStreams(): number {
    return this.remoteSettingsSeen ? this.remote.maxConcurrentStreams : Number.POSITIVE_INFINITY;
  }

  ready(): Promise<void> {
    if (this.remoteSettingsSeen) return Promise.resolve();
    if (this.closed) return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  request(headers: H2HeaderList): H2Stream {
    if (this.role !== 'client') {
      throw new HboneError('ERR_HBONE_INVALID_OPTION', 'request() is for the client role; a server answers streams');
    }
    if (this.draining || this.closed) {
      throw new HboneError('ERR_H2_REFUSED', 'HTTP/2 connection is draining or closed: open a new connection');
    }
    if (this.streams.size >= this.remoteMaxConcurrentStreams) {
      throw new HboneError(
        'ERR_H2_REFUSED',
        `HTTP/2 peer allows ${this.remote.maxConcurrentStreams} concurrent streams and all are in use: use another connection`,
      );
    }
    const id = this.nextStreamId;
    if (id > MAX_STREAM_ID) {
      this.draining = true;
      throw new HboneError('ERR_H2_REFUSED', 'HTTP/2 stream ids exhausted on this connection: open a new connection');
    }
    this.nextStreamId += 2;
    const block = this.encoder.encode(headers);
    const stream = this.createStream(id, headers);
    this.streams.set(id, stream);
    this.writeHeaderBlock(id, block, false);
    this.scheduleFlush();
    return stream;
  }

  ping(signal?: AbortSignal): Promise<number> {
    if (this.closed) return Promise.reject(this.closedError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.pings.size >= MAX_PENDING_PINGS) {
      return Promise.reject(new HboneError('ERR_H2_REFUSED', `more than ${MAX_PENDING_PINGS} pings outstanding`));
    }
    return new Promise<number>((resolve, reject) => {
      const key = ++this.pingCounter;
      const entry: PendingPing = { start: performance.now(), resolve, reject, signal, onAbort: undefined };
      if (signal) {
        entry.onAbort = () => {
          this.pings.delete(key);
          reject(signal.reason);
        };
        signal.addEventListener('abort', entry.onAbort, { once: true });
      }
      this.pings.set(key, entry);
      this.writePing(0, key, 0);
      this.scheduleFlush();
    });
  }

  close(): Promise<void> {
    const done = new Promise<void>((resolve) => {
      if (this.closeEmitted) resolve();
      else this.closeWaiters.push(resolve);
    });
    if (this.closing || this.destroyed) return done;
    this.closing = true;
    this.draining = true;
    this.closed = true;
    this.rejectReady(this.closedError());
    this.sendGoaway(H2_ERROR.NO_ERROR, 'graceful close');
    this.flush();
    if (this.drainTimeoutMs > 0 && this.streams.size > 0) {
      this.drainTimer = this.timers.setTimeout(this.onDrainTimeout, this.drainTimeoutMs);
      unrefHandle(this.drainTimer);
    }
    this.maybeFinishDrain();
    return done;
  }

  destroy(err?: Error, h2Code?: number): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closed = true;
    this.draining = true;
    this.reader.stop();
    this.clearTimers();
    if (err) this.fatalError = err;
    const code = h2Code ?? (err ? H2_ERROR.INTERNAL_ERROR : H2_ERROR.NO_ERROR);
    this.sendGoaway(code, err?.message ?? '');
    this.flush();
    this.failAll(err);
    if (err && this.listenerCount('error') > 0) this.emit('error', err);
    this.teardownSocket();
  }

  // The contract types listeners as (...args: never[]) so each event can narrow them; EventEmitter takes any.
  override once(event: string | symbol, fn: (...args: never[]) => void): this {
    return super.once(event, fn as (...args: unknown[]) => void);
  }

  override off(event: string | symbol, fn: (...args: never[]) => void): this {
    return super.off(event, fn as (...args: unknown[]) => void);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------------ stream callbacks (from H2StreamImpl)

  respond(stream: H2StreamImpl, status: number, headers: H2HeaderList, endStream: boolean): void {
    if (this.role !== 'server') {
      throw new HboneError('ERR_HBONE_INVALID_OPTION', 'respond() is for the server role');
    }
    if (stream.headersDone) throw new HboneError('ERR_HBONE_INVALID_OPTION', `stream ${stream.id} already responded`);
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw new HboneError('ERR_HBONE_INVALID_OPTION', `respond(): status ${status} is not a 3-digit HTTP status`);
    }
    if (stream.h2Closed || stream.destroyed) return;
    stream.headersDone = true;
    const block = this.encoder.encode([[':status', String(status)], ...headers]);
    this.writeHeaderBlock(stream.id, block, endStream);
    if (endStream) {
      stream.localEnded = true;
      this.maybeCloseStream(stream);
    }
    this.scheduleFlush();
  }

  streamWrite(stream: H2StreamImpl, list: Buffer[], bytes: number, cb: (err?: Error | null) => void): void {
    if (stream.discardWrites) {
      cb();
      return;
    }
    if (stream.localEnded || stream.h2Closed) {
      cb(new HboneError('ERR_HBONE_CLOSED', `HTTP/2 stream ${stream.id} already ended its side: write() after end`));
      return;
    }
    if (this.role === 'server' && !stream.headersDone) {
      cb(new HboneError('ERR_HBONE_INVALID_OPTION', `HTTP/2 stream ${stream.id}: call respond() before writing`));
      return;
    }
    stream.outList = list;
    stream.outIndex = 0;
    stream.outOffset = 0;
    stream.outBytes = bytes;
    stream.outCb = cb;
    this.pump(stream);
  }

  streamEnd(stream: H2StreamImpl, cb: (err?: Error | null) => void): void {
    if (stream.localEnded || stream.h2Closed) {
      cb();
      return;
    }
    if (this.role === 'server' && !stream.headersDone) {
      cb(new HboneError('ERR_HBONE_INVALID_OPTION', `HTTP/2 stream ${stream.id}: call respond() before end()`));
      return;
    }
    stream.localEnded = true;
    this.writer.header(0, FrameType.DATA, Flag.END_STREAM, stream.id);
    this.scheduleFlush();
    this.maybeCloseStream(stream);
    cb();
  }

  /** The consumer took data off the readable side: return it to the peer's windows (batched). */
  streamConsumed(stream: H2StreamImpl): void {
    const consumed = stream.inBytes - stream.readableLength - stream.inConsumed;
    if (consumed <= 0) return;
    stream.inConsumed += consumed;
    this.connCredit += consumed;
    if (!stream.h2Closed && !stream.remoteEnded) {
      stream.credit += consumed;
      this.maybeSendStreamUpdate(stream);
    }
    this.maybeSendConnUpdate();
  }

  streamDestroyed(stream: H2StreamImpl, err: Error | null): void {
    if (!stream.h2Closed) this.resetStream(stream, err ? H2_ERROR.INTERNAL_ERROR : H2_ERROR.CANCEL);
    // Data the consumer will never read still occupies the connection window: give it back.
    const unread = stream.inBytes - stream.inConsumed + stream.heldBytes;
    stream.held = null;
    stream.heldBytes = 0;
    if (unread > 0) {
      stream.inConsumed = stream.inBytes;
      this.connCredit += unread;
      this.maybeSendConnUpdate();
    }
    if (this.dataTarget === stream) this.dataTarget = null;
  }

  /** Sends RST_STREAM and forgets the stream (the caller destroys the Duplex if needed). */
  resetStream(stream: H2StreamImpl, h2Code: number): void {
    if (stream.h2Closed) return;
    this.writer.frameU32(FrameType.RST_STREAM, 0, stream.id, h2Code);
    this.rememberReset(stream.id);
    this.scheduleFlush();
    this.forgetStream(stream);
  }

  // ------------------------------------------------------------------ FrameSink (incoming)

  onDataStart(flags: number, streamId: number, length: number, padding: number): void {
    this.dataTarget = null;
    this.dataEndStream = (flags & Flag.END_STREAM) !== 0;
    if (!this.remoteSettingsSeen) {
      this.connectionError(H2_ERROR.PROTOCOL_ERROR, 'first frame is DATA, not SETTINGS');
      return;
    }
    if (this.blockStream !== 0) {
      this.connectionError(H2_ERROR.PROTOCOL_ERROR, 'DATA inside a header block');
      return;
    }
    if (streamId === 0) {
      this.connectionError(H2_ERROR.PROTOCOL_ERROR, 'DATA on stream 0');
      return;
    }
    if (length > this.connRecvWindow) {
      this.connectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'DATA beyond the connection flow-control window');
      return;
    }
    this.connRecvWindow -= length;
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      this.connCredit += padding; // the data bytes are credited as they arrive (onDataChunk)
      if (this.isIdle(streamId)) {
        this.connectionError(H2_ERROR.PROTOCOL_ERROR, `DATA on idle stream ${streamId}`);
        return;
      }
      if (!this.wasRecentlyReset(streamId)) this.sendReset(streamId, H2_ERROR.STREAM_CLOSED);
      this.maybeSendConnUpdate();
      return;
    }
    if (stream.remoteEnded || (this.role === 'client' && !stream.headersDone)) {
      this.connCredit += padding; // the data bytes are credited as they arrive (onDataChunk)
      if (stream.remoteEnded) this.streamError(stream, H2_ERROR.STREAM_CLOSED, 'DATA after END_STREAM');
      else this.streamError(stream, H2_ERROR.PROTOCOL_ERROR, 'DATA before the response HEADERS');
      this.maybeSendConnUpdate();
      return;
    }
    if (length > stream.recvWindow) {
      this.connCredit += padding; // the data bytes are credited as they arrive (onDataChunk)
      this.streamError(stream, H2_ERROR.FLOW_CONTROL_ERROR, 'DATA beyond the stream flow-control window');
      this.maybeSendConnUpdate();
      return;
    }
    stream.recvWindow -= length;
    if (padding > 0) {
      // Padding is never delivered, so it counts as consumed at once.
      stream.credit += padding;
      this.connCredit += padding;
    }
    this.dataTarget = stream;
  }

  onDataChunk(chunk: Buffer): void {
    const stream = this.dataTarget;
    if (stream === null || stream.destroyed) {
      this.connCredit += chunk.length;
      return;
    }
    if (stream.heldBytes === 0 && chunk.length < HOLD_MIN) {
      stream.inBytes += chunk.length;
      stream.push(chunk);
      return;
    }
    if (stream.held === null) {
      stream.held = [];
      this.heldStreams.push(stream);
      this.scheduleFlush();
    }
    stream.held.push(chunk);
    stream.heldBytes += chunk.length;
    if (stream.heldBytes >= HOLD_MAX) this.releaseHeld(stream);
  }

  /** Hands a stream's held DATA, if any, to its readable side as one chunk. */
  private releaseHeld(stream: H2StreamImpl): void {
    const held = stream.held;
    const bytes = stream.heldBytes;
    stream.held = null;
    stream.heldBytes = 0;
    if (held === null || stream.destroyed) return;
    stream.inBytes += bytes;
    stream.push(held.length === 1 ? held[0]! : Buffer.concat(held, bytes));
  }

  private releaseAllHeld(): void {
    const list = this.heldStreams;
    this.heldStreams = [];
    for (const stream of list) this.releaseHeld(stream);
  }

  onDataEnd(): void {
    const stream = this.dataTarget;
    this.dataTarget = null;
    if (stream !== null && !stream.destroyed) {
      if (this.dataEndStream) {
        stream.remoteEnded = true;
        this.releaseHeld(stream);
        stream.push(null);
        this.maybeCloseStream(stream);
      } else if (stream.credit > 0) {
        this.maybeSendStreamUpdate(stream);
      }
    }
    if (this.connCredit > 0) this.maybeSendConnUpdate();
  }

  onReadError(h2Code: number, message: string): void {
    this.connectionError(h2Code, message);
  }

  onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.blockStream !== 0 && (type !== FrameType.CONTINUATION || streamId !== this.blockStream)) {
      this.connectionError(
        H2_ERROR.PROTOCOL_ERROR,
        `frame type ${type} on stream ${streamId} while a header block on stream ${this.blockStream} awaits CONTINUATION`,
      );
      return;
    }
    if (!this.remoteSettingsSeen && type !== FrameType.SETTINGS) {
      this.connectionError(H2_ERROR.PROTOCOL_ERROR, `first frame is type ${type}, not SETTINGS`);
      return;
    }
    switch (type) {
      case FrameType.HEADERS:
        this.onHeaders(flags, streamId, payload);
        return;
      case FrameType.CONTINUATION:
        this.onContinuation(flags, streamId, payload);
        return;
      case FrameType.PRIORITY:
        this.onPriority(streamId, payload);
        return;
      case FrameType.RST_STREAM:
        this.onRstStream(streamId, payload);
        return;
      case FrameType.SETTINGS:
        this.onSettings(flags, streamId, payload);
        return;
      case FrameType.PUSH_PROMISE:
        this.connectionError(H2_ERROR.PROTOCOL_ERROR, 'PUSH_PROMISE although push is disabled');
        return;
      case FrameType.PING:
        this.onPing(flags, streamId, payload);
        return;
      case FrameType.GOAWAY:
        this.onGoaway(streamId, payload);
        return;
      case FrameType.WINDOW_UPDATE:
        this.onWindowUpdate(streamId, payload);
        return;
      default:
        return; // unknown frame types are ignored (§5.5)
    }
  }

  // ------------------------------------------------------------------ frame handlers

  private onHeaders(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) {
      this.connectionError(H2_ERROR.PROTOCOL_ERROR, 'HEADERS on stream 0');
      return;
    }
    let start = 0;
    let end = payload.length;
    if (flags & Flag.PADDED) {
      if (end < 1) {
        this.connectionError(H2_ERROR.FRAME_SIZE_ERROR, 'padded HEADERS without a pad length');
        return;
      }
      const pad = payload[0]!;
      start = 1;
      end -= pad;
      if (end < start) {
        this.connectionError(H2_ERROR.PROTOCOL_ERROR, 'HEADERS padding exceeds the frame');
        return;
      }
    }
    if (flags & Flag.PRIORITY) {
      if (end - start < 5) {
        this.connectionError(H2_ERROR.FRAME_SIZE_ERROR, 'HEADERS too short for its priority');
        return;
      }
      const dependency = payload.readUInt32BE(start) & 0x7fffffff;
      start += 5;
      // A stream depending on itself is refused, after its block is decoded to keep HPACK in sync.
      if (dependency === streamId) this.selfDependent = streamId;
    }
    this.beginBlock(streamId, flags, payload.subarray(start, end));
  }

  private beginBlock(streamId: number, flags: number, fragment: Buffer): void {
    this.blockEndStream = (flags & Flag.END_STREAM) !== 0;
    if (flags & Flag.END_HEADERS) {
      this.headerBlock(streamId, fragment);
      return;
    }
    this.blockStream = streamId;
    this.blockChunks = [fragment];
    this.blockSize = fragment.length;
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer): void {
    if (this.blockStream === 0 || streamId !== this.blockStream) {
      this.connectionError(H2_ERROR.PROTOCOL_ERROR, `CONTINUATION on stream ${streamId} without a header block`);
      return;
    }
    this.blockSize += payload.length;
    // HPACK cannot shrink a field list below ~1 octet per 32 octets of list size, so a block this big
    // already breaks our SETTINGS_MAX_HEADER_LIST_SIZE: refuse to buffer it (CONTINUATION flood).
    if (this.blockSize > this.local.maxHeaderListSize + 16384) {
      this.connectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'header block larger than our header list limit');
      return;
    }
    this.blockChunks.push(payload);
    if (flags & Flag.END_HEADERS) {
      const block = Buffer.concat(this.blockChunks, this.blockSize);
      this.blockStream = 0;
      this.blockChunks = [];
      this.blockSize = 0;
      this.headerBlock(streamId, block);
    }
  }

  private headerBlock(streamId: number, block: Buffer): void {
    const endStream = this.blockEndStream;
    const selfDependent = this.selfDependent === streamId;
    this.selfDependent = 0;
    let decoded: ReturnType<HpackDecoder['decode']>;
    try {
      decoded = this.decoder.decode(block);
    } catch (err) {
      const h2Code = err instanceof HboneError && err.h2Code !== undefined ? err.h2Code : H2_ERROR.COMPRESSION_ERROR;
      this.connectionError(h2Code, (err as Error).message);
      return;
    }
    if (this.isIdle(streamId)) {
      if (this.role === 'client' || streamId % 2 === 0) {
        this.connectionError(
          H2_ERROR.PROTOCOL_ERROR,
          `HEADERS opening stream ${streamId}, which the peer may not open`,
        );
        return;
      }
      this.openPeerStream(streamId, decoded.headers, decoded.oversized, endStream, selfDependent);
      return;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (this.wasRecentlyReset(streamId)) return;
      this.connectionError(H2_ERROR.STREAM_CLOSED, `HEADERS on closed stream ${streamId}`);
      return;
    }
    if (selfDependent) {
      this.streamError(stream, H2_ERROR.PROTOCOL_ERROR, 'stream depends on itself');
      return;
    }
    if (decoded.oversized) {
      this.streamError(stream, H2_ERROR.PROTOCOL_ERROR, 'header list too large');
      return;
    }
    if (stream.remoteEnded) {
      this.streamError(stream, H2_ERROR.STREAM_CLOSED, 'HEADERS after END_STREAM');
      return;
    }
    const headers = decoded.headers;
    if (this.role === 'client' && !stream.headersDone) {
      const problem = validateHeaders(headers, 'response');
      if (problem) {
        this.streamError(stream, H2_ERROR.PROTOCOL_ERROR, problem);
        return;
      }
      const status = Number(headers[0]![1]);
      if (status < 200) {
        if (endStream) {
          this.streamError(stream, H2_ERROR.PROTOCOL_ERROR, 'informational response ends the stream');
          return;
        }
        return; // 1xx: the final response follows
      }
      stream.headersDone = true;
      stream.emit('response', status, headers);
    } else {
      // Trailers: must end the stream and carry no pseudo-header fields (§8.1).
      this.releaseHeld(stream);
      if (!endStream) {
        this.streamError(stream, H2_ERROR.PROTOCOL_ERROR, 'second HEADERS without END_STREAM');
        return;
      }
      const problem = validateHeaders(headers, 'trailers');
      if (problem) {
        this.streamError(stream, H2_ERROR.PROTOCOL_ERROR, problem);
        return;
      }
      stream.emit('trailers', headers);
    }
    if (endStream && !stream.destroyed) {
      stream.remoteEnded = true;
      this.releaseHeld(stream);
      stream.push(null);
      this.maybeCloseStream(stream);
    }
  }

  private openPeerStream(
    streamId: number,
    headers: H2HeaderList,
    oversized: boolean,
    endStream: boolean,
    selfDependent: boolean,
  ): void {
    this.lastPeerStreamId = streamId;
    if (this.goawaySent || this.destroyed) {
      this.sendReset(streamId, H2_ERROR.REFUSED_STREAM);
      return;
    }
    if (selfDependent) {
      this.sendReset(streamId, H2_ERROR.PROTOCOL_ERROR);
      return;
    }
    if (oversized) {
      this.sendReset(streamId, H2_ERROR.PROTOCOL_ERROR);
      return;
    }
    if (this.streams.size >= this.local.maxConcurrentStreams || this.listenerCount('stream') === 0) {
      this.sendReset(streamId, H2_ERROR.REFUSED_STREAM);
      return;
    }
    const problem = validateHeaders(headers, 'request');
    if (problem) {
      this.sendReset(streamId, H2_ERROR.PROTOCOL_ERROR);
      return;
    }
    const stream = this.createStream(streamId, headers);
    this.streams.set(streamId, stream);
    if (endStream) {
      stream.remoteEnded = true;
      stream.push(null);
    }
    this.emit('stream', stream, headers);
  }

  private onPriority(streamId: number, payload: Buffer): void {
    if (streamId === 0) {
      this.connectionError(H2_ERROR.PROTOCOL_ERROR, 'PRIORITY on stream 0');
      return;
    }
    if (payload.length !== 5) {
      this.connectionError(H2_ERROR.FRAME_SIZE_ERROR, 'PRIORITY frame not 5 octets');
      return;
    }
    if ((payload.readUInt32BE(0) & 0x7fffffff) === streamId) {
      const stream = this.streams.get(streamId);
      if (stream) this.streamError(stream, H2_ERROR.PROTOCOL_ERROR, 'stream depends on itself');
      else this.sendReset(streamId, H2_ERROR.PROTOCOL_ERROR);
    }
    // Priorities are advisory and deprecated (RFC 9113 §5.3.2): ignored.
  }

  private onRstStream(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) {
      this.connectionError(H2_ERROR.FRAME_SIZE_ERROR, 'RST_STREAM not 4 octets');
      return;
    }
    if (streamId === 0) {
      this.connectionError(H2_ERROR.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
      return;
    }
    if (this.isIdle(streamId)) {
      this.connectionError(H2_ERROR.PROTOCOL_ERROR, `RST_STREAM on idle stream ${streamId}`);
      return;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    const code = payload.readUInt32BE(0);
    this.rememberReset(streamId);
    if (code === H2_ERROR.NO_ERROR && stream.remoteEnded) {
      // "Stop sending, the response is complete" (§8.1): what was received stays readable.
      stream.discardWrites = true;
      this.forgetStream(stream);
      this.finishWrite(stream);
      return;
    }
    this.forgetStream(stream);
    stream.destroy(streamResetError(streamId, code, true));
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) {
      this.connectionError(H2_ERROR.PROTOCOL_ERROR, 'SETTINGS on a stream');
      return;
    }
    if (flags & Flag.ACK) {
      if (payload.length !== 0) {
        this.connectionError(H2_ERROR.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
        return;
      }
      if (this.settingsAcksPending > 0 && --this.settingsAcksPending === 0) {
        this.decoder.maxTableSizeLimit = this.local.headerTableSize;
      }
      return;
    }
    if (payload.length % 6 !== 0) {
      this.connectionError(H2_ERROR.FRAME_SIZE_ERROR, 'SETTINGS length not a multiple of 6');
      return;
    }
    let next: H2Settings;
    try {
      next = decodeSettings(payload, this.remote, this.role);
    } catch (err) {
      this.connectionError((err as HboneError).h2Code ?? H2_ERROR.PROTOCOL_ERROR, (err as Error).message);
      return;
    }
    const delta = next.initialWindowSize - this.remote.initialWindowSize;
    if (delta !== 0) {
      for (const stream of this.streams.values()) {
        if (stream.sendWindow + delta > MAX_WINDOW) {
          this.connectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window');
          return;
        }
      }
      for (const stream of this.streams.values()) stream.sendWindow += delta;
    }
    this.remote = next;
    this.maxSendFrame = Math.min(next.maxFrameSize, MAX_SEND_FRAME_SIZE);
    this.encoder.setPeerTableSize(next.headerTableSize);
    this.writer.header(0, FrameType.SETTINGS, Flag.ACK, 0);
    this.scheduleFlush();
    const first = !this.remoteSettingsSeen;
    this.remoteSettingsSeen = true;
    if (first) {
      const waiters = this.readyWaiters;
      this.readyWaiters = [];
      for (const w of waiters) w.resolve();
    }
    this.emit('remoteSettings', next);
    if (delta > 0) for (const stream of this.streams.values()) if (stream.outBytes > 0) this.pump(stream);
  }

  private onPing(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) {
      this.connectionError(H2_ERROR.PROTOCOL_ERROR, 'PING on a stream');
      return;
    }
    if (payload.length !== 8) {
      this.connectionError(H2_ERROR.FRAME_SIZE_ERROR, 'PING not 8 octets');
      return;
    }
    if (!(flags & Flag.ACK)) {
      this.writer.header(8, FrameType.PING, Flag.ACK, 0);
      this.writer.payload(payload);
      this.scheduleFlush();
      return;
    }
    const high = payload.readUInt32BE(0);
    const low = payload.readUInt32BE(4);
    if (high === KEEPALIVE_PING_HIGH) {
      if (this.keepaliveOutstanding) {
        this.keepaliveOutstanding = false;
        this.clearTimer('pingTimeoutTimer');
        this.scheduleKeepalive();
      }
      return;
    }
    const entry = high === 0 ? this.pings.get(low) : undefined;
    if (entry === undefined) return;
    this.pings.delete(low);
    if (entry.signal && entry.onAbort) entry.signal.removeEventListener('abort', entry.onAbort);
    entry.resolve(performance.now() - entry.start);
  }

  private onGoaway(streamId: number, payload: Buffer): void {
    if (streamId !== 0) {
      this.connectionError(H2_ERROR.PROTOCOL_ERROR, 'GOAWAY on a stream');
      return;
    }
    if (payload.length < 8) {
      this.connectionError(H2_ERROR.FRAME_SIZE_ERROR, 'GOAWAY shorter than 8 octets');
      return;
    }
    const lastStreamId = payload.readUInt32BE(0) & 0x7fffffff;
    const code = payload.readUInt32BE(4);
    const debug = Buffer.from(payload.subarray(8));
    this.goawayReceived = true;
    this.draining = true;
    this.rejectReady(this.closedError());
    // Streams we opened above lastStreamId were never processed: safe to retry elsewhere.
    for (const stream of [...this.streams.values()]) {
      if (stream.id > lastStreamId && stream.id % 2 === this.nextStreamId % 2) {
        this.forgetStream(stream);
        stream.destroy(
          new HboneError(
            'ERR_H2_REFUSED',
            `HTTP/2 peer sent GOAWAY (code ${code}) before processing stream ${stream.id}: retry on a new connection`,
            { h2Code: code },
          ),
        );
      }
    }
    this.emit('goaway', code, lastStreamId, debug);
    this.maybeFinishDrain();
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) {
      this.connectionError(H2_ERROR.FRAME_SIZE_ERROR, 'WINDOW_UPDATE not 4 octets');
      return;
    }
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) {
        this.connectionError(H2_ERROR.PROTOCOL_ERROR, 'WINDOW_UPDATE with increment 0');
        return;
      }
      if (this.sendWindow + increment > MAX_WINDOW) {
        this.connectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'WINDOW_UPDATE overflows the connection window');
        return;
      }
      const wasBlocked = this.sendWindow <= 0;
      this.sendWindow += increment;
      if (wasBlocked || this.parked.length > 0) this.resumeParked();
      return;
    }
    if (this.isIdle(streamId)) {
      this.connectionError(H2_ERROR.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${streamId}`);
      return;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) return; // closed: ignore (§6.9)
    if (increment === 0) {
      this.streamError(stream, H2_ERROR.PROTOCOL_ERROR, 'WINDOW_UPDATE with increment 0');
      return;
    }
    if (stream.sendWindow + increment > MAX_WINDOW) {
      this.streamError(stream, H2_ERROR.FLOW_CONTROL_ERROR, 'WINDOW_UPDATE overflows the stream window');
      return;
    }
    stream.sendWindow += increment;
    if (stream.outBytes > 0 && !stream.parked) this.pump(stream);
  }

  // ------------------------------------------------------------------ sending

  /** Sends as much of the stream's pending write as the windows and the socket allow. */
  private pump(stream: H2StreamImpl): void {
    const writer = this.writer;
    while (stream.outBytes > 0) {
      if (this.socketBlocked || this.sendWindow <= 0) {
        this.park(stream);
        return;
      }
      if (stream.sendWindow <= 0) return; // a WINDOW_UPDATE for this stream resumes it
      let n = stream.outBytes;
      if (n > this.maxSendFrame) n = this.maxSendFrame;
      if (n > stream.sendWindow) n = stream.sendWindow;
      if (n > this.sendWindow) n = this.sendWindow;
      writer.header(n, FrameType.DATA, 0, stream.id);
      const list = stream.outList!;
      let left = n;
      while (left > 0) {
        const chunk = list[stream.outIndex]!;
        const avail = chunk.length - stream.outOffset;
        if (avail <= left) {
          writer.payload(stream.outOffset === 0 ? chunk : chunk.subarray(stream.outOffset));
          left -= avail;
          stream.outIndex++;
          stream.outOffset = 0;
        } else {
          writer.payload(chunk.subarray(stream.outOffset, stream.outOffset + left));
          stream.outOffset += left;
          left = 0;
        }
      }
      stream.outBytes -= n;
      stream.sendWindow -= n;
      this.sendWindow -= n;
      if (writer.bytes >= OUTPUT_HIGH) this.flush();
      else this.scheduleFlush();
    }
    this.finishWrite(stream);
  }

  private finishWrite(stream: H2StreamImpl): void {
    stream.outList = null;
    stream.outBytes = 0;
    const cb = stream.outCb;
    stream.outCb = null;
    if (cb !== null) cb();
  }

  private park(stream: H2StreamImpl): void {
    if (stream.parked) return;
    stream.parked = true;
    this.parked.push(stream);
  }

  private resumeParked(): void {
    // Swap the queue out: pump() may park streams again and callbacks may forget streams meanwhile.
    const list = this.parked;
    this.parked = [];
    let i = 0;
    for (; i < list.length; i++) {
      if (this.socketBlocked || this.sendWindow <= 0) break;
      const stream = list[i]!;
      if (!stream.parked) continue; // forgotten while waiting
      stream.parked = false;
      if (stream.outBytes > 0 && !stream.destroyed) this.pump(stream);
    }
    if (i < list.length)
      this.parked = list
        .slice(i)
        .filter((s) => s.parked)
        .concat(this.parked);
  }

  private drained(): void {
    if (!this.socketBlocked) return;
    this.socketBlocked = false;
    this.resumeParked();
  }

  private writeHeaderBlock(streamId: number, block: Buffer, endStream: boolean): void {
    const max = this.remote.maxFrameSize;
    let flags = endStream ? Flag.END_STREAM : 0;
    if (block.length <= max) {
      this.writer.header(block.length, FrameType.HEADERS, flags | Flag.END_HEADERS, streamId);
      this.writer.payload(block);
      return;
    }
    let type: number = FrameType.HEADERS;
    for (let off = 0; off < block.length; off += max) {
      const piece = block.subarray(off, off + max);
      if (off + max >= block.length) flags |= Flag.END_HEADERS;
      this.writer.header(piece.length, type, flags, streamId);
      this.writer.payload(piece);
      type = FrameType.CONTINUATION;
      flags = 0;
    }
  }

  private writePing(high: number, low: number, flags: number): void {
    this.writer.header(8, FrameType.PING, flags, 0);
    const b = Buffer.allocUnsafe(8);
    b.writeUInt32BE(high, 0);
    b.writeUInt32BE(low, 4);
    this.writer.payload(b);
  }

  private maybeSendStreamUpdate(stream: H2StreamImpl): void {
    const target = this.local.initialWindowSize;
    if (stream.credit >= target >>> 2 || (stream.credit > 0 && stream.recvWindow < target >>> 1)) {
      this.writer.frameU32(FrameType.WINDOW_UPDATE, 0, stream.id, stream.credit);
      stream.recvWindow += stream.credit;
      stream.credit = 0;
      this.scheduleFlush();
    }
  }

  private maybeSendConnUpdate(): void {
    const target = this.connWindowTarget;
    const credit = this.connCredit;
    if (credit >= target >>> 2 || (credit > 0 && this.connRecvWindow < target >>> 1)) {
      if (this.destroyed) return;
      this.writer.frameU32(FrameType.WINDOW_UPDATE, 0, 0, credit);
      this.connRecvWindow += credit;
      this.connCredit = 0;
      this.scheduleFlush();
    }
  }

  private sendReset(streamId: number, h2Code: number): void {
    this.writer.frameU32(FrameType.RST_STREAM, 0, streamId, h2Code);
    this.rememberReset(streamId);
    this.scheduleFlush();
  }

  private sendGoaway(h2Code: number, debug: string): void {
    if (this.goawaySent || this.socketGone) return;
    this.goawaySent = true;
    const debugBytes = Buffer.from(debug.slice(0, 256), 'utf8');
    this.writer.header(8 + debugBytes.length, FrameType.GOAWAY, 0, 0);
    const b = Buffer.allocUnsafe(8);
    b.writeUInt32BE(this.lastPeerStreamId, 0);
    b.writeUInt32BE(h2Code, 4);
    this.writer.payload(b);
    this.writer.payload(debugBytes);
  }

  private scheduleFlush(): void {
    if (this.tickScheduled) return;
    this.tickScheduled = true;
    setImmediate(this.tickBound);
  }

  /** End of an event-loop turn: deliver held DATA (its consumers may queue output), then write all output. */
  private tick(): void {
    this.tickScheduled = false;
    if (this.heldStreams.length > 0) this.releaseAllHeld();
    this.flush();
  }

  private flush(): void {
    if (this.writer.bytes === 0) return;
    this.writerBytesTaken = this.writer.bytes;
    const chunks = this.writer.take();
    const socket = this.socket;
    if (this.socketGone || socket.destroyed || !socket.writable) return;
    let ok = true;
    if (chunks.length === 1) {
      ok = socket.write(chunks[0]!);
    } else if (this.writerBytesTaken <= SMALL_WRITE_COALESCE) {
      // Small batches (a frame header plus a short payload, a WINDOW_UPDATE with DATA, …) go out as one buffer:
      // one TLS record and one send per batch instead of one per chunk; copying a few KiB is cheaper than that.
      ok = socket.write(Buffer.concat(chunks, this.writerBytesTaken));
    } else {
      socket.cork();
      for (const chunk of chunks) ok = socket.write(chunk);
      socket.uncork();
    }
    if (!ok) {
      this.socketBlocked = true;
      if (socket.writableLength > SOCKET_BACKLOG_LIMIT && !this.destroyed) {
        this.destroy(
          protocolError(H2_ERROR.ENHANCE_YOUR_CALM, 'peer does not read while provoking frames; connection dropped'),
          H2_ERROR.ENHANCE_YOUR_CALM,
        );
      }
    }
  }

  // ------------------------------------------------------------------ streams bookkeeping

  private createStream(id: number, headers: H2HeaderList): H2StreamImpl {
    return new H2StreamImpl(
      this,
      id,
      headers,
      this.remote.initialWindowSize,
      this.local.initialWindowSize,
      this.readableHighWaterMark,
      this.writableHighWaterMark,
    );
  }

  private maybeCloseStream(stream: H2StreamImpl): void {
    if (stream.localEnded && stream.remoteEnded) this.forgetStream(stream);
  }

  private forgetStream(stream: H2StreamImpl): void {
    if (stream.h2Closed) return;
    stream.h2Closed = true;
    this.streams.delete(stream.id);
    if (stream.parked) {
      stream.parked = false;
      const i = this.parked.indexOf(stream);
      if (i >= 0) this.parked.splice(i, 1);
    }
    this.maybeFinishDrain();
  }

  private streamError(stream: H2StreamImpl, h2Code: number, message: string): void {
    this.resetStream(stream, h2Code);
    stream.destroy(protocolError(h2Code, `stream ${stream.id}: ${message}`));
  }

  private isIdle(streamId: number): boolean {
    if (this.role === 'server') return streamId % 2 === 0 || streamId > this.lastPeerStreamId;
    return streamId % 2 === 0 || streamId >= this.nextStreamId;
  }

  private rememberReset(streamId: number): void {
    this.recentResets[this.recentResetPos] = streamId;
    this.recentResetPos = (this.recentResetPos + 1) % RECENT_RESETS;
  }

  private wasRecentlyReset(streamId: number): boolean {
    return this.recentResets.includes(streamId);
  }

  // ------------------------------------------------------------------ lifecycle

  private connectionError(h2Code: number, message: string): void {
    if (this.destroyed) return;
    this.destroy(protocolError(h2Code, message), h2Code);
  }

  private maybeFinishDrain(): void {
    if (this.destroyed || this.streams.size > 0) return;
    if (!this.closing && !this.goawayReceived) return;
    this.clearTimers();
    this.destroyed = true;
    this.closed = true;
    this.reader.stop();
    this.flush();
    this.failAll(undefined);
    this.teardownSocket();
  }

  private drainTimedOut(): void {
    this.drainTimer = null;
    for (const stream of [...this.streams.values()]) {
      this.resetStream(stream, H2_ERROR.CANCEL);
      stream.destroy(
        new HboneError(
          'ERR_H2_CONNECTION_CLOSED',
          `HTTP/2 connection closed: stream ${stream.id} did not finish in time`,
        ),
      );
    }
    this.maybeFinishDrain();
  }

  private scheduleKeepalive(): void {
    if (this.pingIntervalMs <= 0 || this.closed) return;
    this.clearTimer('keepaliveTimer');
    this.keepaliveTimer = this.timers.setTimeout(this.onKeepalive, this.pingIntervalMs);
    unrefHandle(this.keepaliveTimer);
  }

  private sendKeepalive(): void {
    this.keepaliveTimer = null;
    if (this.closed) return;
    this.keepaliveOutstanding = true;
    this.writePing(KEEPALIVE_PING_HIGH, 0, 0);
    this.flush();
    this.pingTimeoutTimer = this.timers.setTimeout(this.onPingTimeout, this.pingTimeoutMs);
    unrefHandle(this.pingTimeoutTimer);
  }

  private pingTimedOut(): void {
    this.pingTimeoutTimer = null;
    if (this.destroyed) return;
    this.destroy(
      new HboneError(
        'ERR_H2_PING_TIMEOUT',
        `HTTP/2 peer did not answer a PING within ${this.pingTimeoutMs} ms: connection considered dead`,
      ),
      H2_ERROR.NO_ERROR,
    );
  }

  private clearTimer(name: 'drainTimer' | 'keepaliveTimer' | 'pingTimeoutTimer'): void {
    const handle = this[name];
    if (handle !== null) {
      this.timers.clearTimeout(handle);
      this[name] = null;
    }
  }

  private clearTimers(): void {
    this.clearTimer('drainTimer');
    this.clearTimer('keepaliveTimer');
    this.clearTimer('pingTimeoutTimer');
  }

  /** Fails every stream and pending operation (connection going away). */
  private failAll(cause: Error | undefined): void {
    this.rejectReady(cause ?? this.closedError());
    for (const stream of [...this.streams.values()]) {
      this.forgetStream(stream);
      stream.destroy(
        new HboneError('ERR_H2_CONNECTION_CLOSED', `HTTP/2 connection closed before stream ${stream.id} finished`, {
          cause,
        }),
      );
    }
    for (const [key, entry] of this.pings) {
      this.pings.delete(key);
      if (entry.signal && entry.onAbort) entry.signal.removeEventListener('abort', entry.onAbort);
      entry.reject(this.closedError(cause));
    }
    this.parked.length = 0;
  }

  private rejectReady(err: Error): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(err);
  }

  private closedError(cause?: Error | null): HboneError {
    const c = cause ?? this.fatalError ?? undefined;
    return new HboneError('ERR_H2_CONNECTION_CLOSED', 'HTTP/2 connection is closed', c ? { cause: c } : undefined);
  }

  private teardownSocket(): void {
    const socket = this.socket;
    if (this.socketGone || socket.destroyed) {
      if (!this.socketGone) this.socketGone = true;
      process.nextTick(this.onSocketClose);
      return;
    }
    socket.end();
    if (socket.writableFinished) {
      socket.destroy();
      return;
    }
    socket.once('finish', () => socket.destroy());
    const t = setTimeout(() => socket.destroy(), DESTROY_GRACE_MS);
    t.unref();
    socket.once('close', () => clearTimeout(t));
  }

  private socketEnded(): void {
    // The peer closed its side: nothing more can arrive; streams still open cannot complete.
    if (!this.destroyed) {
      this.destroyed = true;
      this.closed = true;
      this.draining = true;
      this.clearTimers();
      this.failAll(undefined);
      this.teardownSocket();
    }
  }

  private socketFailed(err: Error): void {
    if (this.destroyed) return;
    this.destroy(
      new HboneError('ERR_H2_CONNECTION_CLOSED', `HTTP/2 connection socket failed: ${err.message}`, { cause: err }),
    );
  }

  private socketClosed(): void {
    this.socketGone = true;
    if (!this.destroyed) {
      this.destroyed = true;
      this.closed = true;
      this.draining = true;
      this.reader.stop();
      this.clearTimers();
      this.failAll(undefined);
    }
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    const socket = this.socket;
    socket.off('data', this.onSocketData);
    socket.off('drain', this.onSocketDrain);
    socket.off('end', this.onSocketEnd);
    socket.off('close', this.onSocketClose);
    // Keep the error listener: a late socket error must not become an uncaught exception.
    const waiters = this.closeWaiters;
    this.closeWaiters = [];
    for (const w of waiters) w();
    this.emit('close');
  }
}

function unrefHandle(handle: unknown): void {
  const h = handle as { unref?: () => void } | null;
  if (h && typeof h.unref === 'function') h.unref();
}
