/**
 * Outgoing frame batch. Frame headers, control frames and small payloads are packed into one slab; large DATA
 * payloads are queued as views of the caller's buffers (no copy). The connection writes the batch to the
 * socket in one go (cork/uncork), normally once per event-loop turn: measured, batching until the end of
 * the poll phase beats writing after every read by a wide margin on TLS.
 */
import { FRAME_HEADER_SIZE } from './constants.js';

const SLAB_SIZE = 16 * 1024;
/** Payloads up to this size are copied into the slab: fewer, larger writes beat saving a small copy. */
const COPY_LIMIT = 4096;

export class FrameWriter {
  /** Bytes queued and not yet handed to the socket. */
  bytes = 0;
  private chunks: Buffer[] = [];
  private slab = Buffer.allocUnsafe(SLAB_SIZE);
  private slabStart = 0;
  private slabEnd = 0;

  /** Writes a 9-octet frame header. */
  header(length: number, type: number, flags: number, streamId: number): void {
    const off = this.reserve(FRAME_HEADER_SIZE);
    const b = this.slab;
    b[off] = length >>> 16;
    b[off + 1] = length >>> 8;
    b[off + 2] = length;
    b[off + 3] = type;
    b[off + 4] = flags;
    b.writeUInt32BE(streamId, off + 5);
  }

  /** A frame whose payload is one 32-bit word (RST_STREAM, WINDOW_UPDATE). */
  frameU32(type: number, flags: number, streamId: number, value: number): void {
    this.header(4, type, flags, streamId);
    const off = this.reserve(4);
    this.slab.writeUInt32BE(value, off);
  }

  /** Appends payload bytes: copied when small, otherwise queued as a view that must stay unchanged until sent. */
  payload(buf: Buffer): void {
    const n = buf.length;
    if (n === 0) return;
    if (n <= COPY_LIMIT) {
      const off = this.reserve(n);
      buf.copy(this.slab, off);
      return;
    }
    this.cut();
    this.chunks.push(buf);
    this.bytes += n;
  }

  /** Takes everything queued; the caller writes it. */
  take(): Buffer[] {
    this.cut();
    const chunks = this.chunks;
    this.chunks = [];
    this.bytes = 0;
    return chunks;
  }

  private reserve(n: number): number {
    if (this.slab.length - this.slabEnd < n) {
      this.cut();
      this.slab = Buffer.allocUnsafe(Math.max(SLAB_SIZE, n));
      this.slabStart = 0;
      this.slabEnd = 0;
    }
    const off = this.slabEnd;
    this.slabEnd += n;
    this.bytes += n;
    return off;
  }

  /** Closes the current slab region into a chunk; the region is never written again. */
  private cut(): void {
    if (this.slabEnd > this.slabStart) {
      this.chunks.push(this.slab.subarray(this.slabStart, this.slabEnd));
      this.slabStart = this.slabEnd;
    }
  }
}
