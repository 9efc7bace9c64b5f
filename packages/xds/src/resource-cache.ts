import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { XdsError } from './errors.js';
import type { TypeRegistry } from './type-registry.js';
import { bytesField, encodeAny, encodeDeltaResource } from './wire.js';

/** One stored resource version. Its encodings are computed once and shared by every client. */
export class CacheEntry {
  readonly typeUrl: string;
  readonly name: string;
  /** Content hash of the encoded bytes: stable across server restarts, so reconnecting clients skip unchanged resources. */
  readonly version: string;
  /** Cache sequence number of the commit that produced this version. */
  readonly seq: number;
  readonly value: unknown;
  readonly bytes: Uint8Array;
  #deltaField: Buffer | undefined;
  #sotwField: Buffer | undefined;

  constructor(typeUrl: string, name: string, version: string, seq: number, value: unknown, bytes: Uint8Array) {
    this.typeUrl = typeUrl;
    this.name = name;
    this.version = version;
    this.seq = seq;
    this.value = value;
    this.bytes = bytes;
  }

  /** `resources` field (2) of a DeltaDiscoveryResponse carrying this resource. */
  get deltaField(): Buffer {
    this.#deltaField ??= bytesField(
      2,
      encodeDeltaResource(this.name, this.version, encodeAny(this.typeUrl, this.bytes)),
    );
    return this.#deltaField;
  }

  /** `resources` field (2) of a DiscoveryResponse carrying this resource as an Any. */
  get sotwField(): Buffer {
    this.#sotwField ??= bytesField(2, encodeAny(this.typeUrl, this.bytes));
    return this.#sotwField;
  }
}

interface TypeState {
  entries: Map<string, CacheEntry>;
  /** Deleted names and the seq of their deletion, kept so connected clients learn of removals. */
  tombstones: Map<string, number>;
  /** (seq, name) in ascending seq order; compacted when it grows past the live state. */
  log: { seq: number; name: string }[];
  /** Changes at or below this seq can no longer be enumerated (tombstones were dropped). */
  horizon: number;
  /** Seq of the last commit that touched this type. */
  lastSeq: number;
}

export interface ResourceCacheOptions {
  registry: TypeRegistry;
  /** Deleted names remembered per type for connected clients (default 100,000). Clients further behind are made to resync. */
  maxTombstones?: number;
}

export interface CacheChange {
  seq: number;
  /** Type URL -> names set or deleted in this commit. */
  changed: Map<string, string[]>;
}

/** Collects the operations of one atomic commit; see {@link ResourceCache.transaction}. */
export interface CacheTransaction {
  /** `resource` is the type's decoded shape (or its input shape) or already-encoded bytes. */
  set(typeUrl: string, name: string, resource: unknown): void;
  delete(typeUrl: string, name: string): void;
}

type Op =
  | { kind: 'set'; typeUrl: string; name: string; entry: PreparedEntry }
  | { kind: 'delete'; typeUrl: string; name: string };
interface PreparedEntry {
  version: string;
  value: unknown;
  bytes: Uint8Array;
}

function contentVersion(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64url').slice(0, 16);
}

/**
 * Versioned resources by type URL and name. Every commit (a single set/delete or a transaction)
 * gets the next sequence number and emits one `change` event; resources whose bytes did not change
 * keep their version and produce no event. Values are validated by the type registry before
 * anything is applied, so a bad resource never half-applies a transaction.
 *
 * Events: `change` ({@link CacheChange}).
 */
export class ResourceCache extends EventEmitter<{ change: [CacheChange] }> {
  readonly registry: TypeRegistry;
  readonly #types = new Map<string, TypeState>();
  readonly #maxTombstones: number;
  #seq = 0;

  constructor(options: ResourceCacheOptions) {
    super();
    this.registry = options.registry;
    this.#maxTombstones = options.maxTombstones ?? 100_000;
  }

  /** Sequence number of the last commit (0 before any). */
  get seq(): number {
    return this.#seq;
  }

  set(typeUrl: string, name: string, resource: unknown): void {
    this.transaction((tx) => tx.set(typeUrl, name, resource));
  }

  /** Returns whether the resource existed. */
  delete(typeUrl: string, name: string): boolean {
    const existed = this.get(typeUrl, name) !== undefined;
    if (existed) this.transaction((tx) => tx.delete(typeUrl, name));
    return existed;
  }

  /**
   * Applies every operation of `fn` atomically: all are validated first; if one is invalid,
   * nothing changes and the error (ERR_XDS_INVALID_RESOURCE or ERR_XDS_UNKNOWN_TYPE) is thrown.
   */
  transaction(fn: (tx: CacheTransaction) => void): CacheChange | undefined {
    const ops: Op[] = [];
    fn({
      set: (typeUrl, name, resource) => {
        ops.push({ kind: 'set', typeUrl, name, entry: this.#prepare(typeUrl, name, resource) });
      },
      delete: (typeUrl, name) => {
        ops.push({ kind: 'delete', typeUrl, name });
      },
    });
    return this.#commit(ops);
  }

  #prepare(typeUrl: string, name: string, resource: unknown): PreparedEntry {
    if (typeof name !== 'string' || name === '') {
      throw new XdsError('ERR_XDS_INVALID_RESOURCE', `${typeUrl}: a resource needs a non-empty name`);
    }
    const type = this.registry.require(typeUrl);
    let bytes: Uint8Array;
    let value: unknown;
    try {
      bytes = resource instanceof Uint8Array ? resource : type.encode(resource);
      value = type.decode(bytes);
    } catch (err) {
      if (err instanceof XdsError) throw err;
      throw new XdsError('ERR_XDS_INVALID_RESOURCE', `${typeUrl} "${name}": cannot decode: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const problems = type.validate(name, value);
    if (problems.length > 0) {
      throw new XdsError('ERR_XDS_INVALID_RESOURCE', `${typeUrl} "${name}" is invalid: ${problems.join('; ')}`);
    }
    return { version: contentVersion(bytes), value, bytes };
  }

  #state(typeUrl: string): TypeState {
    let s = this.#types.get(typeUrl);
    if (s === undefined) {
      s = { entries: new Map(), tombstones: new Map(), log: [], horizon: 0, lastSeq: 0 };
      this.#types.set(typeUrl, s);
    }
    return s;
  }

  #commit(ops: Op[]): CacheChange | undefined {
    // Only the last operation on a name counts; unchanged content is not a change.
    const last = new Map<string, Op>();
    for (const op of ops) last.set(`${op.typeUrl}\u0000${op.name}`, op);
    const effective: Op[] = [];
    for (const op of last.values()) {
      const current = this.#types.get(op.typeUrl)?.entries.get(op.name);
      if (op.kind === 'set' ? current?.version !== op.entry.version : current !== undefined) effective.push(op);
    }
    if (effective.length === 0) return undefined;
    const seq = ++this.#seq;
    const changed = new Map<string, string[]>();
    for (const op of effective) {
      const s = this.#state(op.typeUrl);
      if (op.kind === 'set') {
        s.entries.set(
          op.name,
          new CacheEntry(op.typeUrl, op.name, op.entry.version, seq, op.entry.value, op.entry.bytes),
        );
        s.tombstones.delete(op.name);
      } else {
        s.entries.delete(op.name);
        s.tombstones.set(op.name, seq);
      }
      s.log.push({ seq, name: op.name });
      s.lastSeq = seq;
      let names = changed.get(op.typeUrl);
      if (names === undefined) {
        names = [];
        changed.set(op.typeUrl, names);
      }
      names.push(op.name);
    }
    for (const typeUrl of changed.keys()) this.#compact(this.#state(typeUrl));
    const change = { seq, changed };
    this.emit('change', change);
    return change;
  }

  #compact(s: TypeState): void {
    if (s.tombstones.size > this.#maxTombstones) {
      // Oldest first: Map keeps insertion order and a re-deleted name is re-inserted.
      for (const [name, seq] of s.tombstones) {
        if (s.tombstones.size <= this.#maxTombstones) break;
        s.tombstones.delete(name);
        s.horizon = Math.max(s.horizon, seq);
      }
    }
    if (s.log.length > 2 * (s.entries.size + s.tombstones.size) + 1024) {
      const rows: { seq: number; name: string }[] = [];
      for (const e of s.entries.values()) rows.push({ seq: e.seq, name: e.name });
      for (const [name, seq] of s.tombstones) rows.push({ seq, name });
      rows.sort((a, b) => a.seq - b.seq);
      s.log = rows;
    }
  }

  get(typeUrl: string, name: string): CacheEntry | undefined {
    return this.#types.get(typeUrl)?.entries.get(name);
  }

  /** Current entries of a type (live view; do not mutate). */
  entries(typeUrl: string): ReadonlyMap<string, CacheEntry> {
    return this.#types.get(typeUrl)?.entries ?? new Map();
  }

  /** Seq of the last commit that touched the type (0 if never). */
  typeSeq(typeUrl: string): number {
    return this.#types.get(typeUrl)?.lastSeq ?? 0;
  }

  typeUrls(): string[] {
    return [...this.#types.keys()];
  }

  /**
   * Names set or deleted after `sinceSeq` (each once), or `undefined` when that history is no
   * longer complete (the caller must then resynchronise the client some other way).
   */
  changedSince(typeUrl: string, sinceSeq: number): string[] | undefined {
    const s = this.#types.get(typeUrl);
    if (s === undefined) return [];
    if (sinceSeq < s.horizon) return undefined;
    if (sinceSeq >= s.lastSeq) return [];
    const log = s.log;
    let lo = 0;
    let hi = log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((log[mid]?.seq ?? 0) <= sinceSeq) lo = mid + 1;
      else hi = mid;
    }
    const names = new Set<string>();
    for (let i = lo; i < log.length; i++) names.add((log[i] as { name: string }).name);
    return [...names];
  }
}
