import { HboneError } from './errors.js';
import type { H2Connection, H2HeaderList, H2Stream } from './h2/types.js';
import type { Timers } from './timers.js';

/** Identifies connections that may share streams (REFERENCE.md: source identity, destination identities,
 * destination address, source IP). */
export interface PoolKeyParts {
  sourceIdentity: string | undefined;
  destinationIdentities: readonly string[];
  /** The HBONE server, `ip:port`. */
  destination: string;
  sourceAddress: string | undefined;
}

export function poolKey(p: PoolKeyParts): string {
  const ids = [...new Set(p.destinationIdentities)].sort().join(',');
  return `${p.sourceIdentity ?? ''}|${ids}|${p.destination}|${p.sourceAddress ?? ''}`;
}

export interface PoolOptions {
  maxStreamsPerConnection: number;
  idleTimeoutMs: number;
  timers: Timers;
}

interface Entry {
  readonly key: string;
  readonly connections: Set<H2Connection>;
  creating: Promise<void> | undefined;
}

/**
 * HTTP/2 connections shared by tunnels, per key. A connection takes streams until it holds
 * `maxStreamsPerConnection` (or the peer's lower limit); the next caller opens another. Only one
 * connection per key is being created at a time: concurrent callers wait for it and then share it.
 * Connections that received GOAWAY take no new streams; connections without streams for
 * `idleTimeoutMs` are closed.
 */
export class ConnectionPool {
  readonly #opts: PoolOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #idle = new Map<H2Connection, unknown>();
  #closed = false;

  constructor(opts: PoolOptions) {
    this.#opts = opts;
  }

  /**
   * Opens a stream with `headers` on a pooled connection for `key`, creating a connection with
   * `connect` when none has room. Rejects with what `connect` rejected with, or the signal's reason.
   */
  async request(
    key: string,
    headers: H2HeaderList,
    connect: () => Promise<H2Connection>,
    signal?: AbortSignal,
  ): Promise<H2Stream> {
    for (;;) {
      if (this.#closed) throw new HboneError('ERR_HBONE_CLOSED', 'the HBONE client is closed: create a new one');
      signal?.throwIfAborted();
      let entry = this.#entries.get(key);
      if (!entry) {
        entry = { key, connections: new Set(), creating: undefined };
        this.#entries.set(key, entry);
      }
      const conn = this.#pick(entry);
      if (conn) {
        // request() is synchronous, so the stream is counted before any other caller picks.
        const stream = conn.request(headers);
        this.#track(conn, stream);
        return stream;
      }
      if (!entry.creating) entry.creating = this.#create(entry, connect);
      await abortable(entry.creating, signal);
    }
  }

  /** Connections and streams now open, for metrics and tests. */
  stats(): { connections: number; streams: number } {
    let connections = 0;
    let streams = 0;
    for (const e of this.#entries.values()) {
      for (const c of e.connections) {
        if (c.closed) continue;
        connections++;
        streams += c.activeStreams;
      }
    }
    return { connections, streams };
  }

  /** Graceful: no new streams; every connection drains (GOAWAY) and closes once its streams finish. */
  async close(): Promise<void> {
    this.#closed = true;
    const all: Promise<void>[] = [];
    for (const e of this.#entries.values()) {
      for (const c of e.connections) all.push(c.close());
    }
    for (const h of this.#idle.values()) this.#opts.timers.clearTimeout(h);
    this.#idle.clear();
    await Promise.allSettled(all);
  }

  destroy(err?: Error): void {
    this.#closed = true;
    for (const h of this.#idle.values()) this.#opts.timers.clearTimeout(h);
    this.#idle.clear();
    for (const e of this.#entries.values()) {
      for (const c of e.connections) c.destroy(err);
    }
    this.#entries.clear();
  }

  #pick(entry: Entry): H2Connection | undefined {
    for (const c of entry.connections) {
      if (c.draining || c.closed) continue;
      const limit = Math.min(this.#opts.maxStreamsPerConnection, c.remoteMaxConcurrentStreams);
      if (c.activeStreams >= limit) continue;
      this.#disarmIdle(c);
      return c;
    }
    return undefined;
  }

  async #create(entry: Entry, connect: () => Promise<H2Connection>): Promise<void> {
    try {
      const conn = await connect();
      if (this.#closed) {
        conn.destroy();
        return;
      }
      entry.connections.add(conn);
      conn.on('close', () => {
        entry.connections.delete(conn);
        this.#disarmIdle(conn);
        if (entry.connections.size === 0 && !entry.creating && this.#entries.get(entry.key) === entry) {
          this.#entries.delete(entry.key);
        }
      });
      // A created connection nobody uses (its callers gave up) must still be released.
      this.#armIdle(conn);
    } finally {
      entry.creating = undefined;
      if (entry.connections.size === 0 && this.#entries.get(entry.key) === entry) this.#entries.delete(entry.key);
    }
  }

  #track(conn: H2Connection, stream: H2Stream): void {
    // `on`, not `once`: a once-wrapper per stream is measurable when thousands of tunnels are open.
    stream.on('close', () => {
      if (!conn.closed) this.#armIdle(conn);
    });
  }

  #armIdle(conn: H2Connection): void {
    if (this.#idle.has(conn) || this.#closed) return;
    const handle = this.#opts.timers.setTimeout(() => {
      this.#idle.delete(conn);
      // Streams opened since arming keep it alive; their own close re-arms the timer.
      if (conn.activeStreams === 0 && !conn.closed) void conn.close();
    }, this.#opts.idleTimeoutMs);
    this.#idle.set(conn, handle);
  }

  #disarmIdle(conn: H2Connection): void {
    const h = this.#idle.get(conn);
    if (h === undefined) return;
    this.#opts.timers.clearTimeout(h);
    this.#idle.delete(conn);
  }
}

/** Waits for `p` unless `signal` aborts first (the work behind `p` carries on for other waiters). */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
