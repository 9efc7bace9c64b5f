/**
 * Minimal DER (X.690) encoder and reader: just what X.509 certificates and PKCS#10 requests need.
 * Written by hand because issuing certificates is the CA's hot path: building the few fixed structures
 * directly is several times faster than a general ASN.1 schema library, and the reader never copies.
 */

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Thrown by the reader on malformed input; callers turn it into their own error code. */
export class DerError extends Error {
  override readonly name = 'DerError';
}

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

/** One TLV with the given tag around the concatenation of `parts`. */
export function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const header = lengthBytes(len);
  const out = new Uint8Array(1 + header.length + len);
  out[0] = tag;
  out.set(header, 1);
  let off = 1 + header.length;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export const sequence = (...parts: Uint8Array[]): Uint8Array => tlv(TAG.SEQUENCE, ...parts);
export const set = (...parts: Uint8Array[]): Uint8Array => tlv(TAG.SET, ...parts);
export const octetString = (bytes: Uint8Array): Uint8Array => tlv(TAG.OCTET_STRING, bytes);
export const NULL = new Uint8Array([TAG.NULL, 0]);
export const TRUE = new Uint8Array([TAG.BOOLEAN, 1, 0xff]);
/** `[n] EXPLICIT` (constructed context-specific). */
export const explicit = (n: number, ...parts: Uint8Array[]): Uint8Array => tlv(0xa0 | n, ...parts);
/** `[n] IMPLICIT` for a primitive type. */
export const implicit = (n: number, bytes: Uint8Array): Uint8Array => tlv(0x80 | n, bytes);

/** An INTEGER from unsigned big-endian bytes (adds the sign octet when needed, drops redundant zeros). */
export function unsignedInteger(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  if (trimmed.length === 0) return new Uint8Array([TAG.INTEGER, 1, 0]);
  if ((trimmed[0] as number) & 0x80) return tlv(TAG.INTEGER, new Uint8Array([0]), trimmed);
  return tlv(TAG.INTEGER, trimmed);
}

export function smallInteger(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new RangeError(`integer ${n} out of range`);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return unsignedInteger(new Uint8Array(bytes));
}

export function bitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
  return tlv(TAG.BIT_STRING, new Uint8Array([unusedBits]), bytes);
}

const oidCache = new Map<string, Uint8Array>();

/** An OBJECT IDENTIFIER from dotted form (cached: the same handful of OIDs appear in every certificate). */
export function oid(dotted: string): Uint8Array {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split('.').map(Number);
  const [a = 0, b = 0, ...rest] = arcs;
  const body: number[] = [a * 40 + b];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    body.push(...chunk);
  }
  const out = tlv(TAG.OID, new Uint8Array(body));
  oidCache.set(dotted, out);
  return out;
}

export function decodeOid(value: Uint8Array): string {
  if (value.length === 0) throw new DerError('empty OBJECT IDENTIFIER');
  const first = value[0] as number;
  const arcs = [first < 80 ? Math.floor(first / 40) : 2, first < 80 ? first % 40 : first - 80];
  let v = 0;
  for (let i = 1; i < value.length; i++) {
    const byte = value[i] as number;
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  return arcs.join('.');
}

const encoder = new TextEncoder();
export const utf8String = (s: string): Uint8Array => tlv(TAG.UTF8_STRING, encoder.encode(s));
export const ia5String = (s: string): Uint8Array => tlv(TAG.IA5_STRING, encoder.encode(s));

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; always seconds and 'Z'. */
export function time(date: Date): Uint8Array {
  const y = date.getUTCFullYear();
  const rest = `${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(TAG.UTC_TIME, encoder.encode(`${pad(y % 100)}${rest}`));
  return tlv(TAG.GENERALIZED_TIME, encoder.encode(`${pad(y, 4)}${rest}`));
}

export function decodeTime(el: DerElement): Date {
  const s = new TextDecoder().decode(el.value);
  const utc = el.tag === TAG.UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  if (utc) {
    const yy = Number(utc[1]);
    return new Date(
      Date.UTC(yy < 50 ? 2000 + yy : 1900 + yy, Number(utc[2]) - 1, +utc[3]!, +utc[4]!, +utc[5]!, +utc[6]!),
    );
  }
  const gen = el.tag === TAG.GENERALIZED_TIME ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  if (gen) return new Date(Date.UTC(+gen[1]!, Number(gen[2]) - 1, +gen[3]!, +gen[4]!, +gen[5]!, +gen[6]!));
  throw new DerError(`bad time value ${JSON.stringify(s)}`);
}

/** A decoded TLV: views into the original buffer, no copies. */
export interface DerElement {
  tag: number;
  /** The whole TLV (header and content). */
  bytes: Uint8Array;
  /** The content octets. */
  value: Uint8Array;
}

/** Reads the TLV at `offset` of `buf`; rejects indefinite lengths, non-minimal lengths and overruns. */
export function readElement(buf: Uint8Array, offset = 0): DerElement {
  if (offset + 2 > buf.length) throw new DerError('truncated: no room for a tag and a length');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used in certificates');
  let len = buf[offset + 1] as number;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4) throw new DerError('length too large');
    if (offset + 2 + n > buf.length) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[offset + 2 + i] as number);
    if (len < 0x80 || (n > 1 && buf[offset + 2] === 0)) throw new DerError('non-minimal length encoding');
    header += n;
  }
  const end = offset + header + len;
  if (end > buf.length) throw new DerError('truncated: content runs past the end of the input');
  return { tag, bytes: buf.subarray(offset, end), value: buf.subarray(offset + header, end) };
}

/** Reads exactly one element that spans the whole input (no trailing bytes). */
export function readWhole(buf: Uint8Array, tag?: number): DerElement {
  const el = readElement(buf, 0);
  if (el.bytes.length !== buf.length) throw new DerError('trailing bytes after the outer element');
  if (tag !== undefined && el.tag !== tag)
    throw new DerError(`expected tag 0x${tag.toString(16)}, got 0x${el.tag.toString(16)}`);
  return el;
}

/** The children of a constructed element, in order. */
export function children(el: DerElement): DerElement[] {
  if (!(el.tag & 0x20)) throw new DerError(`tag 0x${el.tag.toString(16)} is not constructed`);
  const out: DerElement[] = [];
  let off = 0;
  while (off < el.value.length) {
    const child = readElement(el.value, off);
    out.push(child);
    off += child.bytes.length;
  }
  return out;
}

/** Child `i`, which must exist and (optionally) carry `tag`. */
export function child(list: DerElement[], i: number, tag?: number): DerElement {
  const el = list[i];
  if (!el) throw new DerError(`missing element ${i}`);
  if (tag !== undefined && el.tag !== tag) {
    throw new DerError(`element ${i}: expected tag 0x${tag.toString(16)}, got 0x${el.tag.toString(16)}`);
  }
  return el;
}

/** The payload of a BIT STRING with no unused bits (keys and signatures). */
export function bitStringBytes(el: DerElement): Uint8Array {
  if (el.tag !== TAG.BIT_STRING || el.value.length < 1) throw new DerError('expected a BIT STRING');
  if (el.value[0] !== 0) throw new DerError('BIT STRING with unused bits where whole octets are required');
  return el.value.subarray(1);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}
