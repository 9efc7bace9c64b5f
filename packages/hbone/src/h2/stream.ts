/**
 * One HTTP/2 stream as a Node Duplex. The stream holds only its own state; framing, flow-control decisions and
 * writing live in the connection (connection.ts), which calls back into the fields here.
 */
import { Duplex } from 'node:stream';
import { HboneError } from '../errors.js';
import type { H2ConnectionImpl } from './connection.js';
import { H2_ERROR, type H2HeaderList, type H2Stream } from './types.js';

export class H2StreamImpl extends Duplex implements H2Stream {
  readonly id: number;
  readonly connection: H2ConnectionImpl;
  readonly requestHeaders: H2HeaderList;

  // --- RFC 9113 §5.1 state: open until both ends sent END_STREAM, or a RST_STREAM either way.
  /** We sent END_STREAM. */
  localEnded = false;
  /** The peer sent END_STREAM. */
  remoteEnded = false;
  /** The stream left the connection (closed or reset): nothing more is sent for it. */
  h2Closed = false;
  /** The peer reset with NO_ERROR after ending its side: our further DATA is dropped (RFC 9113 §8.1). */
  discardWrites = false;
  /** Client: a final response HEADERS arrived. Server: respond() was called. */
  headersDone = false;

  // --- sending
  /** What the peer lets us send on this stream (may go negative after a SETTINGS change). */
  sendWindow: number;
  /** The write in progress: chunks, position in them, bytes left, and its callback. */
  outList: Buffer[] | null = null;
  outIndex = 0;
  outOffset = 0;
  outBytes = 0;
  outCb: ((err?: Error | null) => void) | null = null;
  /** Queued on the connection, waiting for the connection window or for the socket to drain. */
  parked = false;

  // --- receiving
  /** What the peer may still send before our next WINDOW_UPDATE. */
  recvWindow: number;
  /** Bytes pushed to the readable side, and how many of them were accounted as consumed. */
  inBytes = 0;
  inConsumed = 0;
  /** A re-check of consumed bytes is queued for after the current read() (see _read). */
  recheckQueued = false;
  /** Received DATA not yet pushed (the connection merges bulk pieces per event-loop turn), and its size. */
  held: Buffer[] | null = null;
  heldBytes = 0;
  /** Consumed (or discarded) bytes not yet returned to the peer by a stream WINDOW_UPDATE. */
  credit = 0;

  constructor(
    connection: H2ConnectionImpl,
    id: number,
    requestHeaders: H2HeaderList,
    sendWindow: number,
    recvWindow: number,
    readableHighWaterMark: number,
    writableHighWaterMark: number,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark, writableHighWaterMark, decodeStrings: true });
    this.connection = connection;
    this.id = id;
    this.requestHeaders = requestHeaders;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  respond(status: number, headers: H2HeaderList = [], options?: { endStream?: boolean }): void {
    this.connection.respond(this, status, headers, options?.endStream === true);
  }

  reset(h2Code: number = H2_ERROR.CANCEL): void {
    if (this.destroyed) return;
    this.connection.resetStream(this, h2Code);
    this.destroy();
  }

  override _read(): void {
    this.connection.streamConsumed(this);
    // Readable calls _read before it removes the chunk it is about to return, and not again until the next
    // push: bytes still buffered now may be consumed by this very read. Settle them once it has returned, or
    // their window credit is never sent and a peer waiting for it stalls.
    if (this.readableLength > 0 && !this.recheckQueued) {
      this.recheckQueued = true;
      process.nextTick(recheckConsumed, this);
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.connection.streamWrite(this, [chunk], chunk.length, cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    const list = new Array<Buffer>(chunks.length);
    let bytes = 0;
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i]!.chunk;
      list[i] = c;
      bytes += c.length;
    }
    this.connection.streamWrite(this, list, bytes, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.connection.streamEnd(this, cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.outList = null;
    this.outCb = null;
    this.connection.streamDestroyed(this, err);
    cb(err);
  }
}

function recheckConsumed(stream: H2StreamImpl): void {
  stream.recheckQueued = false;
  if (!stream.destroyed) stream.connection.streamConsumed(stream);
}

export function streamResetError(id: number, h2Code: number, byPeer: boolean): HboneError {
  return new HboneError(
    'ERR_H2_STREAM_RESET',
    `HTTP/2 stream ${id} was reset by the ${byPeer ? 'peer' : 'local side'} (error code ${h2Code})`,
    { h2Code },
  );
}
