/** HPACK header block encoder (RFC 7541): static matches, dynamic-table indexing, Huffman when shorter. */
import { HpackDynamicTable } from './hpack-dynamic-table.js';
import { ENTRY_OVERHEAD, STATIC_NAME_INDEX, STATIC_PAIR_INDEX, STATIC_TABLE_LENGTH } from './hpack-static-table.js';
import { huffmanEncode, huffmanEncodedLength } from './huffman.js';
import type { H2HeaderList } from './types.js';

/** Fields whose values are secrets: never indexed, so intermediaries may not compress them (§7.1.3). */
const NEVER_INDEXED = new Set(['authorization', 'proxy-authorization']);

export class HpackEncoder {
  readonly table: HpackDynamicTable;
  /** Most we are willing to use, whatever the peer allows. */
  private readonly ownLimit: number;
  /** Smallest size the table went through since the last block, and the size to announce (§4.2); -1 if none. */
  private pendingMinSize = -1;
  private pendingSize = -1;

  constructor(ownLimit = 4096) {
    this.ownLimit = ownLimit;
    this.table = new HpackDynamicTable(Math.min(4096, ownLimit));
  }

  /** The peer's SETTINGS_HEADER_TABLE_SIZE changed: use min(that, our limit) and announce it in the next block. */
  setPeerTableSize(size: number): void {
    const next = Math.min(size, this.ownLimit);
    if (next === this.table.maxSize && this.pendingSize < 0) return;
    this.pendingMinSize = this.pendingMinSize < 0 ? next : Math.min(this.pendingMinSize, next);
    this.pendingSize = next;
    this.table.resize(next);
  }

  encode(headers: H2HeaderList): Buffer {
    let bound = 12;
    for (const [name, value] of headers) bound += name.length + value.length + 12;
    const out = Buffer.allocUnsafe(bound);
    let pos = 0;
    if (this.pendingSize >= 0) {
      if (this.pendingMinSize < this.pendingSize) pos = integer(out, pos, 0x20, 5, this.pendingMinSize);
      pos = integer(out, pos, 0x20, 5, this.pendingSize);
      this.pendingMinSize = -1;
      this.pendingSize = -1;
    }
    for (const [name, value] of headers) pos = this.field(out, pos, name, value);
    return out.subarray(0, pos);
  }

  private field(out: Buffer, pos: number, name: string, value: string): number {
    const staticPair = STATIC_PAIR_INDEX.get(`${name}\0${value}`);
    if (staticPair !== undefined) return integer(out, pos, 0x80, 7, staticPair);
    const names = this.table.names;
    const values = this.table.values;
    let nameIndex = STATIC_NAME_INDEX.get(name) ?? 0;
    for (let i = 0; i < names.length; i++) {
      if (names[i] !== name) continue;
      if (values[i] === value) return integer(out, pos, 0x80, 7, STATIC_TABLE_LENGTH + 1 + i);
      if (nameIndex === 0) nameIndex = STATIC_TABLE_LENGTH + 1 + i;
    }
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (NEVER_INDEXED.has(name)) {
      pos = integer(out, pos, 0x10, 4, nameIndex);
    } else if (size <= (this.table.maxSize * 3) / 4) {
      pos = integer(out, pos, 0x40, 6, nameIndex);
      this.table.add(name, value);
    } else {
      // Too big to be worth caching: it would evict most of the table.
      pos = integer(out, pos, 0x00, 4, nameIndex);
    }
    if (nameIndex === 0) pos = string(out, pos, name);
    return string(out, pos, value);
  }
}

function integer(out: Buffer, pos: number, firstBits: number, prefixBits: number, value: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[pos++] = firstBits | value;
    return pos;
  }
  out[pos++] = firstBits | max;
  let rest = value - max;
  while (rest >= 128) {
    out[pos++] = (rest % 128) | 0x80;
    rest = Math.floor(rest / 128);
  }
  out[pos++] = rest;
  return pos;
}

function string(out: Buffer, pos: number, s: string): number {
  const huffLength = huffmanEncodedLength(s);
  if (huffLength <= s.length) {
    pos = integer(out, pos, 0x80, 7, huffLength);
    return huffmanEncode(s, out, pos);
  }
  pos = integer(out, pos, 0x00, 7, s.length);
  return pos + out.write(s, pos, 'latin1');
}
