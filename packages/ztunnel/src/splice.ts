/**
 * Splice two byte streams both ways with TCP semantics: backpressure through pipe(), half-close carried
 * (one side ending its writes ends the other's writes, the reverse direction stays open), and both sides
 * destroyed together on the first error or premature close. Counts bytes for metrics as they pass.
 */
import type { Duplex } from 'node:stream';

export interface SpliceCounters {
  /** Client → server bytes. */
  received: number;
  /** Server → client bytes. */
  sent: number;
}

/** Resolves when both directions finished (undefined) or the first error / abrupt close ended the splice. */
export function splice(client: Duplex, server: Duplex, counters: SpliceCounters): Promise<Error | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    let finished = 0;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      client.unpipe(server);
      server.unpipe(client);
      client.destroy();
      server.destroy();
      resolve(err);
    };
    client.on('data', (c: Buffer) => {
      counters.received += c.length;
    });
    server.on('data', (c: Buffer) => {
      counters.sent += c.length;
    });
    const onFinish = () => {
      if (++finished === 2) done();
    };
    client.once('finish', onFinish);
    server.once('finish', onFinish);
    client.on('error', done);
    server.on('error', done);
    // A side that closes after reading to the end and finishing its writes closed normally: the other
    // side's 'finish' follows. Any other close cuts the connection.
    const onClose = (name: string, s: Duplex) => () => {
      if (settled || (s.readableEnded && s.writableFinished)) return;
      done(new Error(`${name} closed before both directions finished`));
    };
    client.once('close', onClose('client', client));
    server.once('close', onClose('server', server));
    client.pipe(server);
    server.pipe(client);
  });
}
