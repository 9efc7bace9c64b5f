/**
 * Splicing two byte streams with TCP semantics is @ambient-ts/hbone's `splice` (backpressure, half-close,
 * abort on error). Byte counts for metrics come from the client socket's own counters while the splice
 * runs (no per-chunk listener on the data path) and from the splice's exact totals at the end.
 */
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { splice as hboneSplice } from '@ambient-ts/hbone';

export interface SpliceCounters {
  /** Client → server bytes. */
  received: number;
  /** Server → client bytes. */
  sent: number;
  /** Called before the counters are read (metrics scrape). */
  refresh?: () => void;
}

/** Resolves when both directions finished (undefined) or with the error that ended the splice. */
export async function splice(client: Duplex, server: Duplex, counters: SpliceCounters): Promise<Error | undefined> {
  if (client instanceof Socket) {
    // Bytes already read but still buffered (sent early, before a SOCKS5 reply) are still to be forwarded.
    const readBase = client.bytesRead - client.readableLength;
    const writeBase = client.bytesWritten;
    counters.refresh = () => {
      counters.received = Math.max(0, client.bytesRead - readBase);
      counters.sent = Math.max(0, client.bytesWritten - writeBase);
    };
  }
  const spliced = hboneSplice(client, server);
  // Entry points pause sockets while they decide (SOCKS5 handshake, policy): an explicitly paused stream
  // does not start flowing when a 'data' listener is added, so start both now.
  client.resume();
  server.resume();
  const result = await spliced;
  delete counters.refresh;
  counters.received = result.aToB;
  counters.sent = result.bToA;
  return result.error;
}
