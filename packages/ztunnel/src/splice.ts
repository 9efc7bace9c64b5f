/**
 * Splicing two byte streams with TCP semantics is @ambient-ts/hbone's `splice` (backpressure, half-close,
 * abort on error). Here we only add live byte counting for metrics, so a long connection shows progress
 * at every scrape.
 */
import type { Duplex } from 'node:stream';
import { splice as hboneSplice } from '@ambient-ts/hbone';

export interface SpliceCounters {
  /** Client → server bytes. */
  received: number;
  /** Server → client bytes. */
  sent: number;
}

/** Resolves when both directions finished (undefined) or with the error that ended the splice. */
export async function splice(client: Duplex, server: Duplex, counters: SpliceCounters): Promise<Error | undefined> {
  client.on('data', (c: Buffer) => {
    counters.received += c.length;
  });
  server.on('data', (c: Buffer) => {
    counters.sent += c.length;
  });
  const spliced = hboneSplice(client, server);
  // Entry points pause sockets while they decide (SOCKS5 handshake, policy): an explicitly paused stream
  // does not start flowing when a 'data' listener is added, so start both now.
  client.resume();
  server.resume();
  return (await spliced).error;
}
