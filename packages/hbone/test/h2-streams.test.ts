/** Stream and connection semantics between our client and our server: flow control, half-close, limits,
 * resets, GOAWAY, PING, lifecycle. */
import { once } from 'node:events';
import type { HboneError } from '../src/errors.js';
import { H2_ERROR, type H2HeaderList, type H2Stream } from '../src/h2/index.js';
import {
  cleanupAll,
  connectHeaders,
  connectionEvent,
  digestOf,
  h2Pair,
  ManualTimers,
  writePattern,
} from './h2-support.js';

afterEach(cleanupAll);

const WINDOW = 65535;

function echo(stream: H2Stream): void {
  stream.respond(200);
  stream.on('error', () => undefined);
  stream.pipe(stream);
}

function errorOf(stream: H2Stream): Promise<HboneError> {
  return once(stream, 'error').then(([err]) => err as HboneError);
}

describe('flow control and backpressure', () => {
  it('a reader that does not read stops the writer within the window, then everything arrives intact', async () => {
    const { client, server } = await h2Pair();
    const serverStream = new Promise<H2Stream>((resolve) =>
      server.on('stream', (stream) => {
        stream.respond(200);
        stream.pause();
        resolve(stream);
      }),
    );
    const stream = client.request(connectHeaders());
    stream.on('error', () => undefined);
    await once(stream, 'response');
    const s = await serverStream;
    const total = 8 << 20;
    let written = 0;
    const writing = (async () => {
      const chunk = Buffer.alloc(16 * 1024, 7);
      while (written < total) {
        written += chunk.length;
        if (!stream.write(chunk)) await once(stream, 'drain');
      }
      stream.end();
    })();
    // The writer stalls: wait until the server side holds a full window and nothing more moves.
    while (s.readableLength < WINDOW) await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(s.readableLength).toBeLessThanOrEqual(WINDOW);
    expect(written).toBeLessThan(total);
    expect(stream.writableNeedDrain).toBe(true);
    s.resume();
    const got = await digestOf(s);
    await writing;
    expect(got.bytes).toBe(total);
  });

  it('the connection window also bounds many slow streams (receiver holds <= connection window)', async () => {
    const { client, server } = await h2Pair(
      {},
      { settings: { initialWindowSize: 1 << 20 }, connectionWindowSize: 256 * 1024 },
    );
    const streams: H2Stream[] = [];
    server.on('stream', (stream) => {
      stream.respond(200);
      stream.pause();
      streams.push(stream);
    });
    await client.ready();
    const writers = Array.from({ length: 4 }, () => client.request(connectHeaders()).on('error', () => undefined));
    for (const w of writers) w.end(Buffer.alloc(1 << 20));
    const held = () => streams.reduce((sum, s) => sum + s.readableLength, 0);
    while (held() < 256 * 1024) await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(held()).toBe(256 * 1024);
    // Reading releases connection window: everything arrives.
    const sizes = await Promise.all(streams.map((s) => digestOf(s).then((d) => d.bytes)));
    expect(sizes).toEqual([1 << 20, 1 << 20, 1 << 20, 1 << 20]);
  });
});

describe('delivery of received DATA', () => {
  it('bulk DATA frames that arrive together reach the reader merged, intact and in order', async () => {
    const windows = { settings: { initialWindowSize: 1 << 20 }, connectionWindowSize: 1 << 20 };
    const { client, server } = await h2Pair(windows, windows);
    const chunks: number[] = [];
    const received = new Promise<{ bytes: number; sha256: string }>((resolve, reject) =>
      server.on('stream', (stream) => {
        stream.respond(200);
        stream.on('data', (c: Buffer) => chunks.push(c.length));
        digestOf(stream).then(resolve, reject);
      }),
    );
    const stream = client.request(connectHeaders());
    stream.on('error', () => undefined);
    await once(stream, 'response');
    // One 320 KiB write leaves as 20 DATA frames of 16 KiB (the server's SETTINGS_MAX_FRAME_SIZE).
    const sent = await writePattern(stream, 320 * 1024, 320 * 1024);
    const got = await received;
    expect(got).toEqual({ bytes: 320 * 1024, sha256: sent });
    expect(chunks.length).toBeLessThan(10);
  });
});

describe('half-close', () => {
  it('client ends first: the server keeps sending and the client receives it all', async () => {
    const { client, server } = await h2Pair();
    const serverSent = new Promise<string>((resolve, reject) =>
      server.on('stream', (stream) => {
        stream.respond(200);
        stream.resume();
        stream.on('end', () => writePattern(stream, 1 << 20).then(resolve, reject));
      }),
    );
    const stream = client.request(connectHeaders());
    stream.end('bye');
    const got = await digestOf(stream);
    expect(got.sha256).toBe(await serverSent);
  });

  it('server ends first: the client keeps sending and the server receives it all', async () => {
    const { client, server } = await h2Pair();
    const serverGot = new Promise<{ bytes: number; sha256: string }>((resolve, reject) =>
      server.on('stream', (stream) => {
        stream.respond(200);
        stream.end();
        digestOf(stream).then(resolve, reject);
      }),
    );
    const stream = client.request(connectHeaders());
    const ended = once(stream, 'end');
    stream.resume();
    await ended;
    const sent = await writePattern(stream, 1 << 20);
    expect((await serverGot).sha256).toBe(sent);
  });

  it('respond(status, headers, {endStream}) refuses the tunnel in one frame', async () => {
    const { client, server } = await h2Pair();
    server.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.resume();
      stream.respond(503, [['x-reason', 'upstream down']], { endStream: true });
    });
    const stream = client.request(connectHeaders());
    const [status, headers] = (await once(stream, 'response')) as [number, H2HeaderList];
    expect(status).toBe(503);
    expect(headers).toContainEqual(['x-reason', 'upstream down']);
    stream.end();
    expect((await digestOf(stream)).bytes).toBe(0);
  });
});

describe('concurrency', () => {
  it('runs 200 concurrent streams with integrity', async () => {
    const { client, server } = await h2Pair({}, { settings: { maxConcurrentStreams: 200 } });
    server.on('stream', echo);
    await client.ready();
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const stream = client.request(connectHeaders(`10.0.0.1:${i + 1}`));
        const [sent, got] = await Promise.all([writePattern(stream, 20_000 + i * 10), digestOf(stream)]);
        return got.sha256 === sent;
      }),
    );
    expect(results.filter(Boolean)).toHaveLength(200);
  });

  it('refuses streams above SETTINGS_MAX_CONCURRENT_STREAMS: request() throws once known, the server RSTs otherwise', async () => {
    const { client, server } = await h2Pair({}, { settings: { maxConcurrentStreams: 2 } });
    server.on('stream', (stream) => {
      stream.respond(200);
      stream.on('error', () => undefined);
    });
    // Before the server's SETTINGS arrive the client does not know the limit: the third stream is refused.
    const early = [1, 2, 3].map(() => client.request(connectHeaders()).on('error', () => undefined));
    const responded = once(early[0]!, 'response');
    const err = await errorOf(early[2]!);
    expect(err).toMatchObject({ code: 'ERR_H2_STREAM_RESET', h2Code: H2_ERROR.REFUSED_STREAM });
    await responded;
    expect(client.remoteMaxConcurrentStreams).toBe(2);
    expect(() => client.request(connectHeaders())).toThrow(expect.objectContaining({ code: 'ERR_H2_REFUSED' }));
    // Finishing one frees a slot.
    const closed = once(early[0]!, 'close');
    early[0]!.destroy();
    await closed;
    expect(client.request(connectHeaders()).on('error', () => undefined).id).toBe(7);
  });
});

describe('RST_STREAM', () => {
  it('client destroy() resets the stream on the server with CANCEL', async () => {
    const { client, server } = await h2Pair();
    const serverErr = new Promise<HboneError>((resolve) =>
      server.on('stream', (stream) => {
        stream.respond(200);
        errorOf(stream).then(resolve);
      }),
    );
    const stream = client.request(connectHeaders());
    await once(stream, 'response');
    stream.destroy();
    expect(await serverErr).toMatchObject({ code: 'ERR_H2_STREAM_RESET', h2Code: H2_ERROR.CANCEL });
    expect(server.activeStreams).toBe(0);
  });

  it('server reset(code) reaches the client as ERR_H2_STREAM_RESET with that code; the connection lives on', async () => {
    const { client, server } = await h2Pair();
    server.on('stream', (stream, headers) => {
      if (new Map(headers).get(':authority') === 'reset:1') stream.reset(H2_ERROR.CONNECT_ERROR);
      else echo(stream);
    });
    const stream = client.request(connectHeaders('reset:1'));
    expect(await errorOf(stream)).toMatchObject({ code: 'ERR_H2_STREAM_RESET', h2Code: H2_ERROR.CONNECT_ERROR });
    const next = client.request(connectHeaders());
    const [sent, got] = await Promise.all([writePattern(next, 1000), digestOf(next)]);
    expect(got.sha256).toBe(sent);
  });
});

describe('GOAWAY and close', () => {
  it('close() sends GOAWAY: no new streams, open ones finish, streams above lastStreamId fail as retryable', async () => {
    const { client, server } = await h2Pair();
    let closing: Promise<void> | undefined;
    server.on('stream', (stream) => {
      echo(stream);
      closing ??= server.close();
    });
    await client.ready();
    const first = client.request(connectHeaders());
    const second = client.request(connectHeaders());
    const goaway = connectionEvent(client, 'goaway');
    expect(await errorOf(second)).toMatchObject({ code: 'ERR_H2_REFUSED' });
    const [code, lastStreamId] = (await goaway) as [number, number];
    expect([code, lastStreamId]).toEqual([H2_ERROR.NO_ERROR, 1]);
    expect(client.draining).toBe(true);
    expect(server.draining).toBe(true);
    expect(() => client.request(connectHeaders())).toThrow(expect.objectContaining({ code: 'ERR_H2_REFUSED' }));
    const [sent, got] = await Promise.all([writePattern(first, 200_000), digestOf(first)]);
    expect(got.sha256).toBe(sent);
    await closing;
    await connectionEvent(client, 'close').catch(() => undefined);
    expect(client.closed).toBe(true);
  });

  it('close() resets streams still open after drainTimeoutMs (injected timers)', async () => {
    const timers = new ManualTimers();
    const { client, server } = await h2Pair({}, { timers, drainTimeoutMs: 5000 });
    const serverErr = new Promise<HboneError>((resolve) =>
      server.on('stream', (stream) => {
        stream.respond(200);
        errorOf(stream).then(resolve);
      }),
    );
    const stream = client.request(connectHeaders());
    stream.on('error', () => undefined);
    await once(stream, 'response');
    const closed = server.close();
    expect([...timers.pending.values()].map((t) => t.ms)).toEqual([5000]);
    timers.fireAll();
    expect(await serverErr).toMatchObject({ code: 'ERR_H2_CONNECTION_CLOSED' });
    await closed;
    expect(server.closed).toBe(true);
    expect(await server.close()).toBeUndefined(); // idempotent
  });

  it('destroy() is immediate: streams fail with ERR_H2_CONNECTION_CLOSED, close emitted once', async () => {
    const { client } = await h2Pair();
    const stream = client.request(connectHeaders());
    const err = errorOf(stream);
    let closes = 0;
    client.on('close', () => closes++);
    const closed = connectionEvent(client, 'close');
    client.destroy();
    client.destroy();
    expect(await err).toMatchObject({ code: 'ERR_H2_CONNECTION_CLOSED' });
    await closed;
    await new Promise((r) => setImmediate(r));
    expect(closes).toBe(1);
    expect(() => client.request(connectHeaders())).toThrow(expect.objectContaining({ code: 'ERR_H2_REFUSED' }));
    await expect(client.ping()).rejects.toMatchObject({ code: 'ERR_H2_CONNECTION_CLOSED' });
  });

  it('socket loss fails every stream with ERR_H2_CONNECTION_CLOSED', async () => {
    const { client, server, serverSocket } = await h2Pair();
    server.on('stream', echo);
    const streams = [client.request(connectHeaders()), client.request(connectHeaders())];
    await Promise.all(streams.map((s) => once(s, 'response')));
    const errors = Promise.all(streams.map(errorOf));
    serverSocket.destroy();
    for (const err of await errors) expect(err).toMatchObject({ code: 'ERR_H2_CONNECTION_CLOSED' });
    await expect(client.ready()).resolves.toBeUndefined(); // it was ready before
  });
});

describe('PING', () => {
  it('ping() measures a round trip', async () => {
    const { client, server } = await h2Pair();
    const rtt = await client.ping();
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(await server.ping()).toBeGreaterThanOrEqual(0);
  });

  it('ping() honours an AbortSignal', async () => {
    const { client, serverSocket } = await h2Pair();
    await client.ready();
    serverSocket.pause(); // no answer will come
    const ac = new AbortController();
    const p = client.ping(ac.signal);
    ac.abort(new Error('gave up'));
    await expect(p).rejects.toThrow('gave up');
  });

  it('keepalive: an answered PING re-arms the timer; an unanswered one kills the connection (ERR_H2_PING_TIMEOUT)', async () => {
    const timers = new ManualTimers();
    const { client, server, serverSocket } = await h2Pair({ timers, pingIntervalMs: 10_000, pingTimeoutMs: 20_000 });
    server.on('stream', echo);
    await client.ready();
    expect([...timers.pending.values()].map((t) => t.ms)).toEqual([10_000]);
    // Interval fires: a PING goes out and the timeout is armed; the live server answers.
    timers.fireAll();
    expect([...timers.pending.values()].map((t) => t.ms)).toEqual([20_000]);
    while (![...timers.pending.values()].some((t) => t.ms === 10_000)) await new Promise((r) => setImmediate(r));
    expect([...timers.pending.values()].map((t) => t.ms)).toEqual([10_000]);
    // Now the server stops reading: the next PING is never answered.
    const stream = client.request(connectHeaders());
    const streamErr = errorOf(stream);
    serverSocket.pause();
    timers.fireAll();
    const error = connectionEvent(client, 'error');
    timers.fireAll();
    const [err] = (await error) as [HboneError];
    expect(err).toMatchObject({ code: 'ERR_H2_PING_TIMEOUT' });
    expect(await streamErr).toMatchObject({ code: 'ERR_H2_CONNECTION_CLOSED' });
    expect(client.closed).toBe(true);
    expect(timers.pending.size).toBe(0);
  });
});
