import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  cleanup,
  echoServer,
  hboneClient,
  hboneServer,
  readAll,
  SERVER_ID,
  tcpServer,
  via,
} from './support/harness.js';

afterEach(cleanup);

/** Deterministic pseudo-random bytes, so integrity is checked on data that compresses to nothing. */
function pattern(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Writes `data` in `chunk`-sized pieces honouring backpressure, then ends. */
async function produce(dst: Duplex, data: Buffer, chunk: number): Promise<void> {
  for (let off = 0; off < data.length; off += chunk) {
    if (!dst.write(data.subarray(off, off + chunk))) await once(dst, 'drain');
  }
  dst.end();
}

describe('tunnel', () => {
  it('carries bytes both ways and reports the tunnel with its byte counts', async () => {
    const greeting = Buffer.from('220 upstream ready\n');
    const up = await tcpServer((s) => {
      s.write(greeting);
      s.pipe(s);
    });
    const { server, port } = await hboneServer();
    const opened: unknown[] = [];
    const closed = once(server, 'tunnelClose');
    server.on('tunnelOpen', (info) => opened.push(info));
    const client = await hboneClient();
    const t = await client.connect({ address: '127.0.0.1', port: up.port }, via(port));
    t.end('ping from client');
    const all = await readAll(t);
    expect(all.toString()).toBe(`${greeting.toString()}ping from client`);
    const [info, stats] = await closed;
    expect(opened).toHaveLength(1);
    expect(info.peerIdentity.toString()).toBe('spiffe://cluster.local/ns/default/sa/client');
    expect(info.authority).toEqual({ host: '127.0.0.1', port: up.port, family: 4 });
    expect(stats.bytesIn).toBe(16);
    expect(stats.bytesOut).toBe(greeting.length + 16);
    expect(stats.error).toBeUndefined();
  });

  it('moves 24 MiB each way intact', async () => {
    const size = 24 * 1024 * 1024;
    const down = pattern(size, 7);
    let upstreamDigest: Promise<string> | undefined;
    const up = await tcpServer((s) => {
      const h = createHash('sha256');
      upstreamDigest = new Promise((resolve) => {
        s.on('data', (c: Buffer) => h.update(c));
        s.on('end', () => resolve(h.digest('hex')));
      });
      void produce(s, down, 256 * 1024);
    });
    const { port } = await hboneServer();
    const client = await hboneClient();
    const t = await client.connect({ address: '127.0.0.1', port: up.port }, via(port));
    const upData = pattern(size, 11);
    const received = readAll(t);
    // Unaligned chunks exercise frame splitting.
    await produce(t, upData, 100_003);
    const got = await received;
    expect(got.length).toBe(size);
    expect(sha256(got)).toBe(sha256(down));
    expect(await upstreamDigest).toBe(sha256(upData));
  });

  it('half-close from the client: the upstream sees EOF and can still answer', async () => {
    const up = await tcpServer((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => {
        // Answer only after the client's EOF: proves the other direction stayed open.
        s.end(`got ${Buffer.concat(chunks).toString()}; bye`);
      });
    });
    const { port } = await hboneServer();
    const client = await hboneClient();
    const t = await client.connect({ address: '127.0.0.1', port: up.port }, via(port));
    t.end('request');
    expect((await readAll(t)).toString()).toBe('got request; bye');
  });

  it('half-close from the upstream: the client sees EOF and can still send', async () => {
    let upstreamGot: Promise<string> | undefined;
    const up = await tcpServer((s) => {
      upstreamGot = readAll(s).then((b) => b.toString());
      s.end('only this, then FIN');
    });
    const { port } = await hboneServer();
    const client = await hboneClient();
    const t = await client.connect({ address: '127.0.0.1', port: up.port }, via(port));
    const fromUp = await readAll(t);
    expect(fromUp.toString()).toBe('only this, then FIN');
    // Our direction is still open after the upstream's FIN.
    t.write('after ');
    t.end('your FIN');
    expect(await upstreamGot).toBe('after your FIN');
  });

  it('a slow reader stops the sender: what is buffered stays bounded, and nothing is lost', async () => {
    const total = 256 * 1024 * 1024;
    const chunk = pattern(64 * 1024, 3);
    let produced = 0;
    let blocked = false;
    const up = await tcpServer((s) => {
      void (async () => {
        let sent = 0;
        while (sent < total) {
          sent += chunk.length;
          produced = sent;
          if (!s.write(chunk)) {
            blocked = true;
            await once(s, 'drain');
            blocked = false;
          }
        }
        s.end();
      })().catch(() => {});
    });
    const { port } = await hboneServer();
    const client = await hboneClient();
    const t = await client.connect({ address: '127.0.0.1', port: up.port }, via(port));
    t.pause();
    // Wait until the pipeline is at rest: the producer blocked and nothing moved for many event-loop turns.
    let last = -1;
    let quiet = 0;
    while (quiet < 200) {
      await new Promise((r) => setImmediate(r));
      if (blocked && produced === last) quiet++;
      else quiet = 0;
      last = produced;
    }
    // Bound: the 4 MiB stream window plus socket buffers (kernel loopback buffers included), far below 256 MiB.
    expect(produced).toBeLessThan(48 * 1024 * 1024);
    expect(t.readableLength).toBeLessThanOrEqual(8 * 1024 * 1024);
    // Now read everything: all bytes arrive.
    let received = 0;
    t.on('data', (c: Buffer) => {
      received += c.length;
    });
    t.resume();
    await once(t, 'end');
    expect(received).toBe(total);
    t.end();
  }, 60_000);

  it('250 concurrent tunnels share pooled connections; past 100 streams the pool opens another', async () => {
    const echo = await echoServer();
    const { server, port } = await hboneServer();
    let connections = 0;
    server.on('connection', () => connections++);
    const client = await hboneClient();
    const n = 250;
    const tunnels = await Promise.all(
      Array.from({ length: n }, () => client.connect({ address: '127.0.0.1', port: echo.port }, via(port))),
    );
    // All tunnels are open at once: 100 + 100 + 50 streams.
    expect(client.stats()).toEqual({ connections: 3, streams: n });
    expect(connections).toBe(3);
    expect(server.connectionCount).toBe(3);
    const replies = await Promise.all(
      tunnels.map(async (t, i) => {
        t.end(`tunnel ${i}`);
        return (await readAll(t)).toString();
      }),
    );
    expect(replies).toEqual(tunnels.map((_, i) => `tunnel ${i}`));
    expect(client.stats().connections).toBe(3);
  }, 60_000);

  it('reuses the pooled connection for sequential tunnels and keys the pool by destination identities', async () => {
    const echo = await echoServer();
    const { server, port } = await hboneServer();
    let connections = 0;
    server.on('connection', () => connections++);
    const client = await hboneClient();
    for (let i = 0; i < 5; i++) {
      const t = await client.connect({ address: '127.0.0.1', port: echo.port }, via(port));
      t.end('x');
      await readAll(t);
    }
    expect(connections).toBe(1);
    // A different set of acceptable identities is a different pool key.
    const t = await client.connect(
      { address: '127.0.0.1', port: echo.port },
      via(port, { expectedIdentities: [SERVER_ID, 'spiffe://cluster.local/ns/default/sa/other'] }),
    );
    t.end('y');
    await readAll(t);
    expect(connections).toBe(2);
  });

  it('a reset by the upstream reaches the client as a stream error', async () => {
    const up = await tcpServer((s: Socket) => {
      s.once('data', () => s.resetAndDestroy());
    });
    const { port } = await hboneServer();
    const client = await hboneClient();
    const t = await client.connect({ address: '127.0.0.1', port: up.port }, via(port));
    const err = once(t, 'error');
    t.write('trigger');
    const [e] = (await err) as [Error & { code?: string; h2Code?: number }];
    expect(e.code).toBe('ERR_H2_STREAM_RESET');
    expect(e.h2Code).toBe(0xa); // CONNECT_ERROR
  });
});
