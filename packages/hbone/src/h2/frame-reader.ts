/**
 * Incremental frame parser over the socket's byte chunks. DATA payloads are not reassembled: each piece of a
 * DATA frame that arrives in a socket chunk is handed over as a view of that chunk (no copy, whatever the frame
 * size). Other frames are handed over whole — as a view when they sit inside one chunk, else reassembled.
 */
import { CLIENT_PREFACE, Flag, FRAME_HEADER_SIZE, FrameType } from './constants.js';
import { H2_ERROR } from './types.js';

export interface FrameSink {
  /** A complete non-DATA frame. */
  onFrame(type: number, flags: number, streamId: number, payload: Buffer): void;
  /** A DATA frame begins: `length` is the full frame length (flow control counts it all, padding included). */
  onDataStart(flags: number, streamId: number, length: number, padding: number): void;
  /** A piece of the current DATA frame's data (padding excluded). */
  onDataChunk(chunk: Buffer): void;
  /** The current DATA frame is complete. */
  onDataEnd(): void;
  /** The byte stream is not valid HTTP/2: a connection error with this code. */
  onReadError(h2Code: number, message: string): void;
}

enum State {
  Preface,
  Header,
  PadLength,
  Data,
  Padding,
  Payload,
}

const EMPTY = Buffer.alloc(0);

export class FrameReader {
  /** Largest frame accepted (our SETTINGS_MAX_FRAME_SIZE). */
  maxFrameSize: number;
  private state: State;
  private stopped = false;
  private readonly head = Buffer.alloc(FRAME_HEADER_SIZE);
  private headFill = 0;
  private prefaceFill = 0;
  private length = 0;
  private type = 0;
  private flags = 0;
  private streamId = 0;
  private dataLeft = 0;
  private padLeft = 0;
  private payload: Buffer = EMPTY;
  private payloadFill = 0;

  constructor(
    private readonly sink: FrameSink,
    maxFrameSize: number,
    expectPreface: boolean,
  ) {
    this.maxFrameSize = maxFrameSize;
    this.state = expectPreface ? State.Preface : State.Header;
  }

  /** Stops parsing for good (the connection is failing); the rest of the input is ignored. */
  stop(): void {
    this.stopped = true;
  }

  push(chunk: Buffer): void {
    const len = chunk.length;
    let pos = 0;
    while (pos < len && !this.stopped) {
      switch (this.state) {
        case State.Preface: {
          while (pos < len && this.prefaceFill < CLIENT_PREFACE.length) {
            if (chunk[pos++] !== CLIENT_PREFACE[this.prefaceFill++]) {
              this.fail(H2_ERROR.PROTOCOL_ERROR, 'invalid connection preface (not an HTTP/2 client?)');
              return;
            }
          }
          if (this.prefaceFill === CLIENT_PREFACE.length) this.state = State.Header;
          break;
        }
        case State.Header: {
          let h: Buffer;
          let o: number;
          if (this.headFill === 0 && len - pos >= FRAME_HEADER_SIZE) {
            h = chunk;
            o = pos;
            pos += FRAME_HEADER_SIZE;
          } else {
            const n = Math.min(FRAME_HEADER_SIZE - this.headFill, len - pos);
            chunk.copy(this.head, this.headFill, pos, pos + n);
            this.headFill += n;
            pos += n;
            if (this.headFill < FRAME_HEADER_SIZE) return;
            this.headFill = 0;
            h = this.head;
            o = 0;
          }
          this.length = (h[o]! << 16) | (h[o + 1]! << 8) | h[o + 2]!;
          this.type = h[o + 3]!;
          this.flags = h[o + 4]!;
          this.streamId = h.readUInt32BE(o + 5) & 0x7fffffff;
          this.beginFrame();
          break;
        }
        case State.PadLength: {
          const pad = chunk[pos++]!;
          if (pad >= this.length) {
            this.fail(H2_ERROR.PROTOCOL_ERROR, `DATA padding ${pad} does not fit in a frame of ${this.length} octets`);
            return;
          }
          this.dataLeft = this.length - 1 - pad;
          this.padLeft = pad;
          this.sink.onDataStart(this.flags, this.streamId, this.length, pad + 1);
          this.afterDataBytes();
          break;
        }
        case State.Data: {
          const n = Math.min(this.dataLeft, len - pos);
          const piece = n === len ? chunk : chunk.subarray(pos, pos + n);
          pos += n;
          this.dataLeft -= n;
          this.sink.onDataChunk(piece);
          if (this.dataLeft === 0 && !this.stopped) this.afterDataBytes();
          break;
        }
        case State.Padding: {
          const n = Math.min(this.padLeft, len - pos);
          pos += n;
          this.padLeft -= n;
          if (this.padLeft === 0) this.endData();
          break;
        }
        case State.Payload: {
          if (this.payloadFill === 0 && len - pos >= this.length) {
            // The whole frame sits inside this chunk: hand over a view without copying.
            const payload = chunk.subarray(pos, pos + this.length);
            pos += this.length;
            this.state = State.Header;
            this.sink.onFrame(this.type, this.flags, this.streamId, payload);
            break;
          }
          if (this.payloadFill === 0) this.payload = Buffer.allocUnsafe(this.length);
          const n = Math.min(this.length - this.payloadFill, len - pos);
          chunk.copy(this.payload, this.payloadFill, pos, pos + n);
          this.payloadFill += n;
          pos += n;
          if (this.payloadFill === this.length) {
            const payload = this.payload;
            this.payload = EMPTY;
            this.payloadFill = 0;
            this.state = State.Header;
            this.sink.onFrame(this.type, this.flags, this.streamId, payload);
          }
          break;
        }
      }
    }
  }

  private beginFrame(): void {
    if (this.length > this.maxFrameSize) {
      this.fail(
        H2_ERROR.FRAME_SIZE_ERROR,
        `frame of ${this.length} octets exceeds SETTINGS_MAX_FRAME_SIZE ${this.maxFrameSize}`,
      );
      return;
    }
    if (this.type === FrameType.DATA) {
      if (this.flags & Flag.PADDED) {
        if (this.length === 0) {
          this.fail(H2_ERROR.FRAME_SIZE_ERROR, 'padded DATA frame without a pad length');
          return;
        }
        this.state = State.PadLength;
        return;
      }
      this.dataLeft = this.length;
      this.padLeft = 0;
      this.sink.onDataStart(this.flags, this.streamId, this.length, 0);
      if (!this.stopped) this.afterDataBytes();
      return;
    }
    if (this.length === 0) {
      this.state = State.Header;
      this.sink.onFrame(this.type, this.flags, this.streamId, EMPTY);
      return;
    }
    this.state = State.Payload;
    this.payloadFill = 0;
  }

  private afterDataBytes(): void {
    if (this.dataLeft > 0) this.state = State.Data;
    else if (this.padLeft > 0) this.state = State.Padding;
    else this.endData();
  }

  private endData(): void {
    this.state = State.Header;
    this.sink.onDataEnd();
  }

  private fail(h2Code: number, message: string): void {
    this.stopped = true;
    this.sink.onReadError(h2Code, message);
  }
}
