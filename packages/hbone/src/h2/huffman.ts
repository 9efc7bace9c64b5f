/**
 * HPACK Huffman coding (RFC 7541 §5.2, Appendix B): encoder and canonical decoder.
 * Strings are byte strings held as latin1 JS strings (one char per octet).
 */
import { HUFFMAN_CODE_LENGTHS } from './huffman-code-lengths.js';

const EOS = 256;
const MAX_CODE_LENGTH = 30;

/** code[symbol], left to right as in the RFC table. */
export const HUFFMAN_CODES = new Uint32Array(257);
/** For each length L: the first code of that length, how many codes have it, and where they start in SORTED. */
const firstCode = new Int32Array(MAX_CODE_LENGTH + 1);
const countOf = new Int32Array(MAX_CODE_LENGTH + 1);
const offsetOf = new Int32Array(MAX_CODE_LENGTH + 1);
/** Symbols ordered by (length, symbol) — the canonical order. */
const SORTED = new Uint16Array(257);
/** Fast path: the symbol (low 16 bits) and length (high bits) of the code starting each 8-bit prefix, 0 if longer. */
const BYTE_LOOKUP = new Uint32Array(256);

(function buildTables() {
  const symbols = Array.from({ length: 257 }, (_, i) => i);
  symbols.sort((a, b) => HUFFMAN_CODE_LENGTHS[a]! - HUFFMAN_CODE_LENGTHS[b]! || a - b);
  let code = 0;
  let prevLength = HUFFMAN_CODE_LENGTHS[symbols[0]!]!;
  symbols.forEach((sym, i) => {
    const len = HUFFMAN_CODE_LENGTHS[sym]!;
    code *= 2 ** (len - prevLength);
    prevLength = len;
    if (countOf[len] === 0) {
      firstCode[len] = code;
      offsetOf[len] = i;
    }
    countOf[len]!++;
    HUFFMAN_CODES[sym] = code;
    SORTED[i] = sym;
    code++;
  });
  for (let sym = 0; sym < 256; sym++) {
    const len = HUFFMAN_CODE_LENGTHS[sym]!;
    if (len > 8) continue;
    const base = HUFFMAN_CODES[sym]! << (8 - len);
    for (let k = 0; k < 1 << (8 - len); k++) BYTE_LOOKUP[base + k] = (len << 16) | sym;
  }
})();

/** Octets needed to Huffman-encode `s`. */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_CODE_LENGTHS[s.charCodeAt(i) & 0xff]!;
  return (bits + 7) >>> 3;
}

/** Huffman-encodes `s` into `out` at `offset`; returns the offset after the last octet (padded with EOS bits). */
export function huffmanEncode(s: string, out: Buffer, offset: number): number {
  let acc = 0; // pending bits, right-aligned; never more than 7 + 30 bits, kept below 2^53 as a number
  let bits = 0;
  let pos = offset;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    const len = HUFFMAN_CODE_LENGTHS[sym]!;
    acc = acc * 2 ** len + HUFFMAN_CODES[sym]!;
    bits += len;
    while (bits >= 8) {
      bits -= 8;
      const div = 2 ** bits;
      const byte = Math.floor(acc / div);
      out[pos++] = byte;
      acc -= byte * div;
    }
  }
  if (bits > 0) out[pos++] = (acc << (8 - bits)) | (0xff >>> bits);
  return pos;
}

/** Thrown as a plain Error; the HPACK decoder turns it into a COMPRESSION_ERROR. */
export class HuffmanError extends Error {}

let scratch = Buffer.allocUnsafe(1024);

/** Decodes `buf[start, end)`; throws HuffmanError on EOS in the data or bad padding (RFC 7541 §5.2). */
export function huffmanDecode(buf: Buffer, start: number, end: number): string {
  // Every code is at least 5 bits, so the output is at most 8/5 of the input.
  const maxOut = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < maxOut) scratch = Buffer.allocUnsafe(Math.max(maxOut, scratch.length * 2));
  const out = scratch;
  let n = 0;
  // Unread bits, right-aligned in a double (exact up to 2^53): refilled to at least 45 bits while input
  // remains, so a 30-bit code always fits; fewer than 30 bits left means the input is exhausted.
  let acc = 0;
  let bits = 0;
  let pos = start;
  for (;;) {
    while (bits <= 44 && pos < end) {
      acc = acc * 256 + buf[pos++]!;
      bits += 8;
    }
    if (bits === 0) break;
    if (bits >= 8) {
      const hit = BYTE_LOOKUP[Math.floor(acc / 2 ** (bits - 8)) & 0xff]!;
      if (hit !== 0) {
        out[n++] = hit & 0xffff;
        bits -= hit >>> 16;
        acc %= 2 ** bits;
        continue;
      }
    }
    let sym = -1;
    let len = 5;
    for (; len <= MAX_CODE_LENGTH; len++) {
      // Past the end of input, pad the peeked value with 1s: only a valid EOS-prefix padding decodes past it.
      const value =
        len <= bits
          ? Math.floor(acc / 2 ** (bits - len)) % 2 ** len
          : acc * 2 ** (len - bits) + (2 ** (len - bits) - 1);
      const idx = value - firstCode[len]!;
      if (countOf[len]! > 0 && idx >= 0 && idx < countOf[len]!) {
        sym = SORTED[offsetOf[len]! + idx]!;
        break;
      }
    }
    if (len > bits) {
      // Ran into the end: the rest must be fewer than 8 one-bits (a prefix of EOS).
      if (bits >= 8 || acc !== 2 ** bits - 1) throw new HuffmanError('invalid Huffman padding');
      break;
    }
    if (sym === EOS || sym < 0) throw new HuffmanError('EOS symbol inside a Huffman-encoded string');
    out[n++] = sym;
    bits -= len;
    acc %= 2 ** bits;
  }
  return out.toString('latin1', 0, n);
}
