import { ENTRY_OVERHEAD } from './hpack-static-table.js';

/**
 * The HPACK dynamic table (RFC 7541 §2.3.2, §4): newest entry first, FIFO eviction by size.
 * Tables are small (a few KiB, tens of entries), so plain arrays beat anything clever.
 */
export class HpackDynamicTable {
  readonly names: string[] = [];
  readonly values: string[] = [];
  size = 0;

  constructor(public maxSize: number) {}

  get length(): number {
    return this.names.length;
  }

  add(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    if (entrySize > this.maxSize) {
      // RFC 7541 §4.4: an entry larger than the table empties it and is not added.
      this.names.length = 0;
      this.values.length = 0;
      this.size = 0;
      return;
    }
    this.evictTo(this.maxSize - entrySize);
    this.names.unshift(name);
    this.values.unshift(value);
    this.size += entrySize;
  }

  resize(maxSize: number): void {
    this.maxSize = maxSize;
    this.evictTo(maxSize);
  }

  private evictTo(limit: number): void {
    while (this.size > limit && this.names.length > 0) {
      const name = this.names.pop()!;
      const value = this.values.pop()!;
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
    }
  }
}
