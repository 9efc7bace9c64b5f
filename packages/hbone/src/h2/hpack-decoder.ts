/** HPACK header block decoder (RFC 7541): every representation, Huffman, dynamic table, limits. */
import { HboneError } from '../errors.js';
import { HpackDynamicTable } from './hpack-dynamic-table.js';
import { ENTRY_OVERHEAD, STATIC_TABLE, STATIC_TABLE_LENGTH } from './hpack-static-table.js';
import { HuffmanError, huffmanDecode } from './huffman.js';
import { H2_ERROR, type H2HeaderList } from './types.js';

function compressionError(message: string): HboneError {
  return new HboneError('ERR_H2_PROTOCOL', `HPACK: ${message}; the peer sent a corrupt header block`, {
    h2Code: H2_ERROR.COMPRESSION_ERROR,
  });
}

export interface DecodedHeaders {
  headers: H2HeaderList;
  /** The list exceeded maxHeaderListSize: `headers` is incomplete, the stream must be refused (the table is intact). */
  oversized: boolean;
}

export class HpackDecoder {
  readonly table: HpackDynamicTable;
  /** Upper bound for table size updates: our SETTINGS_HEADER_TABLE_SIZE. */
  maxTableSizeLimit: number;
  /** Our SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2 accounting: name + value + 32 per field). */
  maxHeaderListSize: number;

  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private end = 0;

  constructor(maxTableSize = 4096, maxHeaderListSize = 65536) {
    this.table = new HpackDynamicTable(maxTableSize);
    this.maxTableSizeLimit = maxTableSize;
    this.maxHeaderListSize = maxHeaderListSize;
  }

  /** Decodes one complete header block; throws HboneError (COMPRESSION_ERROR) on any malformed input. */
  decode(block: Buffer): DecodedHeaders {
    this.buf = block;
    this.pos = 0;
    this.end = block.length;
    const headers: H2HeaderList = [];
    let listSize = 0;
    let oversized = false;
    let fieldSeen = false;
    try {
      while (this.pos < this.end) {
        const b = block[this.pos]!;
        let name: string;
        let value: string;
        if (b & 0x80) {
          // Indexed header field (§6.1).
          const index = this.integer(7);
          if (index === 0) throw compressionError('indexed header field with index 0');
          [name, value] = this.lookup(index);
        } else if (b & 0x40) {
          // Literal with incremental indexing (§6.2.1).
          const index = this.integer(6);
          name = index === 0 ? this.string() : this.lookup(index)[0];
          value = this.string();
          this.table.add(name, value);
        } else if (b & 0x20) {
          // Dynamic table size update (§6.3): only before the first field of a block (§4.2).
          if (fieldSeen) throw compressionError('dynamic table size update after a header field');
          const size = this.integer(5);
          if (size > this.maxTableSizeLimit) {
            throw compressionError(`table size update to ${size} above the advertised ${this.maxTableSizeLimit}`);
          }
          this.table.resize(size);
          continue;
        } else {
          // Literal without indexing (0000xxxx) or never indexed (0001xxxx) (§6.2.2, §6.2.3).
          const index = this.integer(4);
          name = index === 0 ? this.string() : this.lookup(index)[0];
          value = this.string();
        }
        fieldSeen = true;
        listSize += name.length + value.length + ENTRY_OVERHEAD;
        if (listSize > this.maxHeaderListSize) oversized = true;
        else headers.push([name, value]);
      }
    } finally {
      this.buf = Buffer.alloc(0);
    }
    return { headers, oversized };
  }

  private lookup(index: number): [string, string] {
    if (index <= STATIC_TABLE_LENGTH) {
      const entry = STATIC_TABLE[index - 1]!;
      return [entry[0], entry[1]];
    }
    const i = index - STATIC_TABLE_LENGTH - 1;
    if (i >= this.table.length) throw compressionError(`index ${index} is beyond the dynamic table`);
    return [this.table.names[i]!, this.table.values[i]!];
  }

  /** Integer with an N-bit prefix (§5.1); values above 2^31-1 are refused. */
  private integer(prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = this.buf[this.pos++]! & max;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw compressionError('truncated integer');
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (value > 0x7fffffff) throw compressionError('integer overflow');
      if ((b & 0x80) === 0) return value;
    }
  }

  /** String literal (§5.2). */
  private string(): string {
    if (this.pos >= this.end) throw compressionError('truncated string literal');
    const huffman = (this.buf[this.pos]! & 0x80) !== 0;
    const length = this.integer(7);
    if (length > this.end - this.pos) throw compressionError('string literal longer than the header block');
    const start = this.pos;
    this.pos += length;
    if (!huffman) return this.buf.toString('latin1', start, start + length);
    try {
      return huffmanDecode(this.buf, start, start + length);
    } catch (err) {
      if (err instanceof HuffmanError) throw compressionError(err.message);
      throw err;
    }
  }
}
