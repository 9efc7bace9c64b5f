/**
 * A hand-driven HTTP/2 peer over TLS, for misbehaviour no real implementation would show: it completes
 * the handshake and the first CONNECT, then ignores everything (PINGs included), as a hung peer does.
 */
import type { Duplex } from 'node:stream';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

export const SETTINGS = 0x4;
export const HEADERS = 0x1;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const END_HEADERS = 0x4;
export const ACK = 0x1;

/** HPACK literal header field without indexing, name from the static table (RFC 7541 §6.2.2), no Huffman. */
export function literal(nameIndex: number, value: string): Buffer {
  const v = Buffer.from(value, 'latin1');
  if (nameIndex > 14 || v.length > 126) throw new Error('test helper handles short fields only');
  return Buffer.concat([Buffer.from([nameIndex, v.length]), v]);
}

/**
 * Reads frames from `socket` (after the client preface when `expectPreface`), calling `onFrame` for each.
 */
export function onFrames(
  socket: Duplex,
  expectPreface: boolean,
  onFrame: (type: number, flags: number, streamId: number, payload: Buffer) => void,
): void {
  let buf = Buffer.alloc(0);
  let prefaceLeft = expectPreface ? PREFACE.length : 0;
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    if (prefaceLeft > 0) {
      const n = Math.min(prefaceLeft, buf.length);
      buf = buf.subarray(n);
      prefaceLeft -= n;
    }
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const type = buf[3]!;
      const flags = buf[4]!;
      const id = buf.readUInt32BE(5) & 0x7fffffff;
      const payload = buf.subarray(9, 9 + len);
      buf = buf.subarray(9 + len);
      onFrame(type, flags, id, payload);
    }
  });
}
